//! Panel 1: the layer's weights, the grid over them, and the weights piled onto the grid.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::panels::block::BlockPicker;
use leptos::prelude::*;
use quant_core::fmt::{sig, thousands};
use quant_core::view::LayerView;
use quant_core::Error;

/// What the drawn grid is under a number format: the block's levels, the format's own values in
/// the weights' range, or none (too dense to draw).
fn grid_words(v: &LayerView) -> String {
    let n = v.histogram.levels.len();
    match (&v.format, n) {
        (Some(f), _) if f.kept_fp32 => format!(
            "none: {} leaves this layer in FP32 (torchao quantizes only Linear layers whose rows its group divides)",
            f.format.label()
        ),
        (Some(f), 0) => format!(
            "not drawn ({} has too many values here to draw one by one)",
            f.format.label()
        ),
        (Some(f), _) if f.scale.is_some() => format!("this block's {n} levels"),
        _ => format!("the format's {n} values within the weights' range"),
    }
}

#[component]
pub fn HistogramPanel(
    /// The selected layer at the current setting.
    layer_view: Memo<Result<LayerView, Error>>,
    /// The reader's choices (for the caption).
    settings: Settings,
) -> impl IntoView {
    let label = Signal::derive(move || {
        layer_view.with(|v| match v {
            Ok(v) if v.format.is_some() => format!(
                "Histogram of {} weights of {}{} in {}, with {}; the stored weights pile up on {} distinct values.",
                thousands(v.format.as_ref().map_or(0, |f| f.span.len())),
                v.row.layer.name(),
                if v.blocks > 1 { format!(" block {}", v.block_index) } else { String::new() },
                v.recipe.format.label(),
                grid_words(v),
                thousands(v.histogram.occupied_levels),
            ),
            Ok(v) => format!(
                "Histogram of the {} weights of {}{} from {} to {}, with the grid of {} quantization levels; the quantized weights pile up on {} of them.",
                thousands(v.block.span.len()),
                v.row.layer.name(),
                if v.blocks > 1 { format!(" {} {}", crate::panels::staircase::block_noun(v).to_lowercase(), v.block_index) } else { String::new() },
                sig(f64::from(v.block.alpha)),
                sig(f64::from(v.block.beta)),
                thousands(v.bits().levels() as usize),
                thousands(v.histogram.occupied_levels),
            ),
            Err(e) => e.to_string(),
        })
    });
    let is_int = move || layer_view.with(|v| v.as_ref().map_or(true, |v| v.format.is_none()));
    let caption = move || {
        layer_view.with(|v| match v {
            Ok(v) if v.format.is_some() => format!(
                "{} weights land on {} distinct values of {}; the grid drawn is {}.{}",
                thousands(v.format.as_ref().map_or(0, |f| f.span.len())),
                thousands(v.histogram.occupied_levels),
                v.recipe.format.label(),
                grid_words(v),
                // Each block has a grid of its own: how far apart the layer's grids lie.
                v.format
                    .as_ref()
                    .and_then(|f| f.scale_spread)
                    .map(|(a, b)| {
                        let ratio = if a > 0.0 {
                            format!(" ({:.1}×)", f64::from(b) / f64::from(a))
                        } else {
                            String::new()
                        };
                        format!(
                            " Across the layer's {} blocks the stored scale's magnitude runs from {} to {}{ratio}.",
                            thousands(v.blocks),
                            sig(f64::from(a)),
                            sig(f64::from(b)),
                        )
                    })
                    .unwrap_or_default(),
            ),
            Ok(v) => format!(
                "{} weights land on {} of the {} levels; {:.3}% of the layer's weights were clipped.",
                thousands(v.block.span.len()),
                thousands(v.histogram.occupied_levels),
                thousands(v.bits().levels() as usize),
                100.0 * v.row.error.clipped_fraction,
            ),
            Err(e) => e.to_string(),
        })
    };
    let numbers = Signal::derive(move || {
        layer_view.with(|v| {
            let Ok(v) = v else { return Vec::new() };
            let h = &v.histogram;
            let fp32 = (0..h.fp32.counts.len()).map(|i| {
                let (a, b) = h.fp32.bin_edges(i);
                vec![
                    "FP32".into(),
                    sig(f64::from(a)),
                    sig(f64::from(b)),
                    h.fp32.counts[i].to_string(),
                ]
            });
            let quantized = h.quantized.iter().map(|&(x, c)| {
                vec![
                    "quantized".into(),
                    sig(f64::from(x)),
                    sig(f64::from(x)),
                    c.to_string(),
                ]
            });
            fp32.chain(quantized).collect()
        })
    });
    view! {
        <section class="panel" aria-labelledby="histogram-title">
            <h2 id="histogram-title">{move || if layer_view.with(|v| v.as_ref().map_or(true, |v| v.format.is_none())) { "Weights on the integer grid" } else { "Weights on the format's grid" }}</h2>
            <p class="explain" hidden=move || !is_int()>
                "The blue bars are the " {move || settings.layer.get().name()} " layer's trained "
                "weights. Each orange line is a value the integers can represent, s·(q − z); "
                "quantizing moves every weight to its nearest line (red spikes). At 8 bits the "
                "lines are so dense you barely notice; drop to 2 or 3 bits and the whole bell "
                "collapses onto a handful of spikes. The green lines mark the weights' range "
                "[α, β]: one outlier stretches it and spreads the few levels thinner for everybody."
            </p>
            <p class="explain" hidden=is_int>
                "The blue bars are the " {move || settings.layer.get().name()} " layer's trained "
                "weights; each orange line is a value the format can store, and every weight "
                "moves to one of them (red spikes). A float format's values crowd toward zero, "
                "as many in each power of two; NF4's sit at a normal distribution's quantiles; "
                "Q4_0's are evenly spaced. A block format scales its grid for each block of "
                "weights, so the chart shows one block at a time (the slider picks it) — its "
                "range [α, β] in green."
            </p>
            <BlockPicker layer_view settings id="histogram-block" />
            <ChartCanvas
                draw=move |area, theme| {
                    layer_view.with(|v| {
                        if let Ok(v) = v {
                            let _ = quant_charts::histogram::draw(area, &v.histogram, theme);
                        }
                    })
                }
                label
                name="histogram"
                columns=&["series", "from", "to", "weights"]
                numbers=numbers
            />
            <ul class="legend">
                <li><span class="swatch fp32"></span>"FP32 weights"</li>
                <li><span class="swatch grid"></span>"grid levels"</li>
                <li><span class="swatch quant"></span>"quantized weights"</li>
                <li><span class="swatch range"></span>"range [α, β]"</li>
            </ul>
            <p class="caption">{caption}</p>
        </section>
    }
}
