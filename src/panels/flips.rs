//! Which digits flip: the test digits whose predicted class under the reader's recipe differs
//! from FP32's, as thumbnails (sortable; a click shows both networks' probabilities), their
//! count against the bit width as a curve, and the quantized network's confusion matrix beside
//! its change from FP32's. The class scores are computed here, a slice of digits per task, so
//! no task holds the page; the newest recipe wins.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::panels::draw::{paint, Probabilities, ProbabilityBars};
use leptos::html;
use leptos::prelude::*;
use quant_charts::flip_curve::FlipCount;
use quant_core::data::{Digits, SIDE};
use quant_core::infer::Inference;
use quant_core::model::{MnistNet, CLASSES};
use quant_core::quant::Bits;
use quant_core::recipe::Recipe;
use quant_core::study::{confusion, flips, softmax, Flip};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Digits per task: ~8 ms of forward passes in wasm.
const SLICE: usize = 100;
/// Thumbnails shown before "show all".
const FIRST: usize = 48;
/// Recipes whose scores are kept.
const KEPT: usize = 24;

/// How the thumbnails are ordered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The quantized network's most confident mistakes first.
    QuantizedConfidence,
    /// FP32's most confident answers first: the surest digits that still flipped.
    Fp32Confidence,
    Label,
    Index,
}

/// Scores `[n][10]` per network: FP32 under `None`.
type Scores = HashMap<Option<Recipe>, Arc<Vec<f32>>>;

/// The recipes whose scores the panel wants, in order: FP32, the reader's, then the reader's at
/// every other width (for the curve; a format of its own has no widths).
fn wanted(recipe: Recipe) -> Vec<Option<Recipe>> {
    let mut out = vec![None, Some(recipe)];
    if recipe.default.is_int() {
        out.extend(
            Bits::ALL
                .into_iter()
                .map(|b| Some(recipe.with_default(|d| d.bits = b)))
                .filter(|r| *r != Some(recipe)),
        );
    }
    out
}

#[component]
fn Thumb(values: Vec<f32>) -> impl IntoView {
    let node = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        if let Some(c) = node.get() {
            paint(&c, &values, SIDE);
        }
    });
    view! { <canvas node_ref=node class="thumb" width=SIDE height=SIDE aria-hidden="true"></canvas> }
}

#[component]
pub fn FlipsPanel(
    settings: Settings,
    net: Arc<MnistNet>,
    /// The network under the reader's recipe.
    quantized: Memo<Result<Arc<MnistNet>, String>>,
    test: Arc<Digits>,
) -> impl IntoView {
    let total = test.len();
    let scores: RwSignal<Scores> = RwSignal::new(HashMap::new());
    let failed = RwSignal::new(None::<String>);
    // Each move starts a new chain; an older chain stops at its next slice.
    let generation = StoredValue::new(0u64);
    // Progress of the reader's recipe, in digits.
    let done_digits = RwSignal::new(0usize);

    let start = {
        let net = net.clone();
        let test = test.clone();
        move |recipe: Recipe| {
            generation.update_value(|g| *g += 1);
            let gen = generation.get_value();
            let todo: Vec<Option<Recipe>> = wanted(recipe)
                .into_iter()
                .filter(|r| scores.with_untracked(|s| !s.contains_key(r)))
                .collect();
            done_digits.set(
                if scores.with_untracked(|s| s.contains_key(&Some(recipe))) {
                    total
                } else {
                    0
                },
            );
            let ctx = Rc::new(Chain {
                gen,
                generation,
                fp32: net.clone(),
                reader: recipe,
                quantized,
                test: test.clone(),
                scores,
                failed,
                done_digits,
            });
            set_timeout(move || next_network(ctx, todo), Duration::from_millis(60));
        }
    };
    // Only while the panel is on screen (or near it): its scores are main-thread work.
    let section = NodeRef::<html::Section>::new();
    let visible = crate::canvas::near_viewport(section, settings.fixed.embed.is_some());
    Effect::new(move |_| {
        quantized.track();
        let recipe = settings.recipe.get();
        if !visible.get() {
            // A chain under way stops at its next slice; what it finished is kept.
            generation.update_value(|g| *g += 1);
            return;
        }
        failed.set(None);
        start(recipe);
    });

    let order = RwSignal::new(Order::QuantizedConfidence);
    let show_all = RwSignal::new(false);
    let recipe = move || settings.recipe.get();
    let pair =
        move || scores.with(|s| Some((s.get(&None)?.clone(), s.get(&Some(recipe()))?.clone())));
    let labels = test.labels.clone();
    let flipped = Memo::new({
        let labels = labels.clone();
        move |_| {
            pair().map(|(f, q)| {
                let mut list = flips(&f, &q, &labels);
                match order.get() {
                    Order::QuantizedConfidence => list
                        .sort_by(|a, b| b.quantized_confidence.total_cmp(&a.quantized_confidence)),
                    Order::Fp32Confidence => {
                        list.sort_by(|a, b| b.fp32_confidence.total_cmp(&a.fp32_confidence))
                    }
                    Order::Label => list.sort_by_key(|f| (f.label, f.index)),
                    Order::Index => {}
                }
                list
            })
        }
    });
    let counts = Memo::new({
        let labels = labels.clone();
        move |_| {
            let r = recipe();
            scores.with(|s| {
                let f = s.get(&None)?;
                Some(
                    wanted(r)
                        .into_iter()
                        .flatten()
                        .filter_map(|v| {
                            let q = s.get(&Some(v))?;
                            let list = flips(f, q, &labels);
                            Some(FlipCount {
                                bits: v.default.bits.get() as u8,
                                flips: list.len(),
                                broken: list.iter().filter(|x| x.broke() == Some(true)).count(),
                            })
                        })
                        .collect::<Vec<_>>(),
                )
            })
        }
    });
    let selected_probs = {
        let test_len = total;
        Signal::derive(move || {
            let i = settings.digit.get().min(test_len.saturating_sub(1));
            let (f, q) = pair()?;
            let row = |s: &[f32]| softmax(&s[i * CLASSES..(i + 1) * CLASSES]);
            Some(Probabilities {
                fp32: row(&f),
                quantized: Some(row(&q)),
            })
        })
    };
    let setting = Signal::derive(move || settings.setting_label());

    let thumbs = {
        let test = test.clone();
        move || {
            let Some(list) = flipped.get() else {
                return view! { <p class="caption">"Computing the class scores of every test digit…"</p> }.into_any();
            };
            if list.is_empty() {
                return view! { <p class="caption no-flips">"No test digit changes its answer under this recipe."</p> }.into_any();
            }
            let n = if show_all.get() {
                list.len()
            } else {
                list.len().min(FIRST)
            };
            let items = list[..n]
                .iter()
                .map(|f: &Flip| {
                    let f = *f;
                    let values = test.images_f32_rows(f.index..f.index + 1).into_raw_vec_and_offset().0;
                    let pick = move |_| settings.digit.set(f.index);
                    let title = format!(
                        "Test digit {}, labelled {}: FP32 says {} ({:.0}%), quantized says {} ({:.0}%)",
                        f.index, f.label, f.fp32, 100.0 * f.fp32_confidence, f.quantized, 100.0 * f.quantized_confidence
                    );
                    view! {
                        <li>
                            <button type="button" class="flip" class:selected=move || settings.digit.get() == f.index
                                class:broke=f.broke() == Some(true) class:mended=f.broke() == Some(false)
                                on:click=pick title=title.clone() aria-label=title data-index=f.index.to_string()>
                                <Thumb values />
                                <span class="flip-text">
                                    <span class="flip-label">{format!("label {}", f.label)}</span>
                                    <span class="flip-change">{format!("{} → {}", f.fp32, f.quantized)}</span>
                                    <span class="flip-conf">{format!("{:.0}% → {:.0}%", 100.0 * f.fp32_confidence, 100.0 * f.quantized_confidence)}</span>
                                </span>
                            </button>
                        </li>
                    }
                })
                .collect_view();
            let count = list.len();
            let more = (count > FIRST).then(|| {
                view! {
                    <button type="button" class="link" on:click=move |_| show_all.update(|s| *s = !*s)>
                        {move || if show_all.get() { format!("Show the first {FIRST}") } else { format!("Show all {count}") }}
                    </button>
                }
            });
            view! { <ul class="flip-grid" data-count=count.to_string()>{items}</ul> {more} }
                .into_any()
        }
    };
    let summary = move || {
        let Some(list) = flipped.get() else {
            return format!(
                "Scoring the {total} test digits under this recipe: {} done.",
                done_digits.get()
            );
        };
        let broke = list.iter().filter(|f| f.broke() == Some(true)).count();
        let mended = list.iter().filter(|f| f.broke() == Some(false)).count();
        format!(
            "{} of the {total} test digits change their answer under {}: {broke} that FP32 got \
             right are now wrong, {mended} that it got wrong are now right, and {} move from one \
             wrong answer to another.",
            list.len(),
            settings.setting_label(),
            list.len() - broke - mended
        )
    };
    let matrices = {
        let labels = labels.clone();
        move || {
            let (f, q) = pair()?;
            let (mf, mq) = (confusion(&f, &labels), confusion(&q, &labels));
            let head = (0..CLASSES)
                .map(|c| view! { <th scope="col">{c}</th> })
                .collect_view();
            let rows = (0..CLASSES)
                .map(|t| {
                    let cells = (0..CLASSES)
                        .map(|p| {
                            let (n, d) = (mq[t][p], mq[t][p] as i64 - mf[t][p] as i64);
                            let text = if d == 0 {
                                n.to_string()
                            } else {
                                format!("{n} ({d:+})").replace('-', "−")
                            };
                            view! {
                                <td class="num" class:diag=t == p class:worse=(t == p && d < 0) || (t != p && d > 0)
                                    class:better=(t == p && d > 0) || (t != p && d < 0) class:zero=n == 0>
                                    {text}
                                </td>
                            }
                        })
                        .collect_view();
                    view! { <tr><th scope="row">{t}</th>{cells}</tr> }
                })
                .collect_view();
            Some(view! {
                <div class="table-scroll">
                    <table class="confusion">
                        <caption>
                            "Confusion matrix under " {settings.setting_label()}
                            ": rows are the true label, columns the prediction; in brackets, the change from FP32's matrix."
                        </caption>
                        <thead><tr><th scope="col">"true ↓ / said →"</th>{head}</tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            })
        }
    };
    let curve_numbers = Signal::derive(move || {
        counts
            .get()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                vec![
                    c.bits.to_string(),
                    c.flips.to_string(),
                    c.broken.to_string(),
                ]
            })
            .collect()
    });
    let curve_label = Signal::derive(move || {
        "Test digits whose answer flips against the bit width, all flips and those that broke a right answer.".to_string()
    });
    let detail_image = NodeRef::<html::Canvas>::new();
    {
        let test = test.clone();
        Effect::new(move |_| {
            let i = settings.digit.get().min(total.saturating_sub(1));
            if let Some(c) = detail_image.get() {
                let v = test.images_f32_rows(i..i + 1).into_raw_vec_and_offset().0;
                paint(&c, &v, SIDE);
            }
        });
    }
    let detail_label = {
        let labels = labels.clone();
        move || {
            let i = settings.digit.get().min(total.saturating_sub(1));
            format!(
                "Test digit {i}, labelled {}",
                labels.get(i).copied().unwrap_or(0)
            )
        }
    };
    let go_draw = move |_| {
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("draw"))
        {
            el.scroll_into_view();
        }
    };

    view! {
        <section class="panel wide flips" aria-labelledby="flips-title" id="flips" node_ref=section>
            <h2 id="flips-title">"Which digits flip"</h2>
            <p class="explain">
                "Accuracy is one number; behind it are single digits. These are the test digits "
                "whose answer changes when the network is quantized with your recipe. Most sit "
                "near a decision boundary, where FP32 was already unsure, so a little rounding "
                "pushes them across. A flip is not always a loss: a digit FP32 got wrong can come "
                "out right. Click a digit to see both networks' probabilities."
            </p>
            <p class="status" id="flips-status" aria-live="polite">{summary}</p>
            {move || failed.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <div class="flip-controls">
                <label>
                    "Order "
                    <select on:change=move |ev| order.set(match event_target_value(&ev).as_str() {
                        "fp32" => Order::Fp32Confidence,
                        "label" => Order::Label,
                        "index" => Order::Index,
                        _ => Order::QuantizedConfidence,
                    })>
                        <option value="quant">"most confident quantized answer first"</option>
                        <option value="fp32">"most confident FP32 answer first"</option>
                        <option value="label">"by label"</option>
                        <option value="index">"by test order"</option>
                    </select>
                </label>
            </div>
            {thumbs}
            <div class="flip-detail">
                <div>
                    <canvas node_ref=detail_image class="detail" width=SIDE height=SIDE aria-hidden="true"></canvas>
                    <p class="caption">{detail_label}</p>
                    {settings.fixed.embed.is_none().then(|| view! {
                        <button type="button" class="link" on:click=go_draw>"Draw over it ↑"</button>
                    })}
                </div>
                <ProbabilityBars probs=selected_probs setting />
            </div>
            <h3>"Flips against the bit width"</h3>
            <ChartCanvas
                draw=move |area, theme| {
                    let c = counts.get().unwrap_or_default();
                    let current = settings.recipe.with(|r| r.default.is_int().then(|| r.default.bits.get() as u8));
                    let _ = quant_charts::flip_curve::draw(area, &c, current, theme);
                }
                label=curve_label
                name="flip-curve"
                columns=&["bits", "flips", "right → wrong"]
                numbers=curve_numbers
                aspect=0.45
            />
            <ul class="legend">
                <li><span class="swatch sym"></span>"all flips (solid, ●)"</li>
                <li><span class="swatch asym"></span>"right → wrong (dashed, ▲)"</li>
                <li><span class="swatch ring"></span>"your width"</li>
            </ul>
            <h3>"Confusion matrix"</h3>
            {matrices}
        </section>
    }
}

/// A chain of tasks computing the scores the panel wants.
struct Chain {
    gen: u64,
    generation: StoredValue<u64>,
    fp32: Arc<MnistNet>,
    reader: Recipe,
    quantized: Memo<Result<Arc<MnistNet>, String>>,
    test: Arc<Digits>,
    scores: RwSignal<Scores>,
    failed: RwSignal<Option<String>>,
    done_digits: RwSignal<usize>,
}

impl Chain {
    fn current(&self) -> bool {
        self.generation.get_value() == self.gen
    }
}

/// Builds the next wanted network and scores it slice by slice.
fn next_network(ctx: Rc<Chain>, mut todo: Vec<Option<Recipe>>) {
    if !ctx.current() || todo.is_empty() {
        return;
    }
    let key = todo.remove(0);
    let net = match key {
        None => Ok((*ctx.fp32).clone()),
        Some(r) if r == ctx.reader => ctx
            .quantized
            .with_untracked(|q| q.as_ref().map(|n| (**n).clone()).map_err(Clone::clone)),
        Some(r) => ctx.fp32.fake_quantized(&r).map_err(|e| e.to_string()),
    };
    match net {
        Ok(net) => {
            let inference = Inference::new(&net);
            let out = Vec::with_capacity(ctx.test.len() * CLASSES);
            slice(ctx, todo, key, inference, out);
        }
        Err(e) => {
            if key == Some(ctx.reader) {
                ctx.failed.set(Some(format!(
                    "This recipe's network could not be built: {e}"
                )));
            }
            set_timeout(move || next_network(ctx, todo), Duration::from_millis(0));
        }
    }
}

fn slice(
    ctx: Rc<Chain>,
    todo: Vec<Option<Recipe>>,
    key: Option<Recipe>,
    mut inference: Inference,
    mut out: Vec<f32>,
) {
    if !ctx.current() {
        return;
    }
    let n = ctx.test.len();
    let start = out.len() / CLASSES;
    let end = (start + SLICE).min(n);
    let images = ctx.test.images_f32_rows(start..end);
    let images = images.as_standard_layout();
    out.extend_from_slice(inference.logits(images.as_slice().expect("standard layout")));
    if key == Some(ctx.reader) {
        ctx.done_digits.set(end);
    }
    if end < n {
        set_timeout(
            move || slice(ctx, todo, key, inference, out),
            Duration::from_millis(0),
        );
        return;
    }
    ctx.scores.update(|s| {
        if s.len() >= KEPT {
            s.retain(|k, _| k.is_none());
        }
        s.insert(key, Arc::new(out));
    });
    set_timeout(move || next_network(ctx, todo), Duration::from_millis(0));
}
