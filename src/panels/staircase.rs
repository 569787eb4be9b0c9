//! Panel 2: the float → integer staircase, and the essay's formulas filled in with this layer's
//! numbers, typeset in MathML (native in browsers, no external script).

use crate::canvas::ChartCanvas;
use leptos::prelude::*;
use quant_core::fmt::sig;
use quant_core::quant::{widen_to_zero, Scheme};
use quant_core::view::LayerView;
use quant_core::Error;

/// A number as one MathML token, with a true minus sign (an `<mo>` would space it as an operator).
fn mn(v: f64) -> String {
    format!("<mn>{}</mn>", sig(v).replace('-', "−"))
}

/// An integer as MathML (qmin, qmax, zero_point).
fn mn_int(v: i32) -> String {
    format!("<mn>{}</mn>", v.to_string().replace('-', "−"))
}

fn sub(base: &str, index: &str) -> String {
    format!("<msub><mi>{base}</mi><mtext>{index}</mtext></msub>")
}

/// The formulas of the essay with the layer's α', β', qmin, qmax, scale and zero_point, as short
/// inline equations that wrap on a narrow screen (MathML does not break lines by itself).
fn formulas(v: &LayerView) -> String {
    let qp = v.qparams();
    let (alpha, beta) = widen_to_zero(v.row.min, v.row.max);
    let (alpha, beta) = (f64::from(alpha), f64::from(beta));
    let (qmin, qmax) = (sub("q", "min"), sub("q", "max"));
    let scale = mn(f64::from(qp.scale));
    let mut eqs = vec![
        format!("<mi>α</mi><mo>=</mo>{}", mn(alpha)),
        format!("<mi>β</mi><mo>=</mo>{}", mn(beta)),
        format!("{qmin}<mo>=</mo>{}", mn_int(qp.qmin)),
        format!("{qmax}<mo>=</mo>{}", mn_int(qp.qmax)),
    ];
    let mut block = |parts: &[String]| eqs.push(parts.concat());
    match v.scheme {
        Scheme::Symmetric => {
            block(&[format!(
                "<mi>s</mi><mo>=</mo><mfrac><mrow><mo>max</mo><mo>(</mo><mo>|</mo><mi>α</mi><mo>|</mo><mo>,</mo><mo>|</mo><mi>β</mi><mo>|</mo><mo>)</mo></mrow><mrow><mo>(</mo>{qmax}<mo>−</mo>{qmin}<mo>)</mo><mo>/</mo><mn>2</mn></mrow></mfrac>"
            )]);
            block(&[format!(
                "<mo>=</mo><mfrac>{}{}</mfrac><mo>=</mo>{scale}",
                mn(alpha.abs().max(beta)),
                mn(f64::from(qp.qmax - qp.qmin) / 2.0),
            )]);
            block(&["<mi>z</mi><mo>=</mo><mn>0</mn>".to_string()]);
        }
        Scheme::Asymmetric => {
            block(&[format!(
                "<mi>s</mi><mo>=</mo><mfrac><mrow><mi>β</mi><mo>−</mo><mi>α</mi></mrow><mrow>{qmax}<mo>−</mo>{qmin}</mrow></mfrac>"
            )]);
            block(&[format!(
                "<mo>=</mo><mfrac><mrow>{}<mo>−</mo><mo>(</mo>{}<mo>)</mo></mrow>{}</mfrac><mo>=</mo>{scale}",
                mn(beta),
                mn(alpha),
                mn_int(qp.qmax - qp.qmin),
            )]);
            block(&[format!(
                "<mi>z</mi><mo>=</mo><mtext>clamp</mtext><mo>(</mo><mtext>round</mtext><mo>(</mo>{qmin}<mo>−</mo><mfrac><mi>α</mi><mi>s</mi></mfrac><mo>)</mo><mo>,</mo>{qmin}<mo>,</mo>{qmax}<mo>)</mo>"
            )]);
            block(&[format!(
                "<mo>=</mo><mtext>clamp</mtext><mo>(</mo><mtext>round</mtext><mo>(</mo>{}<mo>−</mo><mfrac>{}{scale}</mfrac><mo>)</mo><mo>,</mo>{}<mo>,</mo>{}<mo>)</mo><mo>=</mo>{}",
                mn_int(qp.qmin),
                mn(alpha),
                mn_int(qp.qmin),
                mn_int(qp.qmax),
                mn_int(qp.zero_point),
            )]);
        }
    }
    eqs.push(format!(
        "<mi>q</mi><mo>=</mo><mtext>clamp</mtext><mo>(</mo><mtext>round</mtext><mo>(</mo><mfrac><mi>w</mi><mi>s</mi></mfrac><mo>)</mo><mo>+</mo><mi>z</mi><mo>,</mo>{qmin}<mo>,</mo>{qmax}<mo>)</mo>"
    ));
    eqs.push(
        "<mover><mi>w</mi><mo>^</mo></mover><mo>=</mo><mi>s</mi><mo>·</mo><mo>(</mo><mi>q</mi><mo>−</mo><mi>z</mi><mo>)</mo>".to_string(),
    );
    eqs.iter().map(|e| format!("<math>{e}</math>")).collect()
}

#[component]
pub fn StaircasePanel(
    /// The selected layer at the current setting.
    layer_view: Memo<Result<LayerView, Error>>,
) -> impl IntoView {
    let label = Signal::derive(move || {
        layer_view.with(|v| match v {
            Ok(v) => format!(
                "Staircase mapping FP32 inputs to {} dequantized levels with scale {} and zero point {}.",
                v.bits.levels(),
                sig(f64::from(v.qparams().scale)),
                v.qparams().zero_point
            ),
            Err(e) => e.to_string(),
        })
    });
    // Every code up to 8 bits; at 16 bits only the landmarks (65,536 rows would help no one).
    let numbers = Signal::derive(move || {
        layer_view.with(|v| {
            let Ok(v) = v else { return Vec::new() };
            let qp = v.qparams();
            let row = |q: i32| vec![q.to_string(), sig(f64::from(qp.dequantize(q)))];
            if v.bits.get() <= 8 {
                (qp.qmin..=qp.qmax).map(row).collect()
            } else {
                [qp.qmin, qp.zero_point, qp.qmax]
                    .into_iter()
                    .map(row)
                    .collect()
            }
        })
    });
    let math = move || layer_view.with(|v| v.as_ref().map(formulas).unwrap_or_default());
    view! {
        <section class="panel" aria-labelledby="staircase-title">
            <h2 id="staircase-title">"The staircase"</h2>
            <p class="explain">
                "Quantizing is a staircase: every input between two treads lands on the same "
                "integer q, and dequantizing maps q back to s·(q − z). Symmetric puts z at 0, so "
                "zero stays exactly zero and the grid is centred whether or not the weights are; "
                "asymmetric spends every level inside [α, β], which pays off when the range is "
                "lopsided. PyTorch first widens the range to include 0 (so α ≤ 0 ≤ β below) and "
                "rounds halves to the even integer."
            </p>
            <ChartCanvas
                draw=move |area, theme| {
                    layer_view.with(|v| {
                        if let Ok(v) = v {
                            let _ = quant_charts::staircase::draw(
                                area,
                                &v.qparams(),
                                v.row.min,
                                v.row.max,
                                theme,
                            );
                        }
                    })
                }
                label
                name="staircase"
                columns=&["q", "ŵ = s·(q − z)"]
                numbers=numbers
                aspect=0.62
            />
            <div class="formulas" inner_html=math></div>
        </section>
    }
}
