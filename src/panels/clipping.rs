//! Panel: the clipping trade-off of the selected layer, with what min–max, percentile and MSE
//! choose.

use crate::analysis::Shown;
use crate::app::Settings;
use crate::canvas::ChartCanvas;
use leptos::prelude::*;
use quant_core::fmt::sig;
use quant_core::recipe::Thousandths;

#[component]
pub fn ClippingPanel(
    /// The last finished analysis of the selected layer.
    analysis: RwSignal<Shown>,
    /// The reader's choices.
    settings: Settings,
) -> impl IntoView {
    // The shown analysis is for what the reader sees now (or is being redone).
    let current = move || {
        let (layer, recipe) = (settings.layer.get(), settings.layer_recipe());
        analysis.with(|a| match a {
            Some(Ok(a)) => a.layer == layer && a.recipe == recipe,
            _ => false,
        })
    };
    let label = Signal::derive(move || {
        analysis.with(|a| match a {
            Some(Ok(a)) => format!(
                "Mean squared error of {} against the fraction of its range the grid keeps, split into clipping and rounding error; min–max, percentile {} and MSE marked.",
                a.layer.name(),
                Thousandths(a.clip.percentile_thousandths)
            ),
            Some(Err(e)) => e.clone(),
            None => "Computing the clipping trade-off…".into(),
        })
    });
    let numbers = Signal::derive(move || {
        analysis.with(|a| match a {
            Some(Ok(a)) => a
                .clip
                .points
                .iter()
                .map(|p| {
                    vec![
                        format!("{:.2}", p.fraction),
                        sig(p.mse),
                        sig(p.clipping_mse),
                        sig(p.mse - p.clipping_mse),
                    ]
                })
                .collect(),
            _ => Vec::new(),
        })
    });
    let caption = move || {
        analysis.with(|a| match a {
            Some(Ok(a)) => {
                let c = &a.clip;
                let mark = |name: String, p: &quant_core::quantizer::ClipPoint| {
                    format!(
                        "{name}: {} (keeps {:.0}% of the range)",
                        sig(p.mse),
                        100.0 * p.fraction
                    )
                };
                format!(
                    "{}; {}; {}.",
                    mark("min–max".into(), &c.minmax),
                    mark(
                        format!("percentile {}", Thousandths(c.percentile_thousandths)),
                        &c.percentile
                    ),
                    mark("MSE".into(), &c.mse),
                )
            }
            Some(Err(e)) => e.clone(),
            None => "Computing…".into(),
        })
    };
    view! {
        <section class="panel" aria-labelledby="clipping-title">
            <h2 id="clipping-title">"Clipping: trading the tails for finer steps"</h2>
            <p class="explain">
                "Shrink the range the grid covers and its steps get finer, so the weights inside "
                "round more precisely (blue above red) — but every weight beyond the range is "
                "clamped to its edge (red). The best clip balances the two. Min–max never clips; "
                "a percentile cuts the outermost weights; the MSE method searches this very curve "
                "for its lowest point, block by block."
            </p>
            <div class:stale=move || !current()>
                <ChartCanvas
                    draw=move |area, theme| {
                        analysis.with(|a| {
                            if let Some(Ok(a)) = a {
                                let _ = quant_charts::clipping::draw(area, &a.clip, theme);
                            }
                        })
                    }
                    label
                    name="clipping"
                    columns=&["fraction kept", "mean (w − ŵ)²", "clipping", "rounding"]
                    numbers=numbers
                />
            </div>
            <ul class="legend">
                <li><span class="swatch fp32"></span>"total error"</li>
                <li><span class="swatch quant"></span>"clipping error"</li>
            </ul>
            <p class="caption" id="clipping-caption">
                {caption}
                {move || (!current()).then_some(" Updating…")}
            </p>
        </section>
    }
}
