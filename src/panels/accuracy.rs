//! Panel 4: FP32 against quantized loss and accuracy on the 2,000 bundled test digits, live,
//! and accuracy against bit width filling in as the background evaluation proceeds.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::panels::legend::SchemeLegend;
use leptos::prelude::*;
use quant_charts::accuracy_curve::AccuracyPoint;
use quant_core::eval::{Precision, Progress};
use quant_core::fmt::thousands;

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
) -> impl IntoView {
    let find =
        move |p: Precision| progress.with(|all| all.iter().find(|x| x.precision == p).copied());
    let fp32 = move || find(Precision::Fp32);
    // Only ever the current setting's own tally: a number for a setting the reader has left is
    // never shown here.
    let current = move || find(settings.precision());
    let row = move |name: String, p: Option<Progress>| {
        let (acc, loss, state) = match p {
            Some(p) if p.evaluation.count > 0 => (
                format!("{:.2}%", p.evaluation.accuracy),
                format!("{:.4}", p.evaluation.loss),
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
    let points = move || {
        progress.with(|all| {
            all.iter()
                .filter_map(|p| match p.precision {
                    Precision::Quantized(bits, scheme) if p.evaluation.count > 0 => {
                        Some(AccuracyPoint {
                            bits,
                            scheme,
                            accuracy: p.evaluation.accuracy,
                            done: p.done,
                        })
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
    };
    let numbers = Signal::derive(move || {
        points()
            .iter()
            .map(|p| {
                let count =
                    find(Precision::Quantized(p.bits, p.scheme)).map_or(0, |x| x.evaluation.count);
                vec![
                    p.bits.to_string(),
                    p.scheme.to_string(),
                    format!("{:.2}", p.accuracy),
                    thousands(count),
                ]
            })
            .collect::<Vec<_>>()
    });
    let finished = move || progress.with(|all| all.iter().filter(|p| p.done).count());
    let label = Signal::derive(move || {
        format!(
            "Test accuracy against bit width for symmetric and asymmetric quantization; {} of 17 settings evaluated.",
            finished()
        )
    });
    view! {
        // How many settings are fully evaluated (the benchmark waits for all 17).
        <section class="panel" aria-labelledby="accuracy-title"
            data-done=move || progress.with(|all| all.iter().filter(|p| p.done).count())>
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
                    {move || row(format!("{}-bit {}", settings.bits.get(), settings.scheme.get()), current())}
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
                    let cur = (settings.bits.get(), settings.scheme.get());
                    let _ = quant_charts::accuracy_curve::draw(area, &pts, reference, cur, theme);
                }
                label
                name="accuracy"
                columns=&["bits", "scheme", "accuracy (%)", "digits evaluated"]
                numbers=numbers
            />
            <SchemeLegend fp32=true />
            <p class="caption">
                {move || format!("{} of 17 settings evaluated in the background (hollow markers: still running).", finished())}
                {move || error.get().map(|e| view! { <span class="error" role="alert">" " {e}</span> })}
            </p>
        </section>
    }
}
