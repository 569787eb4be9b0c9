//! The format gallery: every number format applied to the whole network — bits per weight with
//! its scales counted, size, error and accuracy — as a table and as a chart of accuracy against
//! bits with the Pareto front. The workers evaluate the formats after the reader's own setting,
//! once the reader pauses; the errors are computed here a format at a time between frames.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use leptos::prelude::*;
use quant_charts::format_gallery::GalleryPoint;
use quant_core::eval::{Precision, Progress};
use quant_core::fmt::{accuracy, thousands};
use quant_core::model::MnistNet;
use quant_core::recipe::Recipe;
use quant_core::report::{
    bits_per_weight, format_label, gallery_recipes, model_error, model_size_bytes, pareto_front,
};
use quant_core::stats::ErrorStats;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Long enough after a move that the workers' own background has been released (300 ms).
const PAUSE_MS: u64 = 450;

#[component]
pub fn GalleryPanel(
    /// Every setting's evaluation so far, published by the evaluation loop.
    progress: RwSignal<Vec<Progress>>,
    /// The reader's choices: the integer rows follow its scheme and granularity, and a row's
    /// button sets its format.
    settings: Settings,
    /// The network whose weights are measured.
    net: Arc<MnistNet>,
    /// How many test digits there are.
    total: usize,
) -> impl IntoView {
    // The integer rows follow the reader's scheme and granularity; the other formats do not
    // depend on the recipe at all.
    let recipes = Memo::new(move |_| gallery_recipes(&settings.recipe.get()));
    // Each row's error over all 421,408 weights, computed once per recipe.
    let errors: RwSignal<HashMap<Recipe, Result<ErrorStats, String>>> =
        RwSignal::new(HashMap::new());
    Effect::new(move |_| {
        let missing: Vec<Recipe> = recipes.with(|rs| {
            errors.with_untracked(|e| rs.iter().filter(|r| !e.contains_key(r)).copied().collect())
        });
        let net = net.clone();
        // One format per task, so no task holds the page for long.
        fn next(
            mut todo: Vec<Recipe>,
            net: Arc<MnistNet>,
            errors: RwSignal<HashMap<Recipe, Result<ErrorStats, String>>>,
        ) {
            let Some(r) = todo.pop() else { return };
            // A chain started by an earlier move may have measured it meanwhile.
            if !errors.with_untracked(|m| m.contains_key(&r)) {
                let e = model_error(&net, &r).map_err(|e| e.to_string());
                errors.update(|m| {
                    m.insert(r, e);
                });
            }
            set_timeout(move || next(todo, net, errors), Duration::from_millis(10));
        }
        let mut todo = missing;
        todo.reverse();
        set_timeout(
            move || next(todo, net, errors),
            Duration::from_millis(PAUSE_MS),
        );
    });
    // Ask the workers for the formats' accuracy once the reader pauses (a move forgets them;
    // what is done stays done).
    Effect::new(move |_| {
        let extra: Vec<Precision> = recipes
            .get()
            .into_iter()
            .map(Precision::Quantized)
            .collect();
        set_timeout(
            move || {
                crate::worker::also(&extra);
                crate::eval_loop::also(&extra);
            },
            Duration::from_millis(PAUSE_MS),
        );
    });
    let find = move |r: Recipe| {
        progress.with(|all| {
            all.iter()
                .find(|x| x.precision == Precision::Quantized(r))
                .copied()
        })
    };
    let rows = Memo::new(move |_| {
        let current = settings.recipe.get();
        let mut rows: Vec<Row> = recipes
            .get()
            .into_iter()
            .map(|r| Row {
                recipe: r,
                label: format_label(&r),
                bits: bits_per_weight(&r),
                size: model_size_bytes(Some(&r)),
                progress: find(r),
                on_front: false,
                selected: r.default.format == current.default.format
                    && (!r.default.is_int() || r.default.bits == current.default.bits),
            })
            .collect();
        let front = pareto_front(
            &rows
                .iter()
                .map(|r| (r.bits, r.done().map(|p| p.evaluation.accuracy)))
                .collect::<Vec<_>>(),
        );
        for (row, on_front) in rows.iter_mut().zip(front) {
            row.on_front = on_front;
        }
        rows
    });
    let points = move || {
        rows.with(|rows| {
            rows.iter()
                .map(|r| GalleryPoint {
                    label: short_label(&r.label),
                    bits_per_weight: r.bits,
                    accuracy: r.done().map(|p| p.evaluation.accuracy),
                    on_front: r.on_front,
                    selected: r.selected,
                })
                .collect::<Vec<_>>()
        })
    };
    let filled = move || rows.with(|rows| rows.iter().filter(|r| r.done().is_some()).count());
    let numbers = Signal::derive(move || {
        rows.with(|rows| {
            rows.iter()
                .map(|r| {
                    vec![
                        r.label.clone(),
                        format!("{:.2}", r.bits),
                        r.done().map_or("…".into(), |p| {
                            accuracy(p.evaluation.correct, p.evaluation.count, total)
                        }),
                        if r.on_front {
                            "yes".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect()
        })
    });
    let label = Signal::derive(move || {
        format!(
            "Accuracy against bits per weight for {} formats, {} evaluated so far; the Pareto front joins the formats nothing beats.",
            rows.with(Vec::len),
            filled()
        )
    });
    let body = move || {
        rows.get()
            .into_iter()
            .map(|r| {
                let error = errors.with(|e| e.get(&r.recipe).cloned());
                let (mae, sqnr) = match error {
                    Some(Ok(e)) => (
                        format!("{:.2e}", e.mean_abs_error),
                        e.sqnr_db.map_or("∞".into(), |d| format!("{d:.1}")),
                    ),
                    Some(Err(e)) => (e, String::new()),
                    None => ("…".into(), "…".into()),
                };
                // Exact once every digit is in, an estimate with its margin before.
                let acc = match r.progress {
                    Some(p) if p.evaluation.count > 0 => {
                        accuracy(p.evaluation.correct, p.evaluation.count, total)
                            .split(", from")
                            .next()
                            .unwrap_or_default()
                            .to_string()
                    }
                    _ => "…".into(),
                };
                let loss = r.done().map_or("…".into(), |p| format!("{:.4}", p.evaluation.loss));
                let recipe = r.recipe;
                let pick = move |_| settings.change(|d| *d = recipe.default);
                view! {
                    <tr class:selected=r.selected class:front=r.on_front data-format=r.recipe.default.format.key()>
                        <th scope="row">
                            <button type="button" class="link" on:click=pick
                                title="Use this format across the page">{r.label.clone()}</button>
                        </th>
                        <td class="num">{format!("{:.2}", r.bits)}</td>
                        <td class="num">{thousands(r.size)}</td>
                        <td class="num">{mae}</td>
                        <td class="num">{sqnr}</td>
                        <td class="num acc">{acc}</td>
                        <td class="num">{loss}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    // Where the chart drew each point, for clicks on it.
    let positions = StoredValue::new(Vec::<(usize, i32, i32)>::new());
    let on_click = Callback::new(move |(x, y): (i32, i32)| {
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio().max(1.0));
        let hit = positions
            .with_value(|p| quant_charts::format_gallery::picked(p, x, y, (14.0 * dpr) as i32));
        if let Some(r) = hit.and_then(|i| rows.with_untracked(|rows| rows.get(i).map(|r| r.recipe)))
        {
            settings.change(|d| *d = r.default);
        }
    });
    view! {
        <section class="panel wide gallery" aria-labelledby="gallery-title">
            <h2 id="gallery-title">"Every format on the whole network"</h2>
            <p class="explain">
                "The same trained weights stored in each format, every layer alike, each checked "
                "bit for bit against the library that defines it. FP16 and BF16 are the training "
                "formats: BF16 keeps FP32's range with fewer digits. FP8 (E4M3, E5M2) trains and "
                "serves on recent GPUs, its values crowding near zero. Q8_0, Q5_0, Q4_1 and Q4_0 "
                "are llama.cpp's: blocks of 32 weights share one f16 scale. NF4 is QLoRA's: its "
                "16 levels sit at a normal distribution's quantiles, for weights that are roughly "
                "normal. The MX formats (OCP microscaling) give every 32 weights one power-of-two "
                "scale, cheap in hardware; NVFP4 scales every 16 by an FP8 number, and the tensor "
                "by an f32. torchao's INT4 gives each group of a Linear row a scale and a float "
                "zero point, and leaves the convolutions alone. Bits per weight count the scales: "
                "Q4_0 is 4.5, not 4. Click a point, or a format's name, to use it across the page."
            </p>
            <ChartCanvas
                draw=move |area, theme| {
                    if let Ok(p) = quant_charts::format_gallery::draw(area, &points(), theme) {
                        positions.set_value(p);
                    }
                }
                on_click
                label
                name="format-gallery"
                columns=&["format", "bits/weight", "accuracy", "on the front"]
                numbers=numbers
                aspect=0.55
            />
            <p class="caption" id="gallery-status">
                {move || {
                    let (n, all) = (filled(), rows.with(Vec::len));
                    if n < all {
                        format!("{n} of {all} formats evaluated on the {} test digits; the rest follow in the background.", thousands(total))
                    } else {
                        format!("All {all} formats evaluated on the {} test digits. The green line is the Pareto front: no other format is as small and as accurate.", thousands(total))
                    }
                }}
            </p>
            <div class="table-scroll">
                <table class="gallery-table" data-filled=move || filled().to_string()>
                    <thead>
                        <tr>
                            <th scope="col">"format"</th>
                            <th scope="col">"bits/weight"</th>
                            <th scope="col">"size (bytes)"</th>
                            <th scope="col">"mean abs error"</th>
                            <th scope="col">"SQNR (dB)"</th>
                            <th scope="col">"accuracy"</th>
                            <th scope="col">"loss"</th>
                        </tr>
                    </thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
        </section>
    }
}

/// One format's row.
#[derive(Clone, PartialEq)]
struct Row {
    recipe: Recipe,
    label: String,
    bits: f64,
    size: usize,
    progress: Option<Progress>,
    on_front: bool,
    selected: bool,
}

impl Row {
    /// The evaluation once it covers every test digit.
    fn done(&self) -> Option<Progress> {
        self.progress.filter(|p| p.done)
    }
}

/// A chart label: "INT4" for "INT4 sym, per-tensor", "torchao INT4 g32" without the layers it
/// keeps in FP32; the other formats' names as they are.
fn short_label(label: &str) -> String {
    match label.strip_prefix("INT") {
        Some(_) => label.split(' ').next().unwrap_or(label).to_string(),
        None => label.split(" (").next().unwrap_or(label).to_string(),
    }
}
