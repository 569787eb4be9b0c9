//! A chart on a canvas: sized to its container with a backing store of width × devicePixelRatio
//! (crisp on HiDPI screens), redrawn when the signals the chart reads change or the window
//! resizes, with PNG and SVG downloads and the plotted numbers as a table for screen readers and for
//! anyone who wants the figures.

use crate::backend::{PageBackend, PenState};
use crate::browser;
use leptos::html;
use leptos::prelude::*;
use plotters::coord::Shift;
use plotters::prelude::*;
use quant_charts::svg::SvgDoc;
use quant_charts::Theme;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A drawing area on a canvas, as chart functions receive it.
pub type Area = DrawingArea<PageBackend, Shift>;

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

/// Keeps `visible` telling whether `el` is in the viewport or within `margin` of it (a CSS
/// margin, "200px"). The observer is returned, to be disconnected when its owner goes.
pub fn watch_visibility(
    el: &web_sys::Element,
    visible: RwSignal<bool>,
    margin: &str,
) -> Option<web_sys::IntersectionObserver> {
    let on_change = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
        if let Some(e) = entries.iter().last() {
            let e: web_sys::IntersectionObserverEntry = e.unchecked_into();
            visible.set(e.is_intersecting());
        }
    });
    let init = web_sys::IntersectionObserverInit::new();
    init.set_root_margin(margin);
    let o =
        web_sys::IntersectionObserver::new_with_options(on_change.as_ref().unchecked_ref(), &init)
            .ok()?;
    o.observe(el);
    on_change.forget();
    Some(o)
}

/// Whether the element of `node` is on screen or near it (600 px): panels whose work is heavy
/// (the flips' scores, the layers' evaluations, the pad's networks) do it only then. `initial`
/// until measured: true for a widget alone on its page, which starts at once; false on the full
/// page, whose load does not pay for panels far below.
pub fn near_viewport<E>(node: NodeRef<E>, initial: bool) -> RwSignal<bool>
where
    E: leptos::html::ElementType,
    E::Output: Clone + JsCast + 'static,
{
    let visible = RwSignal::new(initial);
    let observer = StoredValue::new_local(None::<web_sys::IntersectionObserver>);
    Effect::new(move |_| {
        let Some(el) = node.get() else { return };
        let el: web_sys::Element = el.unchecked_into();
        observer.set_value(watch_visibility(&el, visible, "600px"));
    });
    on_cleanup(move || {
        observer.with_value(|o| o.as_ref().map(|o| o.disconnect()));
    });
    visible
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
    /// Called with a click's position in the backing store's pixels (the units the chart drew
    /// in), for charts whose points can be picked. The same choice is always also offered by a
    /// control outside the canvas, for keyboards and screen readers.
    #[prop(optional)]
    on_click: Option<Callback<(i32, i32)>>,
) -> impl IntoView {
    let node = NodeRef::<html::Canvas>::new();
    let resize = use_context::<Resize>().map(|r| r.0);
    let dark = use_context::<Dark>().is_some_and(|d| d.0);
    // Layout is read only when the window resizes, never on a redraw: reading clientWidth after
    // the other panels changed the DOM forces a synchronous layout, which cost more than drawing.
    let size = RwSignal::new(None::<(f64, f64, f64)>);
    // Bumped when the chart's own box changes width (below); the width last measured.
    let remeasure = RwSignal::new(0u32);
    let width_seen = StoredValue::new(0i32);
    Effect::new(move |_| {
        if let Some(r) = resize {
            r.track();
        }
        remeasure.track();
        let Some(canvas) = node.get() else { return };
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio().max(1.0));
        let measured = canvas.parent_element().map_or(600, |p| p.client_width());
        width_seen.set_value(measured);
        let css_w = measured.max(240) as f64;
        let css_h = (css_w * aspect).clamp(220.0, 420.0);
        // Through the CSSOM, which the Content-Security-Policy allows (a style attribute is not).
        let _ = web_sys::HtmlElement::style(&canvas).set_property("height", &format!("{css_h}px"));
        size.set(Some((css_w, css_h, dpr)));
    });
    // A chart's column can also change width without the window resizing (a section adds a
    // second chart beside it): a ResizeObserver on the chart's box says so, after layout, so
    // reading the width there forces none. Only a width other than the one last measured
    // re-measures (setting the canvas's height changes the box's height, not its width).
    let sizer = StoredValue::new_local(None::<web_sys::ResizeObserver>);
    Effect::new(move |_| {
        let Some(canvas) = node.get() else { return };
        let Some(parent) = canvas.parent_element() else {
            return;
        };
        let observed = parent.clone();
        let on_resize = Closure::<dyn FnMut(js_sys::Array)>::new(move |_: js_sys::Array| {
            if observed.client_width() != width_seen.get_value() {
                remeasure.update(|n| *n += 1);
            }
        });
        if let Ok(o) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) {
            o.observe(&parent);
            sizer.set_value(Some(o));
        }
        on_resize.forget();
    });
    on_cleanup(move || {
        sizer.with_value(|o| o.as_ref().map(|o| o.disconnect()));
    });
    // Whether the canvas is in (or near) the viewport; charts out of view are painted when they
    // come into it.
    let visible = RwSignal::new(true);
    let observer = StoredValue::new_local(None::<web_sys::IntersectionObserver>);
    Effect::new(move |_| {
        let Some(canvas) = node.get() else { return };
        observer.set_value(watch_visibility(&canvas, visible, "200px"));
    });
    on_cleanup(move || {
        observer.with_value(|o| o.as_ref().map(|o| o.disconnect()));
    });
    let draw = Rc::new(draw);
    let draw_offscreen = draw.clone();
    let draw_svg = draw.clone();
    let pen = Rc::new(RefCell::new(PenState::default()));
    let paint = move |canvas: web_sys::HtmlCanvasElement, (css_w, css_h, dpr): (f64, f64, f64)| {
        let (w, h) = ((css_w * dpr).round() as u32, (css_h * dpr).round() as u32);
        // Setting the backing store's size reallocates and clears it and resets the context, even
        // when the size is unchanged (that was ~1 ms a chart per move): only when it changed.
        let resized = canvas.width() != w || canvas.height() != h;
        if resized {
            canvas.set_width(w);
            canvas.set_height(h);
            *pen.borrow_mut() = PenState::default();
        }
        if let Some(mut backend) = PageBackend::canvas(canvas, pen.clone()) {
            if !resized {
                backend.clear();
            }
            draw(&backend.into_drawing_area(), &Theme { scale: dpr, dark });
        }
    };
    let paint = Rc::new(paint);
    let catch_up = paint.clone();
    // Whether the canvas shows an older state than the chart's signals (it was off screen).
    let stale = StoredValue::new(false);
    Effect::new(move |_| {
        let (Some(canvas), Some(at)) = (node.get(), size.get()) else {
            return;
        };
        if visible.get_untracked() {
            stale.set_value(false);
            paint(canvas, at);
            return;
        }
        // Off screen: run the drawing code on a backend that draws nothing, so this effect
        // still tracks what the chart reads, and paint the canvas when it scrolls into view.
        // Painting it now would take CPU from the accuracy workers on every move, for a chart
        // the reader may never scroll to.
        let (w, h) = ((at.0 * at.2).round() as u32, (at.1 * at.2).round() as u32);
        draw_offscreen(
            &PageBackend::Offscreen((w, h)).into_drawing_area(),
            &Theme { scale: at.2, dark },
        );
        stale.set_value(true);
    });
    // Coming into view (the observer's margin is ahead of the viewport): catch up.
    let catch_up = move || {
        if stale.get_value() {
            if let (Some(c), Some(size)) = (node.get_untracked(), size.get_untracked()) {
                stale.set_value(false);
                untrack(|| catch_up(c, size));
            }
        }
    };
    let catch_up = Rc::new(catch_up);
    let on_view = catch_up.clone();
    Effect::new(move |_| {
        if visible.get() {
            on_view();
        }
    });
    // Printing shows every chart, in view or not.
    let on_print = catch_up.clone();
    let on_print = Closure::<dyn Fn()>::new(move || on_print());
    if let Some(w) = web_sys::window() {
        let _ =
            w.add_event_listener_with_callback("beforeprint", on_print.as_ref().unchecked_ref());
    }
    let on_print = StoredValue::new_local(on_print);
    on_cleanup(move || {
        if let Some(w) = web_sys::window() {
            on_print.with_value(|f| {
                let _ = w
                    .remove_event_listener_with_callback("beforeprint", f.as_ref().unchecked_ref());
            });
        }
    });
    // The same drawing code on an SVG document at the chart's CSS size (scale 1): the chart as
    // shown, in vectors, for a slide or a paper.
    let save_svg = move |_| {
        let Some((css_w, css_h, _)) = size.get_untracked() else {
            return;
        };
        let theme = Theme { scale: 1.0, dark };
        let out = Rc::new(RefCell::new(String::new()));
        let doc = SvgDoc::new(
            (css_w.round() as u32, css_h.round() as u32),
            theme.background().to_backend_color(),
            out.clone(),
        );
        untrack(|| draw_svg(&PageBackend::Svg(doc).into_drawing_area(), &theme));
        let svg = out.borrow();
        browser::download_text(
            &format!("quant-playground-{name}.svg"),
            "image/svg+xml",
            &svg,
        );
    };
    let save_png = move |_| {
        catch_up();
        if let Some(url) = node.get().and_then(|c| c.to_data_url().ok()) {
            browser::download(&format!("quant-playground-{name}.png"), &url);
        }
    };
    // The table is built only while it is open: some charts plot hundreds of items.
    let open = RwSignal::new(false);
    view! {
        <div class="chart">
            <canvas node_ref=node role="img" aria-label=move || label.get()
                class:clickable=on_click.is_some()
                on:click=move |ev: web_sys::MouseEvent| {
                    if let Some(f) = on_click {
                        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio().max(1.0));
                        f.run(((f64::from(ev.offset_x()) * dpr) as i32, (f64::from(ev.offset_y()) * dpr) as i32));
                    }
                }></canvas>
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
            <button type="button" class="export svg" on:click=save_svg>"SVG"</button>
        </div>
    }
}
