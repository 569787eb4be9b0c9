//! Each layer its own bits: a control per layer (a width, or a format), the model's size and
//! accuracy following; the sensitivity chart (each layer quantized alone at each width, the
//! others FP32: which layer breaks first); and the allocation under a size budget: every
//! assignment of the eight widths to the four layers ranked by the loss the sensitivity table
//! predicts, the two predicted fronts measured by the workers, the measured front drawn with the
//! reader's recipe on it, and the best recipe under the budget one click away.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use leptos::prelude::*;
use quant_charts::allocation::SizePoint;
use quant_charts::sensitivity::LayerLine;
use quant_core::eval::{Precision, Progress};
use quant_core::fmt::{accuracy, thousands};
use quant_core::formats::Format;
use quant_core::model::Layer;
use quant_core::quant::Bits;
use quant_core::recipe::{LayerRecipe, Recipe};
use quant_core::report::{layer_size_bytes, model_size_bytes};
use quant_core::study::{
    best_under, front_by, predicted_front, sensitivity_recipes, Candidate, Measured, FRONTS,
};
use std::time::Duration;

/// Long enough after a move that the workers' own background has been released (300 ms).
const PAUSE_MS: u64 = 450;

/// The per-layer choices a select offers: follow the default, FP32, each integer width, and
/// the formats.
fn choices() -> Vec<(String, String)> {
    let mut out = vec![
        ("default".to_string(), "as the default".to_string()),
        ("fp32".to_string(), "FP32 (not quantized)".to_string()),
    ];
    out.extend(Bits::ALL.iter().map(|b| (b.to_string(), format!("INT{b}"))));
    out.extend(
        Format::ALL
            .iter()
            .filter(|f| **f != Format::Int)
            .map(|f| (f.key().to_string(), f.label().to_string())),
    );
    out
}

/// The select's value for a layer: `default` when it follows the default.
fn choice_of(recipe: &Recipe, layer: Layer) -> String {
    match recipe.overrides[layer as usize] {
        None => "default".into(),
        Some(o) if o.is_int() => o.bits.to_string(),
        Some(o) => o.format.key().into(),
    }
}

/// `recipe` with `layer` set to `choice` (a select's value).
fn with_choice(recipe: Recipe, layer: Layer, choice: &str) -> Recipe {
    if choice == "default" {
        let mut r = recipe;
        r.overrides[layer as usize] = None;
        return r;
    }
    let text = format!("{}={choice}", layer.name());
    quant_core::study::with_layer_bits(recipe, &text).unwrap_or(recipe)
}

#[component]
pub fn LayersPanel(
    /// Every setting's evaluation so far, published by the evaluation loop.
    progress: RwSignal<Vec<Progress>>,
    settings: Settings,
    /// How many test digits there are.
    total: usize,
) -> impl IntoView {
    let find = move |r: Recipe| {
        progress.with(|all| {
            all.iter()
                .find(|x| x.precision == Precision::Quantized(r))
                .copied()
        })
    };
    let done = move |r: Recipe| find(r).filter(|p| p.done);
    // Memos, so the charts redraw when a number they show changes, not at every publication
    // of the workers' progress (10 a second, on the core the workers also need).
    let fp32 = Memo::new(move |_| {
        progress.with(|all| {
            all.iter()
                .find(|x| x.precision == Precision::Fp32 && x.done)
                .copied()
        })
    });
    let fp32 = move || fp32.get();
    // The integer knobs the sensitivity and the allocation use: the default's.
    let base = Memo::new(move |_| {
        let d = settings.recipe.get().default;
        LayerRecipe {
            format: Format::Int,
            ..d
        }
    });
    let cells = Memo::new(move |_| sensitivity_recipes(base.get()));
    // The predicted fronts, once every cell of the sensitivity table is measured.
    let candidates = Memo::new(move |_| -> Option<Vec<Candidate>> {
        let f = fp32()?;
        let mut losses: [Vec<f64>; 4] = Default::default();
        for (l, _, r) in cells.get() {
            losses[l as usize].push(done(r)?.evaluation.loss);
        }
        Some(predicted_front(
            base.get(),
            &Bits::ALL,
            f.evaluation.loss,
            &losses,
            FRONTS,
        ))
    });
    // Ask the workers for the sensitivity table, then the candidates, once the reader pauses,
    // while the panel is on screen or near it (~160 settings: not for a reader elsewhere).
    let section = NodeRef::<leptos::html::Section>::new();
    let visible = crate::canvas::near_viewport(section, settings.fixed.embed.is_some());
    let asked = RwSignal::new(None::<f64>);
    Effect::new(move |_| {
        if !visible.get() {
            return;
        }
        // The table first (before the recipe's curves), then the search's candidates.
        let table: Vec<Precision> = cells
            .get()
            .into_iter()
            .map(|(_, _, r)| Precision::Quantized(r))
            .collect();
        let extra: Vec<Precision> = candidates
            .get()
            .unwrap_or_default()
            .iter()
            .map(|c| Precision::Quantized(c.recipe))
            .collect();
        set_timeout(
            move || {
                // When the table was asked for, for the benchmark's "sensitivity in the workers".
                if asked.get_untracked().is_none() {
                    asked.set(Some(crate::browser::now()));
                }
                crate::worker::soon(&table);
                crate::eval_loop::soon(&table);
                crate::worker::also(&extra);
                crate::eval_loop::also(&extra);
            },
            Duration::from_millis(PAUSE_MS),
        );
    });
    let measured = Memo::new(move |_| -> Vec<Measured> {
        candidates
            .get()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                Some(Measured {
                    candidate: c,
                    evaluation: done(c.recipe)?.evaluation,
                })
            })
            .collect()
    });
    let front = Memo::new(move |_| {
        front_by(&measured.get(), |m| {
            (m.candidate.size_bytes as f64, m.evaluation.accuracy)
        })
    });
    let best = Memo::new(move |_| {
        settings
            .budget
            .get()
            .and_then(|b| best_under(&measured.get(), b))
    });

    let size = move || settings.recipe.with(|r| model_size_bytes(Some(r)));
    let reader_acc = Memo::new(move |_| find(settings.recipe.get()));
    let reader_acc = move || reader_acc.get();
    let selects = Layer::ALL
        .into_iter()
        .map(|layer| {
            let options = choices()
                .into_iter()
                .map(|(value, text)| {
                    let v = value.clone();
                    view! {
                        <option value=value selected=move || settings.recipe.with(|r| choice_of(r, layer)) == v>
                            {text}
                        </option>
                    }
                })
                .collect_view();
            let shape = layer.weight_shape();
            let n: usize = shape.iter().product();
            let bytes = move || {
                layer_size_bytes(layer, Some(settings.recipe.with(|r| r.layer(layer))))
            };
            view! {
                <label class="layer-choice">
                    <span class="layer-name">{layer.name()}</span>
                    <span class="layer-shape">{format!("{} weights", thousands(n))}</span>
                    <select
                        data-layer=layer.name()
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            settings.recipe.update(|r| *r = with_choice(*r, layer, &v));
                            settings.evaluate_first();
                        }
                    >
                        {options}
                    </select>
                    <span class="layer-bytes">{move || format!("{} bytes", thousands(bytes()))}</span>
                </label>
            }
        })
        .collect_view();

    let lines = Memo::new(move |_| {
        Layer::ALL
            .iter()
            .map(|&l| LayerLine {
                name: l.name().to_string(),
                accuracy: std::array::from_fn(|i| {
                    cells.with(|c| {
                        c.iter()
                            .find(|(cl, b, _)| *cl == l && *b == Bits::ALL[i])
                            .and_then(|(_, _, r)| done(*r))
                            .map(|p| p.evaluation.accuracy)
                    })
                }),
            })
            .collect::<Vec<_>>()
    });
    let measured_cells = move || {
        lines
            .get()
            .iter()
            .map(|l| l.accuracy.iter().flatten().count())
            .sum::<usize>()
    };
    let sens_numbers = Signal::derive(move || {
        lines
            .get()
            .iter()
            .map(|l| {
                std::iter::once(l.name.clone())
                    .chain(
                        l.accuracy
                            .iter()
                            .map(|a| a.map_or("…".into(), |a| format!("{a:.2}%"))),
                    )
                    .collect()
            })
            .collect()
    });
    let sens_label = Signal::derive(move || {
        format!(
            "Test accuracy with one layer quantized alone at each width, the others FP32; {} of 32 measured.",
            measured_cells()
        )
    });
    let points = move || {
        let on: Vec<Measured> = front.get();
        measured
            .get()
            .iter()
            .map(|m| SizePoint {
                kilobytes: m.candidate.size_bytes as f64 / 1000.0,
                accuracy: m.evaluation.accuracy,
                on_front: on.iter().any(|f| f.candidate.bits == m.candidate.bits),
            })
            .collect::<Vec<_>>()
    };
    let alloc_numbers = Signal::derive(move || {
        front
            .get()
            .iter()
            .map(|m| {
                vec![
                    m.candidate
                        .bits
                        .iter()
                        .map(|b| b.to_string())
                        .collect::<Vec<_>>()
                        .join("/"),
                    thousands(m.candidate.size_bytes),
                    format!("{:.2}%", m.evaluation.accuracy),
                ]
            })
            .collect()
    });
    let alloc_label = Signal::derive(move || {
        format!(
            "Model size against accuracy for {} measured per-layer assignments; the front joins those nothing beats.",
            measured.with(Vec::len)
        )
    });
    let range = move || {
        let f = front.get();
        Some((
            f.first()?.candidate.size_bytes,
            f.last()?.candidate.size_bytes,
        ))
    };
    let use_best = move |_| {
        if let Some(m) = best.get_untracked() {
            settings.recipe.set(m.candidate.recipe);
            settings.evaluate_first();
        }
    };
    let status = move || {
        let cells_done = measured_cells();
        match candidates.get() {
            None => format!(
                "Measuring the sensitivity table: {cells_done} of 32 cells (each layer alone at each width, on the {total} test digits)."
            ),
            Some(c) => format!(
                "Searched all 4,096 assignments by the loss the table predicts; measured {} of the {} on its two fronts.",
                measured.with(Vec::len),
                c.len()
            ),
        }
    };

    view! {
        <section class="panel wide layers" aria-labelledby="layers-title" id="layers" node_ref=section>
            <h2 id="layers-title">"Each layer its own bits"</h2>
            <p class="explain">
                "The field's real question is not how many bits, but how many bits where. Give "
                "each layer its own width or format below, and the size and accuracy follow. fc1 "
                "holds 95% of the weights, so its width sets the size almost alone, while the "
                "tiny conv1 and fc2 cost almost nothing to keep precise. Real deployments do this: "
                "they keep the first and last layers at 8 bits or in FP32."
            </p>
            <div class="layer-choices">{selects}</div>
            <p class="status" id="layers-status">
                {move || {
                    let acc = reader_acc().map_or("…".to_string(), |p| {
                        accuracy(p.evaluation.correct, p.evaluation.count, total)
                    });
                    format!(
                        "This recipe: {} bytes ({:.1}× smaller than FP32's {}), accuracy {acc}.",
                        thousands(size()),
                        model_size_bytes(None) as f64 / size() as f64,
                        thousands(model_size_bytes(None)),
                    )
                }}
            </p>
            <h3>"Which layer breaks first"</h3>
            <p class="explain">
                "Each layer quantized alone, the other three left in FP32, at every width. A layer "
                "whose line drops early is sensitive: give it more bits. The error of a layer's "
                "weights is not the whole story: what matters is how far that error travels "
                "through the layers after it."
            </p>
            <ChartCanvas
                draw=move |area, theme| {
                    let f = fp32().map(|p| p.evaluation.accuracy);
                    let _ = quant_charts::sensitivity::draw(area, &lines.get(), f, theme);
                }
                label=sens_label
                name="sensitivity"
                columns=&["layer", "2", "3", "4", "5", "6", "7", "8", "16"]
                numbers=sens_numbers
                aspect=0.5
            />
            <ul class="legend">
                <li><span class="swatch sym"></span>"conv1 (●)"</li>
                <li><span class="swatch asym"></span>"conv2 (▲)"</li>
                <li><span class="swatch green"></span>"fc1 (✕)"</li>
                <li><span class="swatch orange"></span>"fc2 (■)"</li>
                <li><span class="swatch fp32line"></span>"FP32 (dashed)"</li>
            </ul>
            <h3>"What a byte budget buys"</h3>
            <p class="explain">
                "Every way to give the four layers one of the eight widths: 4,096 recipes. "
                "Measuring them all would take millions of forward passes, so the search predicts "
                "each recipe's loss from the table above (each layer's damage, added up), and "
                "measures only the recipes on the two best predicted fronts. The green staircase is "
                "the measured front: no measured recipe is both smaller and more accurate. Set a "
                "budget to get the most accurate recipe that fits."
            </p>
            <p class="status" id="alloc-status" data-measured=move || measured.with(Vec::len).to_string()
                data-cells=move || measured_cells().to_string()
                data-asked=move || asked.get().map_or(String::new(), |t| format!("{t:.1}"))
                data-candidates=move || candidates.with(|c| c.as_ref().map_or(String::new(), |c| c.len().to_string()))>{status}</p>
            <ChartCanvas
                draw=move |area, theme| {
                    let b = best.get().map(|m| (m.candidate.size_bytes as f64 / 1000.0, m.evaluation.accuracy));
                    let reader = reader_acc()
                        .filter(|p| p.done)
                        .map(|p| (size() as f64 / 1000.0, p.evaluation.accuracy));
                    let budget = settings.budget.get().map(|b| b as f64 / 1000.0);
                    let _ = quant_charts::allocation::draw(area, &points(), budget, b, reader, theme);
                }
                label=alloc_label
                name="allocation"
                columns=&["bits conv1/conv2/fc1/fc2", "size (bytes)", "accuracy"]
                numbers=alloc_numbers
                aspect=0.5
            />
            <ul class="legend">
                <li><span class="swatch green"></span>"measured front (●)"</li>
                <li><span class="swatch fp32"></span>"other measured recipes"</li>
                <li><span class="swatch asym"></span>"budget, and the best under it (ring)"</li>
                <li><span class="swatch ring"></span>"your recipe"</li>
            </ul>
            <div class="budget">
                <label>
                    "Budget "
                    <input type="range" min=move || range().map_or(0, |r| r.0) max=move || range().map_or(1, |r| r.1)
                        step="1000" disabled=move || range().is_none()
                        // After min and max (which arrive with the front), or the value is clamped.
                        prop:value=move || {
                            let _ = range();
                            settings.budget.get().unwrap_or(0).to_string()
                        }
                        on:input=move |ev| {
                            if let Ok(b) = event_target_value(&ev).parse::<usize>() {
                                settings.budget.set(Some(b));
                            }
                        } />
                    <input type="number" min="1" step="1000" class="budget-bytes"
                        prop:value=move || settings.budget.get().map_or(String::new(), |b| b.to_string())
                        on:change=move |ev| {
                            settings.budget.set(event_target_value(&ev).trim().parse::<usize>().ok().filter(|&b| b > 0));
                        } />
                    " bytes"
                </label>
                <p class="caption" id="alloc-best">
                    {move || match (settings.budget.get(), best.get()) {
                        (None, _) => "Choose a budget to see the best recipe that fits.".to_string(),
                        (Some(b), None) => format!("Nothing measured fits in {} bytes yet.", thousands(b)),
                        (Some(b), Some(m)) => format!(
                            "Best under {} bytes: conv1/conv2/fc1/fc2 at {} bits, {} bytes, {:.2}% on the {total} test digits.",
                            thousands(b),
                            m.candidate.bits.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("/"),
                            thousands(m.candidate.size_bytes),
                            m.evaluation.accuracy,
                        ),
                    }}
                </p>
                <button type="button" on:click=use_best disabled=move || best.get().is_none()>
                    "Use this recipe"
                </button>
            </div>
        </section>
    }
}
