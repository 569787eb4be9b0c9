//! A canvas that a chart function draws into: sized to its container, with a backing store of
//! container width × devicePixelRatio so it is crisp on HiDPI screens, redrawn when the signals
//! the chart reads change or the window resizes.

use leptos::html;
use leptos::prelude::*;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use quant_charts::Theme;

/// A drawing area on a canvas, as chart functions receive it.
pub type Area = DrawingArea<CanvasBackend, Shift>;

/// Bumped on every window resize; canvases track it.
#[derive(Clone, Copy)]
pub struct Resize(pub RwSignal<u32>);

pub fn prefers_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}

#[component]
pub fn ChartCanvas(
    /// Draws the chart; every signal it reads becomes a reason to redraw.
    draw: impl Fn(&Area, &Theme) + 'static,
    /// A sentence stating what the chart shows, for screen readers.
    #[prop(into)]
    label: Signal<String>,
    /// Height as a fraction of width.
    #[prop(default = 0.55)]
    aspect: f64,
) -> impl IntoView {
    let node = NodeRef::<html::Canvas>::new();
    let resize = use_context::<Resize>().map(|r| r.0);
    Effect::new(move |_| {
        if let Some(r) = resize {
            r.track();
        }
        let Some(canvas) = node.get() else { return };
        let window = web_sys::window().expect("a browser window");
        let dpr = window.device_pixel_ratio().max(1.0);
        let css_w = canvas
            .parent_element()
            .map_or(600, |p| p.client_width())
            .max(240) as f64;
        let css_h = (css_w * aspect).clamp(220.0, 420.0);
        canvas.set_width((css_w * dpr).round() as u32);
        canvas.set_height((css_h * dpr).round() as u32);
        canvas
            .set_attribute("style", &format!("width:100%;height:{css_h}px"))
            .ok();
        let Some(backend) = CanvasBackend::with_canvas_object(canvas) else {
            return;
        };
        let theme = Theme {
            scale: dpr,
            dark: prefers_dark(),
        };
        draw(&backend.into_drawing_area(), &theme);
    });
    view! {
        <div class="chart">
            <canvas node_ref=node role="img" aria-label=move || label.get()></canvas>
        </div>
    }
}
