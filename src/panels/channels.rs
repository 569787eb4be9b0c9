//! Panel: every output channel's range with the per-tensor range over it — why per-channel
//! quantization wins.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use leptos::prelude::*;
use quant_core::fmt::sig;
use quant_core::recipe::Granularity;
use quant_core::view::LayerView;
use quant_core::Error;

#[component]
pub fn ChannelsPanel(
    /// The selected layer at the current recipe.
    layer_view: Memo<Result<LayerView, Error>>,
    /// Each output channel's (min, max) of the selected layer.
    channels: Memo<Vec<(f32, f32)>>,
    /// The reader's choices.
    settings: Settings,
) -> impl IntoView {
    // What the chart draws changes with the layer, not with the bits or the scheme: as a memo,
    // a slider move does not redraw it.
    let ranges = Memo::new(move |_| {
        let tensor = layer_view.with(|v| v.as_ref().ok().map(|v| (v.row.min, v.row.max)));
        tensor.map(|t| (channels.get(), t))
    });
    let label = Signal::derive(move || {
        layer_view.with(|v| match v {
            Ok(v) => format!(
                "The range of each of the {} output channels of {}, as bars, with the whole layer's range [{}, {}] as two lines.",
                channels.with(Vec::len),
                v.row.layer.name(),
                sig(f64::from(v.row.min)),
                sig(f64::from(v.row.max)),
            ),
            Err(e) => e.to_string(),
        })
    });
    let numbers = Signal::derive(move || {
        ranges.with(|r| {
            let Some((channels, _)) = r else {
                return Vec::new();
            };
            channels
                .iter()
                .enumerate()
                .map(|(c, &(a, b))| vec![c.to_string(), sig(f64::from(a)), sig(f64::from(b))])
                .collect()
        })
    });
    let caption = move || {
        layer_view.with(|v| {
            let Ok(v) = v else { return String::new() };
            let width = |&(a, b): &(f32, f32)| f64::from(b.max(0.0)) - f64::from(a.min(0.0));
            let widths: Vec<f64> = channels.with(|c| c.iter().map(width).collect());
            let narrowest = widths.iter().copied().fold(f64::INFINITY, f64::min);
            let layer = f64::from(v.row.max.max(0.0)) - f64::from(v.row.min.min(0.0));
            if narrowest > 0.0 {
                format!(
                    "The narrowest channel spans {:.0}% of the layer's range: with one scale per tensor, its weights share {} levels spread over a range {:.1}× wider than its own.",
                    100.0 * narrowest / layer,
                    v.bits().levels(),
                    layer / narrowest
                )
            } else {
                "A channel is all zeros: any scale represents it exactly.".to_string()
            }
        })
    };
    let selected = Memo::new(move |_| {
        layer_view.with(|v| {
            v.as_ref()
                .ok()
                .filter(|v| v.recipe.granularity == Granularity::PerChannel)
                .map(|v| v.block_index)
        })
    });
    view! {
        <section class="panel" aria-labelledby="channels-title">
            <h2 id="channels-title">"One scale per channel"</h2>
            <p class="explain">
                "Each bar is one output channel's weights, from its smallest to its largest. A "
                "per-tensor scale must stretch over the green lines — the widest channel's reach — "
                "so a narrow channel gets only a few of the levels. Per-channel quantization gives "
                "every bar its own scale and zero point; per-group goes further, one pair for every "
                "run of g weights. Try granularity under “More knobs” at 2 or 3 bits."
            </p>
            <ChartCanvas
                draw=move |area, theme| {
                    let chosen = selected.get();
                    ranges.with(|r| {
                        if let Some((channels, tensor)) = r {
                            let _ = quant_charts::channel_ranges::draw(
                                area, channels, *tensor, chosen, theme,
                            );
                        }
                    })
                }
                label
                name="channels"
                columns=&["channel", "min", "max"]
                numbers=numbers
            />
            <p class="caption" id="channels-caption">{caption}</p>
            <p class="caption sub">{move || format!("Layer {}.", settings.layer.get().name())}</p>
        </section>
    }
}
