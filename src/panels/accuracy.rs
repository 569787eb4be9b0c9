//! Panel 4: FP32 against quantized loss and accuracy on the 2,000 bundled test digits, live,
//! and accuracy against bit width filling in as the background evaluation proceeds.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::panels::legend::SchemeLegend;
use leptos::prelude::*;
use quant_charts::accuracy_curve::AccuracyPoint;
use quant_core::eval::{curve_family, Precision, Progress};
use quant_core::fmt::{accuracy, thousands};

#[component]
pub fn AccuracyPanel(
    /// Every setting's evaluation so far, published by the evaluation loop.
    progress: RwSignal<Vec<Progress>>,
    /// The reader's choices.
    settings: Settings,
    /// How many test digits there are.
    total: usize,
    /// A problem with the evaluation, as a sentence for the reader.
    error: RwSignal<Option<String>>,
    /// Settings that cannot be evaluated, and why.
    failures: RwSignal<Vec<(Precision, String)>>,
) -> impl IntoView {
    // The reader's recipe's own error, if it has one: shown in its row, nothing else stops.
    let failure = move || {
        let p = settings.precision();
        failures.with(|f| f.iter().find(|(q, _)| *q == p).map(|(_, e)| e.clone()))
    };
    let find =
        move |p: Precision| progress.with(|all| all.iter().find(|x| x.precision == p).copied());
    let fp32 = move || find(Precision::Fp32);
    // Only ever the current setting's own tally: a number for a setting the reader has left is
    // never shown here.
    let current = move || find(settings.precision());
    let row = move |name: String, p: Option<Progress>| {
        let (acc, loss, state) = match p {
            // An estimate shows only the precision it has: "≈ 96% ± 8" after 25 digits, never
            // "100.00%"; its loss waits for the whole set.
            Some(p) if p.evaluation.count > 0 => (
                accuracy(p.evaluation.correct, p.evaluation.count, total)
                    .split(", from")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                if p.done {
                    format!("{:.4}", p.evaluation.loss)
                } else {
                    "…".into()
                },
                if p.done {
                    format!("{} digits", thousands(p.evaluation.count))
                } else {
                    format!(
                        "estimate from {} of {} digits",
                        thousands(p.evaluation.count),
                        thousands(total)
                    )
                },
            ),
            _ => ("…".into(), "…".into(), "waiting".into()),
        };
        view! {
            <tr class=if p.is_some_and(|p| p.done) { "done" } else { "pending" }>
                <th scope="row">{name}</th>
                <td class="num">{acc}</td>
                <td class="num">{loss}</td>
                <td class="state">{state}</td>
            </tr>
        }
    };
    // The curve: the reader's recipe at every bit width under both schemes.
    let family = Memo::new(move |_| curve_family(settings.recipe.get()));
    let curve = move || {
        family.with(|family| {
            family
                .iter()
                .filter_map(|&precision| {
                    let p = find(precision)?;
                    match precision {
                        Precision::Quantized(r) if p.evaluation.count > 0 => Some((
                            AccuracyPoint {
                                bits: r.default.bits,
                                scheme: r.default.scheme,
                                accuracy: p.evaluation.accuracy,
                                done: p.done,
                            },
                            p,
                        )),
                        _ => None,
                    }
                })
                .collect::<Vec<_>>()
        })
    };
    let points = move || curve().into_iter().map(|(a, _)| a).collect::<Vec<_>>();
    let numbers = Signal::derive(move || {
        curve()
            .iter()
            .map(|(a, p)| {
                vec![
                    a.bits.to_string(),
                    a.scheme.to_string(),
                    accuracy(p.evaluation.correct, p.evaluation.count, total),
                    thousands(p.evaluation.count),
                ]
            })
            .collect::<Vec<_>>()
    });
    // Of the curve's settings (and FP32), how many are complete.
    let finished = move || {
        curve().iter().filter(|(_, p)| p.done).count() + usize::from(fp32().is_some_and(|p| p.done))
    };
    let settings_total = move || family.with(|f| f.len()) + 1;
    let label = Signal::derive(move || {
        format!(
            "Test accuracy against bit width for symmetric and asymmetric quantization; {} of {} settings evaluated.",
            finished(),
            settings_total()
        )
    });
    view! {
        // How many settings are fully evaluated (the benchmark waits for all 17).
        <section class="panel" aria-labelledby="accuracy-title"
            data-done=finished data-settings=settings_total>
            <h2 id="accuracy-title">"Accuracy on real digits"</h2>
            <p class="explain">
                "The real test: run 2,000 handwritten digits the network never saw through the "
                "FP32 network and through its quantized copy. At 8 bits the two agree to a tenth "
                "of a point — the error from the histogram is far below what the network notices. "
                "Somewhere around 3–4 bits it starts to matter, and at 2 bits the network is "
                "guessing. Numbers appear as they are computed, current setting first."
            </p>
            <div class="table-scroll">
            <table class="compare" aria-live="polite">
                <thead>
                    <tr><th scope="col">"network"</th><th scope="col">"accuracy"</th><th scope="col">"loss"</th><th scope="col">"evaluated on"</th></tr>
                </thead>
                <tbody>
                    {move || row("FP32".into(), fp32())}
                    {move || match failure() {
                        Some(e) => view! {
                            <tr class="failed">
                                <th scope="row">{settings.setting_label()}</th>
                                <td colspan="3" role="alert">{format!("This recipe cannot be evaluated: {e}")}</td>
                            </tr>
                        }.into_any(),
                        None => row(settings.setting_label(), current()).into_any(),
                    }}
                </tbody>
            </table>
            </div>
            <progress
                id="accuracy-progress"
                max=total
                value=move || current().map_or(0, |p| p.evaluation.count)
                aria-label="Digits evaluated for the current setting"
            ></progress>
            <ChartCanvas
                draw=move |area, theme| {
                    let pts = points();
                    let reference = fp32().filter(|p| p.done).map(|p| p.evaluation.accuracy);
                    // A format of its own is not a point of the integer grid's curve.
                    let cur = settings
                        .recipe
                        .with(|r| r.default.is_int())
                        .then(|| (settings.bits(), settings.scheme()));
                    let _ = quant_charts::accuracy_curve::draw(area, &pts, reference, cur, theme);
                }
                label
                name="accuracy"
                columns=&["bits", "scheme", "accuracy (%)", "digits evaluated"]
                numbers=numbers
            />
            <SchemeLegend fp32=true />
            <p class="caption">
                {move || format!("{} of {} settings evaluated in the background: FP32 and this recipe at every bit width and scheme (hollow markers: still running).", finished(), settings_total())}
                {move || error.get().map(|e| view! { <span class="error" role="alert">" " {e}</span> })}
            </p>
        </section>
    }
}
