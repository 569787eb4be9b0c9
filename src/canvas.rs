//! A chart on a canvas: sized to its container with a backing store of width × devicePixelRatio
//! (crisp on HiDPI screens), redrawn when the signals the chart reads change or the window
//! resizes, with a PNG download and the plotted numbers as a table for screen readers and for
//! anyone who wants the figures.

use crate::browser;
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

/// Whether charts draw in dark colours (from `&theme=` or the system preference).
#[derive(Clone, Copy)]
pub struct Dark(pub bool);

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
    /// Short name, used for the PNG's file name.
    name: &'static str,
    /// Column headings of the chart's numbers.
    columns: &'static [&'static str],
    /// The chart's numbers, one row per plotted item.
    #[prop(into)]
    numbers: Signal<Vec<Vec<String>>>,
    /// Height as a fraction of width.
    #[prop(default = 0.55)]
    aspect: f64,
) -> impl IntoView {
    let node = NodeRef::<html::Canvas>::new();
    let resize = use_context::<Resize>().map(|r| r.0);
    let dark = use_context::<Dark>().is_some_and(|d| d.0);
    // Layout is read only when the window resizes, never on a redraw: reading clientWidth after
    // the other panels changed the DOM forces a synchronous layout, which cost more than drawing.
    let size = RwSignal::new(None::<(f64, f64, f64)>);
    Effect::new(move |_| {
        if let Some(r) = resize {
            r.track();
        }
        let Some(canvas) = node.get() else { return };
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio().max(1.0));
        let css_w = canvas
            .parent_element()
            .map_or(600, |p| p.client_width())
            .max(240) as f64;
        let css_h = (css_w * aspect).clamp(220.0, 420.0);
        // Through the CSSOM, which the Content-Security-Policy allows (a style attribute is not).
        let _ = web_sys::HtmlElement::style(&canvas).set_property("height", &format!("{css_h}px"));
        size.set(Some((css_w, css_h, dpr)));
    });
    Effect::new(move |_| {
        let (Some(canvas), Some((css_w, css_h, dpr))) = (node.get(), size.get()) else {
            return;
        };
        // Setting the backing store's size also clears it, even when the size is unchanged.
        canvas.set_width((css_w * dpr).round() as u32);
        canvas.set_height((css_h * dpr).round() as u32);
        let Some(backend) = CanvasBackend::with_canvas_object(canvas) else {
            return;
        };
        draw(&backend.into_drawing_area(), &Theme { scale: dpr, dark });
    });
    let save_png = move |_| {
        if let Some(url) = node.get().and_then(|c| c.to_data_url().ok()) {
            browser::download(&format!("quant-playground-{name}.png"), &url);
        }
    };
    // The table is built only while it is open: some charts plot hundreds of items.
    let open = RwSignal::new(false);
    view! {
        <div class="chart">
            <canvas node_ref=node role="img" aria-label=move || label.get()></canvas>
        </div>
        <div class="chart-tools">
            <details on:toggle=move |ev| open.set(event_target::<web_sys::HtmlElement>(&ev).has_attribute("open"))>
                <summary>"The numbers"</summary>
                {move || open.get().then(|| view! {
                    <div class="table-scroll">
                        <table class="numbers">
                            <caption class="visually-hidden">{move || label.get()}</caption>
                            <thead><tr>{columns.iter().map(|c| view! { <th scope="col">{*c}</th> }).collect_view()}</tr></thead>
                            <tbody>
                                {move || numbers.get().into_iter().map(|row| view! {
                                    <tr>{row.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}</tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })}
            </details>
            <button type="button" class="export" on:click=save_png>"Download PNG"</button>
        </div>
    }
}
