//! The PTQ section: calibrate activations on training digits, convert to int8, and compare FP32,
//! weight-only fake quantization, simulated PTQ and the integer engine — as torch.ao does it.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::ptq_run::{self, PtqSignals, Stage};
use leptos::prelude::*;
use quant_core::eval::Evaluation;
use quant_core::fmt::{accuracy, sig, thousands};
use quant_core::observer::ObserverKind;
use quant_core::ptq::{Preset, PtqConfig, SiteRow, SITES};

const CALIBRATIONS: [usize; 8] = [1, 10, 100, 500, 1000, 2000, 4000, 8000];
const OBSERVERS: [(&str, &str); 5] = [
    ("histogram", "Histogram (L2 search)"),
    ("minmax", "MinMax"),
    ("moving_average", "MovingAverageMinMax"),
    ("percentile:99.99", "percentile 99.99 (ours)"),
    ("percentile:99.9", "percentile 99.9 (ours)"),
];

fn pct(f: f64) -> String {
    match f {
        0.0 => "0".into(),
        f if f < 1e-5 => "< 0.001 %".into(),
        f => format!("{:.3} %", 100.0 * f),
    }
}

fn rate(r: f64) -> String {
    // One timed run: three significant figures are more than it holds.
    let r = r.round() as usize;
    let digits = r.to_string().len() as u32;
    let unit = 10usize.pow(digits.saturating_sub(2));
    format!("≈ {}", thousands(r / unit * unit))
}

#[component]
fn SiteChart(signals: PtqSignals, index: usize) -> impl IntoView {
    let site = move || {
        signals
            .report
            .with(|r| r.as_ref().map(|(r, _)| r.sites[index].clone()))
    };
    let label = Signal::derive(move || {
        match site() {
        Some(s) => format!(
            "Histogram of {}'s activations over the calibration digits, recorded range {} to {}, chosen range {} to {}.",
            s.site,
            sig(f64::from(s.observed.0)),
            sig(f64::from(s.observed.1)),
            sig(f64::from(s.chosen.0)),
            sig(f64::from(s.chosen.1))
        ),
        None => String::new(),
    }
    });
    let numbers = Signal::derive(move || {
        site()
            .map(|s| {
                let (lo, hi) = s.bins_range;
                let w = (hi - lo) / s.bins.len().max(1) as f32;
                s.bins
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        vec![
                            sig(f64::from(lo + i as f32 * w)),
                            sig(f64::from(lo + (i + 1) as f32 * w)),
                            format!("{c}"),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let caption = move |s: &SiteRow| {
        format!(
            "scale {} · zero_point {} · codes {}..{} · clipped {}",
            sig(f64::from(s.scale)),
            s.zero_point,
            s.qmin,
            s.qmax,
            pct(s.clipped)
        )
    };
    view! {
        <figure class="site">
            <figcaption>
                <strong>{SITES[index]}</strong>
                " "
                {move || site().map(|s| caption(&s))}
            </figcaption>
            <ChartCanvas
                draw=move |area, theme| {
                    signals.report.with(|r| {
                        if let Some((r, _)) = r {
                            let _ = quant_charts::activations::draw(area, &r.sites[index], theme);
                        }
                    })
                }
                label
                name="ptq-activations"
                columns=&["from", "to", "values"]
                numbers
                aspect=0.5
            />
        </figure>
    }
}

#[component]
pub fn PtqPanel(settings: Settings, signals: PtqSignals, auto: bool) -> impl IntoView {
    let started = RwSignal::new(auto);
    let has_report = Memo::new(move |_| signals.report.with(Option::is_some));
    let cfg = settings.ptq;
    // Once started, every change of the setting runs again (the newest wins in the worker).
    Effect::new(move |_| {
        let config = cfg.get();
        if started.get() {
            ptq_run::request(config, signals);
        }
    });
    let set = move |change: fn(&mut PtqConfig, &str), value: String| {
        cfg.update(|c| {
            let mut next = *c;
            change(&mut next, &value);
            if next.validate().is_ok() {
                *c = next;
            }
        })
    };
    let value = |e: leptos::ev::Event| event_target_value(&e);
    let busy = move || signals.progress.get();
    let status = move || {
        busy().map(|(stage, done, total)| {
            let text = match stage {
                Stage::Starting => "Starting the PTQ worker…".to_string(),
                Stage::Downloading => {
                    "Fetching the 8,000 training digits (6.3 MB, once)…".to_string()
                }
                Stage::Calibrating => format!(
                    "Calibrating: {} of {} digits observed…",
                    thousands(done),
                    thousands(total)
                ),
                Stage::Evaluating => format!(
                    "Converting and evaluating: {} of {} test digits…",
                    thousands(done),
                    thousands(total)
                ),
            };
            view! {
                <p class="ptq-status" role="status">
                    <progress max=total.to_string() value=done.to_string()></progress>
                    " " {text}
                </p>
            }
        })
    };
    let table = move || {
        signals.report.with(|r| {
            let (r, speed) = r.as_ref()?;
            let n = r.fp32.count;
            let row = |name: String, e: &Evaluation, bytes: usize, speed: Option<f64>| {
                view! {
                    <tr>
                        <th scope="row">{name}</th>
                        <td>{accuracy(e.correct, e.count, n)}</td>
                        <td>{format!("{:.4}", e.loss)}</td>
                        <td>{format!("{} KB", thousands(bytes.div_ceil(1000)))}</td>
                        <td>{speed.map(rate).unwrap_or_else(|| "—".into())}</td>
                    </tr>
                }
            };
            let c = r.config;
            let gran = if c.preset.per_channel() { "per channel" } else { "per tensor" };
            Some(view! {
                <div class="table-scroll">
                // The raw figures, for scripts/bench.sh.
                <table class="ptq-table"
                    data-calibration-ms=speed.calibration_ms.to_string()
                    data-calibration-workers=speed.calibration_workers.to_string()
                    data-fp32=speed.fp32.to_string()
                    data-integer=speed.integer.unwrap_or(0.0).to_string()>
                    <thead>
                        <tr>
                            <th scope="col">"network"</th>
                            <th scope="col">"accuracy"</th>
                            <th scope="col">"loss"</th>
                            <th scope="col">"size"</th>
                            <th scope="col">"img/s here"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {row("FP32".into(), &r.fp32, r.fp32_bytes, Some(speed.fp32))}
                        {row(format!("weights only, int{} {gran}", c.weight_bits), &r.weight_only, r.quantized_bytes, None)}
                        {row(format!("W{}A{} simulated", c.weight_bits, c.activation_bits), &r.simulated, r.quantized_bytes, Some(speed.simulated))}
                        {r.integer.as_ref().map(|e| row(format!("W8A8 integer, {}", c.preset.name()), e, r.quantized_bytes, speed.integer))}
                    </tbody>
                </table>
                </div>
                <p class="caption">
                    {match (r.agree, c.integer()) {
                        (Some(a), _) => format!(
                            "Simulation and the integer engine predict the same class for {} of {} digits{}. Calibration took {} ms {}. Speeds are one timed pass in this browser, one worker, while the page's other workers may also run: compare them with each other, not with other machines.",
                            thousands(a),
                            thousands(n),
                            if a == n { "" } else { " (they round the bias and the products differently: the engine keeps a bias in i32 or folds it into one f32 requantization, and rounds once per layer)" },
                            thousands(speed.calibration_ms.round() as usize),
                            on_workers(speed.calibration_workers),
                        ),
                        _ => format!(
                            "Below 8 bits only the simulation runs: PyTorch's engines take quint8 activations and qint8 weights. Calibration took {} ms {}.",
                            thousands(speed.calibration_ms.round() as usize),
                            on_workers(speed.calibration_workers),
                        ),
                    }}
                </p>
                <div class="table-scroll">
                <table class="ptq-weights">
                    <thead>
                        <tr>
                            <th scope="col">"layer"</th>
                            <th scope="col">"dtype"</th>
                            <th scope="col">"qscheme"</th>
                            <th scope="col">"scale"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {r.weights.iter().map(|w| {
                            let scale = if w.scales.len() == 1 {
                                sig(f64::from(w.scales[0]))
                            } else {
                                let (lo, hi) = w.scales.iter().fold((f32::INFINITY, 0f32), |(a, b), &s| (a.min(s), b.max(s)));
                                format!("{} channels: {} … {}", w.scales.len(), sig(f64::from(lo)), sig(f64::from(hi)))
                            };
                            view! {
                                <tr>
                                    <th scope="row">{w.layer.clone()}</th>
                                    <td>{w.dtype.clone()}</td>
                                    <td>{w.qscheme.clone()}</td>
                                    <td>{scale}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                </div>
            })
        })
    };
    view! {
        <section class="panel ptq" aria-labelledby="ptq-title" id="ptq">
            <h2 id="ptq-title">"Static PTQ: integer weights and activations"</h2>
            <p class="explain">
                "Everything above quantizes weights only. Post-training static quantization, as "
                "torch.ao does it, also turns every activation into an 8-bit code: the network sees "
                "a few training digits, an observer after each layer records the range its outputs "
                "take, and the converted network then runs on integers alone — u8 activations times "
                "i8 weights summed in i32, rescaled to u8 after each layer. Here that integer network "
                "runs in your browser, code for code as PyTorch's converted model (checked against "
                "its int_repr() on all 2,000 digits)."
            </p>
            <div class="knobs ptq-knobs">
                <label>
                    "Preset"
                    <select id="ptq-preset" prop:value=move || cfg.get().preset.name()
                        on:change=move |e| set(|c, v| if let Ok(p) = Preset::parse(v) { c.preset = p }, value(e))>
                        <option value="x86">"x86 (FBGEMM)"</option>
                        <option value="qnnpack">"qnnpack (ARM, QNNPACK)"</option>
                    </select>
                </label>
                <label>
                    "Observer"
                    <select id="ptq-observer" prop:value=move || cfg.get().observer.name()
                        on:change=move |e| set(|c, v| if let Ok(o) = ObserverKind::parse(v) { c.observer = o }, value(e))>
                        {OBSERVERS.map(|(k, l)| view! { <option value=k>{l}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Calibration digits"
                    <select id="ptq-calibration" prop:value=move || cfg.get().calibration.to_string()
                        on:change=move |e| set(|c, v| if let Ok(n) = v.parse() { c.calibration = n }, value(e))>
                        {CALIBRATIONS.map(|n| view! { <option value=n.to_string()>{thousands(n)}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Weight bits"
                    <select id="ptq-wbits" prop:value=move || cfg.get().weight_bits.to_string()
                        on:change=move |e| set(|c, v| if let Ok(b) = v.parse() { c.weight_bits = b }, value(e))>
                        {(2..=8u8).rev().map(|b| view! { <option value=b.to_string()>{b}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Activation bits"
                    <select id="ptq-abits" prop:value=move || cfg.get().activation_bits.to_string()
                        on:change=move |e| set(|c, v| if let Ok(b) = v.parse() { c.activation_bits = b }, value(e))>
                        {(2..=8u8).rev().map(|b| view! { <option value=b.to_string()>{b}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            {move || (!started.get()).then(|| view! {
                <p>
                    <button id="ptq-run" type="button" on:click=move |_| started.set(true)>
                        "Calibrate and convert"
                    </button>
                    " (fetches the 8,000 training digits once, 6.3 MB)"
                </p>
            })}
            {status}
            {move || signals.error.get().map(|e| view! { <p class="error" role="alert">"PTQ failed: " {e}</p> })}
            {table}
            // The charts exist once there is something to draw (the page's chart count, and the
            // canvases' cost, stay as they were until the reader runs PTQ).
            {move || has_report.get().then(|| view! {
                <div class="ptq-sites">
                    {(0..5).map(|i| view! { <SiteChart signals index=i /> }).collect_view()}
                </div>
            })}
            <ul class="legend" hidden=move || !has_report.get()>
                <li><span class="swatch fp32"></span>"activations over the calibration digits"</li>
                <li><span class="swatch range"></span>"recorded range"</li>
                <li><span class="swatch quant"></span>"chosen range (clipped beyond)"</li>
            </ul>
            <div class="explain ptq-notes">
                <p>
                    <strong>"Why a few digits suffice. "</strong>
                    "An observer only needs each layer's range, not the data's every detail: "
                    "min–max is set by the most extreme values, which a hundred digits already "
                    "nearly reach. Try 1, then 100, then 8,000: the scales barely move after a few "
                    "hundred. The histogram observer instead searches for the range that minimises "
                    "the squared rounding error, clipping a rare tail to give the bulk finer steps."
                </p>
                <p>
                    <strong>"Why quint8 and a zero point. "</strong>
                    "After a ReLU nothing is negative, so a signed code would waste half its values. "
                    "Activations take unsigned codes 0..255 with a zero point (0 after a ReLU, so zero "
                    "stays exact); fc2's scores can be negative, and their zero point moves to the middle."
                </p>
                <p>
                    <strong>"Per-channel weights and reduce_range. "</strong>
                    "x86 gives each output channel its own weight scale, so a channel of small "
                    "weights is not quantized on a grid sized for the largest. It also keeps "
                    "activations to 7 bits (0..127): FBGEMM multiplies u8 by s8 and adds pairs in "
                    "16-bit registers, which 8-bit activations could overflow. qnnpack (phones) "
                    "has no such pairs and uses all 8 bits, with one weight scale per tensor."
                </p>
                <p>
                    <strong>"Activations are the harder half. "</strong>
                    "Set activation bits to 4 with 8-bit weights, then the reverse: every layer's "
                    "output is rounded again and the errors compound through the network."
                </p>
            </div>
        </section>
    }
}

/// Where the calibration ran, for the caption.
fn on_workers(n: usize) -> String {
    match n {
        0 | 1 => "in one worker".into(),
        n => format!("shared by {n} workers"),
    }
}
