//! Draw a digit: a pad (mouse, pen, touch) whose ink goes through MNIST's own preprocessing
//! (quant_core::draw), the 28×28 the network sees, and both networks' class probabilities, FP32
//! beside the reader's recipe, updated on every stroke. Keyboard users pick a test digit to start
//! from (and may draw over it).

use crate::app::Settings;
use leptos::html;
use leptos::prelude::*;
use quant_core::data::{Digits, PIXELS, SIDE};
use quant_core::draw::{preprocess, stroke, upscale};
use quant_core::infer::Inference;
use quant_core::model::{MnistNet, CLASSES};
use quant_core::study::softmax;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::{Clamped, JsCast};

/// The pad's backing store: 10 pixels per MNIST pixel.
const PAD: usize = SIDE * 10;
/// The pen's radius in pad pixels: MNIST's strokes are 2–3 pixels wide at 28×28.
const PEN: f32 = 11.0;

/// Class probabilities of both networks for one digit.
#[derive(Clone, Copy, PartialEq)]
pub struct Probabilities {
    pub fp32: [f32; CLASSES],
    pub quantized: Option<[f32; CLASSES]>,
}

/// One digit's pixels (`[0, 1]`, 784) as an RGBA image, white ink on black as MNIST stores it.
pub fn paint(canvas: &web_sys::HtmlCanvasElement, values: &[f32], side: usize) {
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let mut rgba = vec![255u8; side * side * 4];
    for (px, &v) in rgba.chunks_exact_mut(4).zip(values) {
        let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        px[..3].fill(g);
    }
    if let Ok(img) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        Clamped(&rgba),
        side as u32,
        side as u32,
    ) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}

/// The bars of both networks' probabilities, with the predicted class of each marked.
#[component]
pub fn ProbabilityBars(
    #[prop(into)] probs: Signal<Option<Probabilities>>,
    /// The reader's recipe, as a row label.
    #[prop(into)]
    setting: Signal<String>,
) -> impl IntoView {
    let percent = |p: f32| {
        let v = 100.0 * p;
        if v > 0.0 && v < 0.5 {
            "<1%".to_string()
        } else if v < 100.0 && v > 99.5 {
            ">99%".to_string()
        } else {
            format!("{v:.0}%")
        }
    };
    move || {
        let Some(p) = probs.get() else {
            return view! { <p class="caption">"Draw a digit, or pick a test digit, to see what the networks say."</p> }
                .into_any();
        };
        let top = |x: &[f32; CLASSES]| quant_core::eval::argmax(x);
        let f_top = top(&p.fp32);
        let q_top = p.quantized.as_ref().map(top);
        let rows = (0..CLASSES)
            .map(|c| {
                let f = p.fp32[c];
                let q = p.quantized.map(|q| q[c]);
                view! {
                    <div class="prob-row" class:top-fp32=f_top == c class:top-quant=q_top == Some(c)
                        data-fp32=f.to_string() data-quantized=q.map_or(String::new(), |q| q.to_string())>
                        <span class="prob-class">{c}</span>
                        // Bars as SVG rectangles: their widths are attributes, which the page's
                        // Content-Security-Policy allows (inline styles it does not).
                        <svg class="prob-bars" viewBox="0 0 100 16" preserveAspectRatio="none" aria-hidden="true">
                            <rect class="bar fp32" x="0" y="0" height="7" width=format!("{:.2}", (100.0 * f).max(0.3))></rect>
                            <rect class="bar quant" x="0" y="9" height="7" width=format!("{:.2}", (100.0 * q.unwrap_or(0.0)).max(0.3))></rect>
                        </svg>
                        <span class="prob-values">
                            {percent(f)} " · " {q.map_or("…".to_string(), percent)}
                        </span>
                    </div>
                }
            })
            .collect_view();
        view! {
            <div class="probs" role="group" aria-label="class probabilities"
                data-fp32=f_top.to_string()
                data-quantized=q_top.map_or(String::new(), |c| c.to_string())>
                <p class="prob-legend">
                    <span class="key fp32"></span> "FP32 says " <strong>{f_top}</strong>
                    " · " <span class="key quant"></span> {move || setting.get()} " says "
                    <strong>{q_top.map_or("…".to_string(), |c| c.to_string())}</strong>
                </p>
                {rows}
            </div>
        }
        .into_any()
    }
}

/// What the pad holds and the networks that read it.
struct Pad {
    ink: Vec<f32>,
    last: Option<(f32, f32)>,
    fp32: Inference,
    /// The quantized network of the recipe it was built for.
    quantized: Option<(usize, Inference)>,
}

#[component]
pub fn DrawPanel(
    settings: Settings,
    net: Arc<MnistNet>,
    /// The network under the reader's recipe.
    quantized: Memo<Result<Arc<MnistNet>, String>>,
    test: Arc<Digits>,
) -> impl IntoView {
    let pad_ref = NodeRef::<html::Canvas>::new();
    let section = NodeRef::<html::Section>::new();
    let seen_ref = NodeRef::<html::Canvas>::new();
    let total = test.len();
    let pad = Rc::new(RefCell::new(Pad {
        ink: vec![0.0; PAD * PAD],
        last: None,
        fp32: Inference::new(&net),
        quantized: None,
    }));
    let probs = RwSignal::new(None::<Probabilities>);
    // How long the last update took (ink → both predictions), for the reader and the bench.
    let update_ms = RwSignal::new(None::<f64>);
    let error = RwSignal::new(None::<String>);
    // Whether the pad was cleared since a test digit was put on it.
    let cleared = RwSignal::new(false);
    // Bumped when the recipe's network changes, so the quantized side is recomputed.
    let generation = StoredValue::new(0usize);
    // The generation the shown probabilities are for.
    let shown_generation = StoredValue::new(0usize);

    // Ink → the 28×28 → both networks' probabilities; repaints both canvases.
    let update = {
        let pad = pad.clone();
        move || {
            let start = crate::browser::now();
            let mut p = pad.borrow_mut();
            if let Some(c) = pad_ref.get_untracked() {
                // The pad shows the ink at its own resolution.
                paint_pad(&c, &p.ink);
            }
            let digit = match preprocess(&p.ink, PAD, PAD) {
                Ok(d) => d,
                Err(e) => {
                    error.set(Some(e.to_string()));
                    return;
                }
            };
            error.set(None);
            let Some(digit) = digit else {
                probs.set(None);
                if let Some(c) = seen_ref.get_untracked() {
                    paint(&c, &[0.0; PIXELS], SIDE);
                }
                return;
            };
            let fp32 = softmax(p.fp32.logits(&digit));
            let wanted = generation.get_value();
            shown_generation.set_value(wanted);
            if p.quantized.as_ref().map(|q| q.0) != Some(wanted) {
                p.quantized = quantized
                    .with_untracked(|q| q.as_ref().ok().map(|n| (wanted, Inference::new(n))));
            }
            let quant = p.quantized.as_mut().map(|(_, q)| softmax(q.logits(&digit)));
            if let Some(c) = seen_ref.get_untracked() {
                paint(&c, &digit, SIDE);
            }
            probs.set(Some(Probabilities {
                fp32,
                quantized: quant,
            }));
            update_ms.set(Some(crate::browser::now() - start));
        }
    };
    let update = Rc::new(update);

    // A test digit onto the pad (replacing the ink).
    let load_digit = {
        let pad = pad.clone();
        let update = update.clone();
        let test = test.clone();
        move |i: usize| {
            let i = i.min(test.len().saturating_sub(1));
            let digit = test.images_f32_rows(i..i + 1).into_raw_vec_and_offset().0;
            {
                let mut p = pad.borrow_mut();
                p.ink = upscale(&digit, 10);
                p.last = None;
            }
            cleared.set(false);
            update();
        }
    };
    // Only on screen or near it: on the full page the load does not build the quantized
    // network for a pad far below.
    let visible = crate::canvas::near_viewport(section, settings.fixed.embed.is_some());
    // The test digit on the pad, and the recipe generation its probabilities are for.
    let loaded = StoredValue::new(None::<usize>);
    // The starting digit, and again whenever the reader picks another; a recipe that moved
    // while the pad was out of view is caught up when it comes back.
    {
        let load_digit = load_digit.clone();
        let update = update.clone();
        Effect::new(move |_| {
            let i = settings.digit.get();
            if !visible.get() {
                return;
            }
            if loaded.get_value() != Some(i) {
                loaded.set_value(Some(i));
                load_digit(i);
            } else if shown_generation.get_value() != generation.get_value() {
                update();
            }
        });
    }
    // The recipe moved: the quantized side follows (the ink stays).
    {
        let update = update.clone();
        Effect::new(move |prev: Option<()>| {
            quantized.track();
            generation.update_value(|g| *g += 1);
            if prev.is_some() && visible.get_untracked() && loaded.get_value().is_some() {
                update();
            }
        });
    }

    let point = move |ev: &web_sys::PointerEvent| -> Option<(f32, f32)> {
        let c = pad_ref.get_untracked()?;
        let w = c.client_width().max(1) as f32;
        let h = c.client_height().max(1) as f32;
        Some((
            ev.offset_x() as f32 * PAD as f32 / w,
            ev.offset_y() as f32 * PAD as f32 / h,
        ))
    };
    let down = {
        let pad = pad.clone();
        let update = update.clone();
        move |ev: web_sys::PointerEvent| {
            ev.prevent_default();
            if let Some(c) = pad_ref.get_untracked() {
                let _ = c.set_pointer_capture(ev.pointer_id());
            }
            let Some(p0) = point(&ev) else { return };
            {
                let mut p = pad.borrow_mut();
                stroke(&mut p.ink, PAD, p0, p0, PEN);
                p.last = Some(p0);
            }
            update();
        }
    };
    let moved = {
        let pad = pad.clone();
        let update = update.clone();
        move |ev: web_sys::PointerEvent| {
            let Some(p1) = point(&ev) else { return };
            let drew = {
                let mut p = pad.borrow_mut();
                match p.last {
                    Some(p0) => {
                        stroke(&mut p.ink, PAD, p0, p1, PEN);
                        p.last = Some(p1);
                        true
                    }
                    None => false,
                }
            };
            if drew {
                update();
            }
        }
    };
    let up = {
        let pad = pad.clone();
        move |_: web_sys::PointerEvent| pad.borrow_mut().last = None
    };
    let clear = {
        let pad = pad.clone();
        let update = update.clone();
        move |_| {
            {
                let mut p = pad.borrow_mut();
                p.ink.fill(0.0);
                p.last = None;
            }
            cleared.set(true);
            update();
        }
    };
    let label_of = {
        let test = test.clone();
        move |i: usize| test.labels.get(i).copied().unwrap_or(0)
    };
    let setting = Signal::derive(move || settings.setting_label());
    let step = move |d: isize| {
        settings.digit.update(|i| {
            *i = (*i as isize + d).rem_euclid(total.max(1) as isize) as usize;
        })
    };
    let reload = {
        let load_digit = load_digit.clone();
        move |_| load_digit(settings.digit.get_untracked())
    };

    view! {
        <section class="panel draw" aria-labelledby="draw-title" id="draw" node_ref=section>
            <h2 id="draw-title">"Draw a digit"</h2>
            <p class="explain">
                "Write a digit on the pad. Your ink goes through MNIST's own preprocessing, "
                "as the training digits did. It is scaled to fit a 20×20 box, keeping its shape, "
                "then moved so its centre of mass sits at the middle of a 28×28 field. The small "
                "square shows what the network actually reads. The bars give each class's "
                "probability under FP32 and under your recipe. Near a decision boundary, a few "
                "bits less can change the answer: try a sloppy 7 or an open 4 at 2 or 3 bits."
            </p>
            <div class="draw-grid">
                <div class="pad-wrap">
                    <canvas
                        node_ref=pad_ref
                        class="pad"
                        width=PAD
                        height=PAD
                        aria-label="Drawing pad: draw a digit with a mouse, pen or finger"
                        on:pointerdown=down
                        on:pointermove=moved
                        on:pointerup=up.clone()
                        on:pointercancel=up
                    ></canvas>
                    <div class="pad-tools">
                        <button type="button" on:click=clear>"Clear"</button>
                        <button type="button" on:click=move |_| step(-1) aria-label="previous test digit">"‹"</button>
                        <label class="digit-pick">
                            "test digit "
                            <input type="number" min="0" max=total.saturating_sub(1) step="1"
                                prop:value=move || settings.digit.get().to_string()
                                on:change=move |ev| {
                                    if let Ok(i) = event_target_value(&ev).trim().parse::<usize>() {
                                        settings.digit.set(i.min(total.saturating_sub(1)));
                                    }
                                } />
                        </label>
                        <button type="button" on:click=move |_| step(1) aria-label="next test digit">"›"</button>
                        <button type="button" on:click=reload>"Reset"</button>
                    </div>
                    <p class="caption">
                        {move || if cleared.get() {
                            "Your own digit: draw it large, in one or two strokes.".to_string()
                        } else {
                            format!("Started from test digit {} (labelled {}); draw over it, or clear the pad.",
                                settings.digit.get(), label_of(settings.digit.get()))
                        }}
                    </p>
                </div>
                <div class="seen-wrap">
                    <canvas node_ref=seen_ref class="seen" width=SIDE height=SIDE
                        aria-label="The 28 by 28 digit the network reads"></canvas>
                    <p class="caption">"What the network reads (28×28)"</p>
                </div>
                <div class="probs-wrap">
                    <ProbabilityBars probs setting />
                    <p class="caption" id="draw-timing" data-ms=move || update_ms.get().map_or(String::new(), |m| format!("{m:.2}"))>
                        {move || update_ms.get().map(|m| format!("Ink to both predictions: {m:.1} ms, in your browser."))}
                    </p>
                    {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    {move || quantized.with(|q| q.as_ref().err().cloned()).map(|e| view! {
                        <p class="error" role="alert">"The quantized network could not be built: " {e}</p>
                    })}
                </div>
            </div>
        </section>
    }
}

/// The pad's ink, white on black, at the pad's resolution.
fn paint_pad(canvas: &web_sys::HtmlCanvasElement, ink: &[f32]) {
    paint(canvas, ink, PAD);
}
