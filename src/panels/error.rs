//! Panel 3: the layer's quantization error against bit width, for both schemes.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::panels::controls::{Choice, Segmented};
use crate::panels::legend::SchemeLegend;
use leptos::prelude::*;
use quant_core::fmt::sig;
use quant_core::view::{ErrorPoint, Metric};
use quant_core::Error;

#[component]
pub fn ErrorPanel(
    /// MAE and SQNR for bits 2..8 × both schemes, for the selected layer.
    curve: Memo<Result<Vec<ErrorPoint>, Error>>,
    /// The reader's choices (the ringed point).
    settings: Settings,
) -> impl IntoView {
    let metric = settings.metric;
    let numbers = Signal::derive(move || {
        curve.with(|c| {
            c.as_ref()
                .map(|c| {
                    c.iter()
                        .map(|p| {
                            vec![
                                p.bits.to_string(),
                                p.scheme.to_string(),
                                sig(p.mean_abs_error),
                                p.sqnr_db.map_or("∞".into(), |d| format!("{d:.2}")),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    });
    let current = move || {
        let (b, s) = (settings.bits(), settings.scheme());
        curve.with(|c| {
            c.as_ref()
                .ok()
                .and_then(|c| c.iter().find(|p| p.bits == b && p.scheme == s).copied())
        })
    };
    let label = Signal::derive(move || {
        let name = settings.layer.get().name();
        match metric.get() {
            Metric::MeanAbsError => format!("Mean absolute error of {name} (log scale) against bit width 2 to 8, symmetric and asymmetric."),
            Metric::Sqnr => format!("Signal-to-quantization-noise ratio of {name} in dB against bit width 2 to 8, symmetric and asymmetric."),
        }
    });
    let readout = move || match current() {
        Some(p) => format!(
            "At {} bits {}: mean |w − ŵ| = {}, SQNR = {}.",
            p.bits,
            p.scheme,
            sig(p.mean_abs_error),
            p.sqnr_db.map_or("∞".into(), |d| format!("{d:.1} dB")),
        ),
        None => format!(
            "{} bits is off this chart; the table below has its numbers.",
            settings.bits()
        ),
    };
    view! {
        <section class="panel" aria-labelledby="error-title">
            <h2 id="error-title">"Error against bit width"</h2>
            <p class="explain">
                "Every extra bit doubles the number of levels and halves the step s, so the mean "
                "absolute error falls about 2× per bit — and the squared error about 4×, which is "
                "the ≈6 dB per bit you see in SQNR. Below about 4 bits the curve flattens: most "
                "weights already round to zero, and the error approaches the weights' own size. "
                "The two schemes differ by a near-constant factor: the part of the grid symmetric "
                "spends on the side of zero where the weights are not."
            </p>
            <Segmented
                legend="Measure"
                name="metric"
                value=metric
                set=move |m| metric.set(m)
                class="small"
                options=vec![
                    Choice { value: Metric::MeanAbsError, key: "mae", label: "mean |error|".into(), title: String::new() },
                    Choice { value: Metric::Sqnr, key: "sqnr", label: "SQNR (dB)".into(), title: String::new() },
                ]
            />
            <ChartCanvas
                draw=move |area, theme| {
                    let cur = (settings.bits(), settings.scheme());
                    let m = metric.get();
                    curve.with(|c| {
                        if let Ok(c) = c {
                            let _ = quant_charts::error_curve::draw(area, c, m, cur, theme);
                        }
                    })
                }
                label
                name="error"
                columns=&["bits", "scheme", "mean |w − ŵ|", "SQNR (dB)"]
                numbers=numbers
            />
            <SchemeLegend />
            <p class="caption" id="error-readout">{readout}</p>
        </section>
    }
}
