//! The QAT section: fine-tune the network with the reader's recipe in the forward pass and
//! watch the test accuracy come back, live, in a worker.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::qat_run::{self, QatSignals, RunView, Status, EVERY};
use leptos::prelude::*;
use quant_core::fmt::{accuracy, sig, thousands};
use quant_core::model::MnistNet;
use quant_core::qat::{QatSetting, WeightObserver, LEARNING_RATES};
use quant_core::recipe::{Granularity, Recipe};
use quant_core::view::layer_view_at;
use std::sync::Arc;

const STEPS: [usize; 5] = [100, 250, 500, 1000, 2000];

/// The recipe in words, for the section's own line ("2-bit symmetric per tensor").
fn recipe_words(r: &Recipe) -> String {
    let d = r.default;
    let granularity = match d.granularity {
        Granularity::PerTensor => "per tensor".to_string(),
        Granularity::PerChannel => "per channel".to_string(),
        Granularity::PerGroup(g) => format!("in groups of {g}"),
    };
    let more = if r.pairs().len() > 2 {
        " (with the other knobs above)"
    } else {
        ""
    };
    format!("{}-bit {} {granularity}{more}", d.bits, d.scheme)
}

/// A run's recipe and its QAT choices in words ("2-bit symmetric per tensor, LSQ, 4-bit
/// activations").
fn run_words(r: &RunView) -> String {
    let mut words = recipe_words(&r.recipe);
    if r.setting.lsq {
        words.push_str(", LSQ");
    }
    if r.setting.weight_observer == WeightObserver::MovingAverage {
        words.push_str(", moving-average range");
    }
    if let Some(b) = r.setting.activation_bits {
        words.push_str(&format!(", {b}-bit activations"));
    }
    words
}

/// A measured rate, to two significant figures (one run's timing holds no more).
fn rate(r: f64) -> String {
    let r = r.round() as usize;
    let digits = r.to_string().len() as u32;
    let unit = 10usize.pow(digits.saturating_sub(2));
    thousands(r / unit * unit)
}

#[component]
fn WeightsChart(
    settings: Settings,
    signals: QatSignals,
    net: Arc<MnistNet>,
    /// Before (the bundled weights) or after (the run's weights so far).
    after: bool,
) -> impl IntoView {
    // What the chart shows changes with the run, its recipe and the weights' step, not with
    // each step's progress: the histogram of fc1's 401,536 weights is not redone for those.
    let source = Memo::new(move |_| {
        signals.run.with(|r| {
            r.as_ref()
                .map(|r| (r.id, r.recipe, r.weights.as_ref().map(|w| w.step)))
        })
    });
    let view_of = Memo::new(move |_| {
        let layer = settings.layer.get();
        source.track();
        let (recipe, trained) = signals.run.with_untracked(|r| {
            r.as_ref()
                .map(|r| (r.recipe, r.weights.clone()))
                .unwrap_or((settings.recipe.get(), None))
        });
        let net: &MnistNet = match (&trained, after) {
            (Some(t), true) => &t.net,
            (None, true) => return None,
            _ => &net,
        };
        Some(layer_view_at(net, layer, &recipe, 0).map_err(|e| e.to_string()))
    });
    let label = Signal::derive(move || {
        let when = if after { "after QAT" } else { "before QAT" };
        match view_of.get() {
            Some(Ok(v)) => format!(
                "Histogram of {}'s FP32 weights {when}, with the recipe's grid; the quantized weights land on {} levels.",
                v.row.layer.name(),
                v.histogram.occupied_levels
            ),
            Some(Err(e)) => e,
            None => String::new(),
        }
    });
    let numbers = Signal::derive(move || {
        view_of.with(|v| match v {
            Some(Ok(v)) => {
                let h = &v.histogram.fp32;
                (0..h.counts.len())
                    .map(|i| {
                        let (a, b) = h.bin_edges(i);
                        vec![a.to_string(), b.to_string(), h.counts[i].to_string()]
                    })
                    .collect()
            }
            _ => Vec::new(),
        })
    });
    view! {
        <figure class="qat-weights">
            <figcaption>
                <strong>{move || if after {
                    let step = signals.run.with(|r| r.as_ref().and_then(|r| r.weights.as_ref()).map_or(0, |w| w.step));
                    format!("After {} steps of QAT", thousands(step))
                } else {
                    "Before QAT".to_string()
                }}</strong>
                " — " {move || settings.layer.get().name()}
                {move || match view_of.get() {
                    Some(Err(e)) => format!(": {e}"),
                    _ if after && signals.run.with(|r| r.as_ref().is_some_and(|r| r.setting.lsq)) => {
                        " (the grid drawn is the recipe's min–max one on these weights; LSQ's learned scales are in the chart above)".to_string()
                    }
                    _ => String::new(),
                }}
            </figcaption>
            <ChartCanvas
                draw=move |area, theme| {
                    view_of.with(|v| {
                        if let Some(Ok(v)) = v {
                            let _ = quant_charts::histogram::draw(area, &v.histogram, theme);
                        }
                    })
                }
                label
                name=if after { "qat-after" } else { "qat-before" }
                columns=&["from", "to", "weights"]
                numbers
                aspect=0.55
            />
        </figure>
    }
}

#[component]
pub fn QatPanel(settings: Settings, signals: QatSignals, net: Arc<MnistNet>) -> impl IntoView {
    let setting = settings.qat;
    let run = signals.run;
    let status = move || run.with(|r| r.as_ref().map(|r| r.status));
    let start = move |_| qat_run::start(settings.recipe.get(), setting.get(), signals);
    let last = move |r: &RunView| r.points.last().copied();

    let progress = move || {
        run.with(|r| {
            let r = r.as_ref()?;
            let steps = r.setting.steps;
            let (value, max, text) = match r.status {
                Status::Starting => (0.0, 1.0, "Starting the QAT worker…".to_string()),
                Status::Downloading(loaded, total) => (
                    loaded,
                    total.max(loaded).max(1.0),
                    format!(
                        "Fetching the 8,000 training digits: {} of {} kB…",
                        thousands((loaded / 1000.0).round() as usize),
                        if total > 0.0 {
                            thousands((total / 1000.0).round() as usize)
                        } else {
                            "6,300".into()
                        }
                    ),
                ),
                s => {
                    let rate = r
                        .rate
                        .map(|x| {
                            let on = match r.workers {
                                1 => "one worker".to_string(),
                                n => format!("{n} workers"),
                            };
                            format!(" · {} img/s on {on}", rate(x))
                        })
                        .unwrap_or_default();
                    let what = match s {
                        Status::Paused => "Paused at step",
                        Status::Finished => "Finished:",
                        _ => "Training: step",
                    };
                    let took = r
                        .seconds
                        .map(|t| format!(" in {t:.0} s"))
                        .unwrap_or_default();
                    (
                        r.step as f64,
                        steps as f64,
                        format!(
                            "{what} {} of {} steps of 64 digits{took}{rate}",
                            thousands(r.step),
                            thousands(steps)
                        ),
                    )
                }
            };
            Some(view! {
                <p class="qat-status" role="status" data-step=r.step.to_string() data-workers=r.workers.to_string()>
                    <progress max=max.to_string() value=value.to_string()></progress>
                    " " {text}
                </p>
            })
        })
    };

    let summary = move || {
        run.with(|r| {
            let r = r.as_ref()?;
            let first = r.points.first()?;
            let now = last(r)?;
            let n = first.test.count;
            let fp32 = r
                .fp32
                .map(|e| format!("; FP32 {}", accuracy(e.correct, e.count, n)))
                .unwrap_or_default();
            Some(view! {
                <p class="qat-summary"
                    data-step=now.step.to_string()
                    data-before=first.test.accuracy.to_string()
                    data-accuracy=now.test.accuracy.to_string()
                    data-rate=r.rate.unwrap_or(0.0).to_string()
                    data-shared-rate=r.shared_rate.unwrap_or(0.0).to_string()
                    data-evaluated-by-helper=r.evaluated_by_helper.to_string()>
                    {if now.step == 0 {
                        format!(
                            "{}: {} before QAT{fp32}; the first measurement after training comes at step {EVERY} ({} test digits, fake-quantized network).",
                            run_words(r),
                            accuracy(first.test.correct, first.test.count, n),
                            thousands(n),
                        )
                    } else {
                        format!(
                            "{}: {} before QAT, {} after {} steps{fp32} ({} test digits, fake-quantized network).",
                            run_words(r),
                            accuracy(first.test.correct, first.test.count, n),
                            accuracy(now.test.correct, now.test.count, n),
                            thousands(now.step),
                            thousands(n),
                        )
                    }}
                </p>
            })
        })
    };

    let curve_label = Signal::derive(move || {
        run.with(|r| match r {
            Some(r) => format!(
                "Test accuracy of the fake-quantized network against training steps, {} points so far{}.",
                r.points.len(),
                last(r)
                    .map(|p| format!(", the last {:.2}% at step {}", p.test.accuracy, p.step))
                    .unwrap_or_default()
            ),
            None => String::new(),
        })
    });
    let curve_numbers = Signal::derive(move || {
        run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.points
                        .iter()
                        .map(|p| {
                            vec![
                                p.step.to_string(),
                                format!("{:.2}", p.test.accuracy),
                                p.train_loss.map_or("–".into(), |l| format!("{l:.4}")),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    });
    let has_scales = Memo::new(move |_| {
        run.with(|r| {
            r.as_ref()
                .is_some_and(|r| r.points.iter().any(|p| p.scales.is_some()))
        })
    });
    let scales_numbers = Signal::derive(move || {
        run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.points
                        .iter()
                        .filter_map(|p| {
                            let s = p.scales?;
                            let mut row = vec![p.step.to_string()];
                            row.extend(s.iter().map(|v| sig(f64::from(*v))));
                            Some(row)
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    });
    let scales_label = Signal::derive(move || {
        run.with(|r| {
            let last = r.as_ref().and_then(|r| r.points.last()).and_then(|p| p.scales.map(|s| (p.step, s)));
            match last {
                Some((step, s)) => format!(
                    "Each layer's learned scale over the steps; at step {step}: conv1 {}, conv2 {}, fc1 {}, fc2 {}.",
                    sig(f64::from(s[0])), sig(f64::from(s[1])), sig(f64::from(s[2])), sig(f64::from(s[3]))
                ),
                None => String::new(),
            }
        })
    });
    let has_points =
        Memo::new(move |_| run.with(|r| r.as_ref().is_some_and(|r| !r.points.is_empty())));
    // The curves change with their points and the FP32 line, not with each step's progress.
    let points_drawn = Memo::new(move |_| {
        run.with(|r| {
            r.as_ref()
                .map(|r| (r.id, r.points.len(), r.fp32.map(|e| e.accuracy)))
        })
    });

    let download = move |_| {
        run.with_untracked(|r| {
            if let Some((r, w)) = r.as_ref().and_then(|r| Some((r, r.weights.clone()?))) {
                let name = format!(
                    "mnistnet-qat-{}-{}steps.safetensors",
                    r.recipe.to_string().replace(['&', '='], "-"),
                    w.step
                );
                crate::browser::download_bytes(&name, "application/octet-stream", &w.bytes);
            }
        })
    };
    // The whole app on the fine-tuned weights: kept for this tab, then the page again with
    // `model=qat` (every worker starts afresh on them).
    let use_weights = move |_| {
        let bytes = run.with_untracked(|r| {
            r.as_ref()
                .and_then(|r| r.weights.as_ref())
                .map(|w| w.bytes.clone())
        });
        let Some(bytes) = bytes else { return };
        match crate::browser::keep_weights(quant_core::url::ModelChoice::FineTuned, &bytes) {
            Ok(()) => {
                let state = quant_core::url::UrlState {
                    model: quant_core::url::ModelChoice::FineTuned,
                    ..settings.url_state()
                };
                crate::browser::navigate(&state.to_query());
            }
            Err(e) => signals.error.set(Some(e)),
        }
    };
    let idle = move || matches!(status(), None | Some(Status::Finished));
    let busy = move || matches!(status(), Some(Status::Starting | Status::Downloading(..)));

    let net_after = net.clone();
    view! {
        <section class="panel qat" aria-labelledby="qat-title" id="qat">
            <h2 id="qat-title">"Quantization-aware training: the accuracy comes back"</h2>
            <p class="explain">
                "Set 2 bits above and the network falls to about a third of the digits right. "
                "Quantization-aware training tells the baker upfront: fine-tune the trained weights "
                "with the quantization in the forward pass, so the loss sees the rounded network "
                "and the weights move to where rounding hurts least. Rounding has no useful "
                "derivative, so the backward pass uses the straight-through estimator: the gradient "
                "passes through round() unchanged, and stops only where the clamp cut a weight off. "
                "Here it runs in your browser: Adam, batches of 64 of the 8,000 training digits, "
                "the test accuracy of the quantized network measured every " {EVERY} " steps."
            </p>
            <div class="knobs qat-knobs">
                <p class="qat-recipe">
                    "Recipe: " <strong>{move || recipe_words(&settings.recipe.get())}</strong>
                    " — set it with the controls above."
                </p>
                <label>
                    "Steps"
                    <select id="qat-steps" prop:value=move || setting.get().steps.to_string()
                        on:change=move |e| {
                            if let Ok(n) = event_target_value(&e).parse() {
                                setting.update(|s| s.steps = n);
                            }
                        }>
                        {move || {
                            let mut steps = STEPS.to_vec();
                            let mine = setting.get().steps;
                            if !steps.contains(&mine) {
                                steps.push(mine);
                                steps.sort_unstable();
                            }
                            steps.into_iter().map(|n| view! { <option value=n.to_string()>{thousands(n)}</option> }).collect_view()
                        }}
                    </select>
                </label>
                <label>
                    "Learning rate"
                    <select id="qat-lr" prop:value=move || setting.get().lr.to_string()
                        on:change=move |e| {
                            if let Ok(i) = event_target_value(&e).parse::<usize>() {
                                if i < LEARNING_RATES.len() {
                                    setting.update(|s| s.lr = i);
                                }
                            }
                        }>
                        {(0..LEARNING_RATES.len()).map(|i| view! { <option value=i.to_string()>{QatSetting::lr_name(i)}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Weight range"
                    <select id="qat-observer"
                        prop:value=move || match setting.get().weight_observer {
                            WeightObserver::Current => "current",
                            WeightObserver::MovingAverage => "moving_average",
                        }
                        disabled=move || setting.get().lsq
                        on:change=move |e| {
                            let o = match event_target_value(&e).as_str() {
                                "moving_average" => WeightObserver::MovingAverage,
                                _ => WeightObserver::Current,
                            };
                            setting.update(|s| s.weight_observer = o);
                        }>
                        <option value="current">"recomputed each step (the essay)"</option>
                        <option value="moving_average">"moving average (PyTorch's default)"</option>
                    </select>
                </label>
                <label>
                    "Activations"
                    <select id="qat-abits"
                        prop:value=move || setting.get().activation_bits.map_or("fp32".to_string(), |b| b.to_string())
                        on:change=move |e| {
                            let b = event_target_value(&e).parse::<u8>().ok();
                            setting.update(|s| s.activation_bits = b);
                        }>
                        <option value="fp32">"FP32 (weights only)"</option>
                        {[8u8, 6, 4, 3, 2].map(|b| view! { <option value=b.to_string()>{format!("{b}-bit, fake-quantized")}</option> }).collect_view()}
                    </select>
                </label>
                <label class="qat-lsq">
                    <input id="qat-lsq" type="checkbox" prop:checked=move || setting.get().lsq
                        on:change=move |e| setting.update(|s| {
                            s.lsq = event_target_checked(&e);
                            // LSQ learns the scale: no observer chooses it.
                            if s.lsq {
                                s.weight_observer = WeightObserver::Current;
                            }
                        }) />
                    " Learn the scales (LSQ)"
                </label>
                <div class="qat-buttons">
                    <button id="qat-start" type="button" on:click=start disabled=busy>
                        {move || if idle() { "Start" } else { "Restart" }}
                    </button>
                    {move || match status() {
                        Some(Status::Training) => Some(view! {
                            <button id="qat-pause" type="button" on:click=move |_| qat_run::pause(signals)>"Pause"</button>
                        }.into_any()),
                        Some(Status::Paused) => Some(view! {
                            <button id="qat-resume" type="button" on:click=move |_| qat_run::resume(signals)>"Resume"</button>
                        }.into_any()),
                        _ => None,
                    }}
                    <button id="qat-reset" type="button" on:click=move |_| qat_run::reset(signals)
                        disabled=move || status().is_none()>"Reset"</button>
                </div>
            </div>
            {move || idle().then(|| status().is_none().then(|| view! {
                <p class="qat-hint">"Start fetches the 8,000 training digits once (6.3 MB) and trains in a background worker; the page stays responsive."</p>
            }))}
            {progress}
            {move || signals.error.get().map(|e| view! { <p class="error" role="alert">"QAT failed: " {e}</p> })}
            {summary}
            {move || has_points.get().then(|| view! {
                <ChartCanvas
                    draw=move |area, theme| {
                        points_drawn.track();
                        run.with_untracked(|r| {
                            if let Some(r) = r {
                                let fp32 = r.fp32.map(|e| e.accuracy);
                                let _ = quant_charts::qat_curve::draw(area, &r.points, r.setting.steps, fp32, theme);
                            }
                        })
                    }
                    label=curve_label
                    name="qat-curve"
                    columns=&["step", "test accuracy %", "training loss"]
                    numbers=curve_numbers
                    aspect=0.5
                />
                <ul class="legend">
                    <li><span class="swatch sym"></span>"test accuracy, quantized"</li>
                    <li><span class="swatch loss"></span>"training loss (right axis)"</li>
                    <li><span class="swatch fp32line"></span>"before QAT (the line to beat) and FP32 (the ceiling)"</li>
                </ul>
            })}
            {move || has_scales.get().then(|| view! {
                <figure class="qat-scales">
                    <figcaption>
                        <strong>"LSQ: each layer's learned scale"</strong>
                        " — as a fraction of the one the recipe calibrated at the start"
                    </figcaption>
                    <ChartCanvas
                        draw=move |area, theme| {
                            points_drawn.track();
                            run.with_untracked(|r| {
                                if let Some(r) = r {
                                    let _ = quant_charts::lsq_scales::draw(area, &r.points, r.setting.steps, theme);
                                }
                            })
                        }
                        label=scales_label
                        name="qat-scales"
                        columns=&["step", "conv1", "conv2", "fc1", "fc2"]
                        numbers=scales_numbers
                        aspect=0.4
                    />
                </figure>
            })}
            <div class="qat-histograms">
                <WeightsChart settings signals net=net.clone() after=false />
                {move || run.with(|r| r.as_ref().and_then(|r| r.weights.as_ref()).is_some_and(|w| w.step > 0)).then(|| {
                    view! { <WeightsChart settings signals net=net_after.clone() after=true /> }
                })}
            </div>
            {move || run.with(|r| r.as_ref().and_then(|r| r.weights.as_ref()).is_some_and(|w| w.step > 0)).then(|| view! {
                <p>
                    <button id="qat-download" type="button" on:click=download>
                        {move || run.with(|r| {
                            let step = r.as_ref().and_then(|r| r.weights.as_ref()).map_or(0, |w| w.step);
                            format!("Download the fine-tuned weights (step {})", thousands(step))
                        })}
                    </button>
                    {(settings.fixed.embed.is_none()).then(|| view! {
                        " "
                        <button id="qat-use" type="button" on:click=use_weights>
                            "Use them across the app"
                        </button>
                    })}
                    " (safetensors, PyTorch's names: "
                    <code>"model.load_state_dict(safetensors.torch.load_file(…))"</code>
                    "; the FP32 weights as trained — quantize them with the same recipe)"
                </p>
            })}
            <div class="explain qat-notes">
                <p>
                    <strong>"Why the weights gather at the levels. "</strong>
                    "Compare the two histograms at 2 or 3 bits: training under rounding pulls the FP32 "
                    "weights towards the grid lines, because a weight near a level loses little when "
                    "rounded. The network learns the grid it will be stored on."
                </p>
                <p>
                    <strong>"Why the range is recomputed each step. "</strong>
                    "Each step quantizes the current weights with the recipe's own range rule (min–max "
                    "by default), as the essay's code does, so the grid follows the weights as they move."
                </p>
                <p>
                    <strong>"Recomputed or averaged. "</strong>
                    "PyTorch's QAT does not take each step's range afresh: an observer keeps a moving "
                    "average of the weights' min and max (each step moves it 1 % of the way), so the "
                    "grid changes slowly while the weights settle onto it. Both are here, and the "
                    "average is PyTorch's to the bit."
                </p>
                <p>
                    <strong>"Activations too. "</strong>
                    "With activation bits set, every layer's output is fake-quantized as well (quint8 codes "
                    "over a moving-average range, PyTorch's default QAT observers, one step's whole batch "
                    "at a time, so on one worker), and the gradient passes each one's STE. Try W2A4: "
                    "the network learns to live with both roundings."
                </p>
                <p>
                    <strong>"Learning the scale (LSQ). "</strong>
                    "Instead of taking the scale from the weights' range, LSQ makes it a parameter and "
                    "trains it with the weights: a weight rounded up pushes the scale one way, one rounded "
                    "down the other, a clipped one pushes the grid's edge outwards. At 2 bits min–max puts "
                    "the outer levels at the extremes, where few weights are; LSQ pulls them in, towards "
                    "the bulk. The gradients are PyTorch's (checked against its learnable fake quantize); "
                    "the scale starts where the recipe calibrates it, one per tensor, the zero point fixed."
                </p>
            </div>
        </section>
    }
}
