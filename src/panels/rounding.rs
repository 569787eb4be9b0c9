//! Panel: every rounding mode on the selected layer, side by side: its error, its bias, and the
//! network's accuracy with it.

use crate::analysis::Shown;
use crate::app::Settings;
use leptos::prelude::*;
use quant_core::eval::{Precision, Progress};
use quant_core::fmt::{accuracy, sig};
use quant_core::recipe::Rounding;
use quant_core::view::STOCHASTIC_SEEDS;

fn name(r: Rounding) -> String {
    match r {
        Rounding::HalfEven => "nearest (ties even)".into(),
        Rounding::TowardZero => "toward zero".into(),
        Rounding::Floor => "floor".into(),
        Rounding::Stochastic(seed) => format!("stochastic (seed {seed})"),
    }
}

#[component]
pub fn RoundingPanel(
    /// The last finished analysis of the selected layer.
    analysis: RwSignal<Shown>,
    /// Every setting's evaluation so far.
    progress: RwSignal<Vec<Progress>>,
    /// The reader's choices.
    settings: Settings,
    /// How many test digits there are.
    total: usize,
) -> impl IntoView {
    // The rows are rebuilt when the analysis changes; only their accuracy cells follow the
    // evaluation (ten publications a second), and only the marking follows the recipe.
    let current = Memo::new(move |_| settings.recipe.with(|r| r.default.rounding));
    let rows = move || {
        analysis.with(|a| match a {
            Some(Ok(a)) => a
                .rounding
                .rows
                .iter()
                .map(|row| {
                    let rounding = row.rounding;
                    // The whole network with this rounding (the other knobs as the reader's).
                    let acc = move || {
                        let recipe = settings
                            .recipe
                            .get()
                            .with_default(|d| d.rounding = rounding);
                        progress
                            .with(|all| {
                                all.iter()
                                    .find(|p| p.precision == Precision::Quantized(recipe))
                                    .map(|p| {
                                        accuracy(p.evaluation.correct, p.evaluation.count, total)
                                    })
                            })
                            .unwrap_or_else(|| "waiting".into())
                    };
                    view! {
                        <tr class:selected=move || current.get() == rounding>
                            <th scope="row">{name(rounding)}</th>
                            <td class="num">{sig(row.error.mean_abs_error)}</td>
                            <td class="num">{sig(row.error.mean_error)}</td>
                            <td class="num">{acc}</td>
                        </tr>
                    }
                })
                .collect_view()
                .into_any(),
            Some(Err(e)) => {
                view! { <tr><td colspan="4" role="alert">{e.clone()}</td></tr> }.into_any()
            }
            None => view! { <tr><td colspan="4">"Computing…"</td></tr> }.into_any(),
        })
    };
    let spread = move || {
        analysis.with(|a| match a {
            Some(Ok(a)) => {
                let (mean, sd) = a.rounding.stochastic_mean_error;
                format!(
                    "Over {} seeds, stochastic rounding's mean error w − ŵ is {} with a spread (standard deviation) of {}: unbiased up to chance, where floor is biased by half a step.",
                    STOCHASTIC_SEEDS + 1,
                    sig(mean),
                    sig(sd)
                )
            }
            _ => String::new(),
        })
    };
    view! {
        <section class="panel wide" aria-labelledby="rounding-title">
            <h2 id="rounding-title">"Rounding"</h2>
            <p class="explain">
                "Rounding to the nearest level has the least error, and PyTorch does it. The "
                "essay's truncation (toward zero) and floor cost about twice the error and, worse, "
                "push every weight the same way: that bias adds up through the layers. Stochastic "
                "rounding goes up or down at random, with the chance of going up equal to the "
                "distance from the level below — noisier per weight, but right on average, which "
                "is why it matters when gradients are quantized during training."
            </p>
            <div class="table-scroll">
                <table class="rounding">
                    <thead>
                        <tr>
                            <th scope="col">"rounding of " {move || settings.layer.get().name()}</th>
                            <th scope="col">"mean |w − ŵ|"</th>
                            <th scope="col">"bias, mean (w − ŵ)"</th>
                            <th scope="col">"accuracy (all layers)"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <p class="caption" id="rounding-spread">{spread}</p>
        </section>
    }
}
