//! Panel 2: the float → integer staircase, and the essay's formulas filled in with this layer's
//! numbers, typeset in MathML (native in browsers, no external script).

use crate::canvas::ChartCanvas;
use leptos::prelude::*;
use quant_core::fmt::sig;
use quant_core::formats::{BlockScale, Format};
use quant_core::quant::{widen_to_zero, Scheme};
use quant_core::quantizer::{range_rule, Block};
use quant_core::recipe::RangeMethod;
use quant_core::view::LayerView;
use quant_core::Error;

/// A number as MathML shows it, with a true minus sign.
fn mn(v: f64) -> String {
    sig(v).replace('-', "−")
}

/// An integer (qmin, qmax, zero_point) as MathML shows it.
fn mn_int(v: i32) -> String {
    v.to_string().replace('-', "−")
}

/// The numbers the formulas show for one layer and bit width. The MathML around them is built
/// once and only these texts change on a move: rebuilding the formulas' markup on every move
/// (parse, then lay out from scratch) cost ~7 ms of the frame.
///
/// Both schemes' scale and zero point are shown side by side, the reader's scheme marked, so a
/// reader compares them directly. A scheme switch then changes no number here, only which one is
/// marked (a repaint): showing one scheme's formulas instead of the other's, MathML laid out from
/// scratch, made a switch's frame ~5 ms longer (13.8 → 19.4 ms p50).
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Filled {
    alpha: String,
    beta: String,
    qmin: String,
    qmax: String,
    /// max(|α|, |β|), (qmax − qmin) / 2 and the symmetric scale.
    max_abs: String,
    half_levels: String,
    sym_scale: String,
    /// qmax − qmin, and the asymmetric scale and zero point.
    levels: String,
    asym_scale: String,
    asym_zero_point: String,
}

impl Filled {
    fn new(v: &LayerView) -> Filled {
        Filled::of_block(&v.block, &v.schemes)
    }

    /// The formulas' numbers for `block` (under the reader's scheme) and the same block under
    /// each scheme, `[symmetric, asymmetric]`: a layer's shown block, or a reader's tensor's.
    pub(crate) fn of_block(block: &Block, schemes: &[Result<Block, Error>; 2]) -> Filled {
        // Both schemes' parameters for the shown block, as the core calibrated them (an error
        // there shows as "—", never as a number).
        let [sym, asym] = schemes
            .each_ref()
            .map(|b| b.as_ref().ok().map(|b| b.qparams));
        let qp = block.qparams;
        let dash = || "—".to_string();
        // α and β in the formulas are the range the grid covers: the observed one for min–max,
        // the clipped one for the other range methods (said beside the formulas).
        let (alpha, beta) = widen_to_zero(block.lo, block.hi);
        let (alpha, beta) = (f64::from(alpha), f64::from(beta));
        Filled {
            alpha: mn(alpha),
            beta: mn(beta),
            qmin: mn_int(qp.qmin),
            qmax: mn_int(qp.qmax),
            max_abs: mn(alpha.abs().max(beta)),
            // Always a whole number and a half (7.5, 127.5), printed exactly rather than to six
            // significant digits ("3.50000").
            half_levels: (f64::from(qp.qmax - qp.qmin) / 2.0).to_string(),
            sym_scale: sym.map_or_else(dash, |q| mn(f64::from(q.scale))),
            levels: mn_int(qp.qmax - qp.qmin),
            asym_scale: asym.map_or_else(dash, |q| mn(f64::from(q.scale))),
            asym_zero_point: asym.map_or_else(dash, |q| mn_int(q.zero_point)),
        }
    }
}

/// The formulas of the essay with the layer's α', β', qmin, qmax, scale and zero_point, as short
/// inline equations that wrap on a narrow screen (MathML does not break lines by itself).
pub(crate) fn formulas(scheme: Memo<Option<Scheme>>, filled: Memo<Filled>) -> impl IntoView {
    let n = move |pick: fn(&Filled) -> &String| move || filled.with(|f| pick(f).clone());
    let q_min = || view! { <msub><mi>"q"</mi><mtext>"min"</mtext></msub> };
    let q_max = || view! { <msub><mi>"q"</mi><mtext>"max"</mtext></msub> };
    let current = move |s: Scheme| move || scheme.get() == Some(s);
    let marked = move |s: Scheme| move || (scheme.get() == Some(s)).then_some("true");
    let symmetric = view! {
        <math>
            <mi>"s"</mi><mo>"="</mo>
            <mfrac>
                // Each |·| in its own row, so its bars are prefix and postfix (no spacing)
                // rather than infix operators spaced like a minus sign.
                <mrow>
                    <mi>"max"</mi>
                    <mrow>
                        <mo>"("</mo>
                        <mrow><mo>"|"</mo><mi>"α"</mi><mo>"|"</mo></mrow><mo>","</mo>
                        <mrow><mo>"|"</mo><mi>"β"</mi><mo>"|"</mo></mrow>
                        <mo>")"</mo>
                    </mrow>
                </mrow>
                <mrow><mo>"("</mo>{q_max()}<mo>"−"</mo>{q_min()}<mo>")"</mo><mo>"/"</mo><mn>"2"</mn></mrow>
            </mfrac>
        </math>
        <math>
            <mo>"="</mo><mfrac><mn>{n(|f| &f.max_abs)}</mn><mn>{n(|f| &f.half_levels)}</mn></mfrac>
            <mo>"="</mo><mn>{n(|f| &f.sym_scale)}</mn>
        </math>
        <math><mi>"z"</mi><mo>"="</mo><mn>"0"</mn></math>
    };
    let asymmetric = view! {
        <math>
            <mi>"s"</mi><mo>"="</mo>
            <mfrac><mrow><mi>"β"</mi><mo>"−"</mo><mi>"α"</mi></mrow><mrow>{q_max()}<mo>"−"</mo>{q_min()}</mrow></mfrac>
        </math>
        <math>
            <mo>"="</mo>
            <mfrac>
                <mrow><mn>{n(|f| &f.beta)}</mn><mo>"−"</mo><mo>"("</mo><mn>{n(|f| &f.alpha)}</mn><mo>")"</mo></mrow>
                <mn>{n(|f| &f.levels)}</mn>
            </mfrac>
            <mo>"="</mo><mn>{n(|f| &f.asym_scale)}</mn>
        </math>
        <math>
            <mi>"z"</mi><mo>"="</mo><mtext>"clamp"</mtext><mo>"("</mo><mtext>"round"</mtext><mo>"("</mo>
            {q_min()}<mo>"−"</mo><mfrac><mi>"α"</mi><mi>"s"</mi></mfrac><mo>")"</mo><mo>","</mo>
            {q_min()}<mo>","</mo>{q_max()}<mo>")"</mo>
        </math>
        // Two maths that sit a space apart and wrap after the comma: at 16 bits on a phone the
        // whole line is wider than the screen.
        <span class="line">
            <math>
                <mo>"="</mo><mtext>"clamp"</mtext><mo>"("</mo><mtext>"round"</mtext><mo>"("</mo>
                <mn>{n(|f| &f.qmin)}</mn><mo>"−"</mo><mfrac><mn>{n(|f| &f.alpha)}</mn><mn>{n(|f| &f.asym_scale)}</mn></mfrac>
                <mo>")"</mo><mo>","</mo>
            </math>
            <math>
                <mn>{n(|f| &f.qmin)}</mn><mo>","</mo><mn>{n(|f| &f.qmax)}</mn><mo>")"</mo>
                <mo>"="</mo><mn>{n(|f| &f.asym_zero_point)}</mn>
            </math>
        </span>
    };
    view! {
        <div class="common">
            <math><mi>"α"</mi><mo>"="</mo><mn>{n(|f| &f.alpha)}</mn></math>
            <math><mi>"β"</mi><mo>"="</mo><mn>{n(|f| &f.beta)}</mn></math>
            <math>{q_min()}<mo>"="</mo><mn>{n(|f| &f.qmin)}</mn></math>
            <math>{q_max()}<mo>"="</mo><mn>{n(|f| &f.qmax)}</mn></math>
        </div>
        <div class="by-scheme" data-scheme="sym" class:current=current(Scheme::Symmetric)
            aria-current=marked(Scheme::Symmetric)>
            <span class="scheme-name">"symmetric"</span>
            {symmetric}
        </div>
        <div class="by-scheme" data-scheme="asym" class:current=current(Scheme::Asymmetric)
            aria-current=marked(Scheme::Asymmetric)>
            <span class="scheme-name">"asymmetric"</span>
            {asymmetric}
        </div>
        <div class="common">
            <math>
                <mi>"q"</mi><mo>"="</mo><mtext>"clamp"</mtext><mo>"("</mo><mtext>"round"</mtext><mo>"("</mo>
                <mfrac><mi>"w"</mi><mi>"s"</mi></mfrac><mo>")"</mo><mo>"+"</mo><mi>"z"</mi><mo>","</mo>
                {q_min()}<mo>","</mo>{q_max()}<mo>")"</mo>
            </math>
            <math>
                <mover><mi>"w"</mi><mo>"^"</mo></mover><mo>"="</mo><mi>"s"</mi><mo>"·"</mo>
                <mo>"("</mo><mi>"q"</mi><mo>"−"</mo><mi>"z"</mi><mo>")"</mo>
            </math>
        </div>
    }
}

/// How a number format derived the shown block's scale, with its numbers: the staircase's
/// caption under a format other than the integer grid.
fn format_derivation(v: &LayerView) -> Option<String> {
    let f = v.format.as_ref()?;
    let n = |x: f32| sig(f64::from(x));
    if f.kept_fp32 {
        return Some(format!(
            "{} leaves {} in FP32, as torchao's quantize_ does: it quantizes only Linear layers whose rows its group size divides.",
            f.format.label(),
            v.row.layer.name()
        ));
    }
    let Some(s) = f.scale else {
        return Some(format!(
            "{} rounds each weight on its own to the nearest value it can hold, ties to even: \
             no scale. Its values crowd toward zero — the same number of them in every power of two.",
            f.format.label()
        ));
    };
    let spread = f
        .scale_spread
        .map(|(a, b)| {
            format!(
                " Over the layer's {} blocks the stored scale's magnitude runs from {} to {}.",
                quant_core::fmt::thousands(v.blocks),
                n(a),
                n(b)
            )
        })
        .unwrap_or_default();
    let how = match f.format {
        Format::Nf4 => format!(
            "absmax = {}, stored as f32; each weight × (1/absmax) goes to the nearest of 16 normal quantiles (a midpoint to the lower), read back as code × absmax.",
            n(s.statistic)
        ),
        Format::Q4_0 | Format::Q5_0 => format!(
            "The value of largest magnitude is {}; d = {} / −{} = {}, stored as f16: {}. Codes q = trunc(w/d + {}.5), read back as (q − {})·d.",
            n(s.statistic),
            n(s.statistic),
            if f.format == Format::Q4_0 { 8 } else { 16 },
            n(s.exact),
            n(s.scale),
            if f.format == Format::Q4_0 { 8 } else { 16 },
            if f.format == Format::Q4_0 { 8 } else { 16 },
        ),
        Format::Q8_0 => format!(
            "amax = {}; d = amax / 127 = {}, stored as f16: {}. Codes q = round(w/d), ties away from zero.",
            n(s.statistic),
            n(s.exact),
            n(s.scale)
        ),
        Format::Q4_1 => format!(
            "min = {}, stored as f16: {}; d = (max − min) / 15 = {}, stored as f16: {}. Codes q = trunc((w − min)/d + 0.5), read back as q·d + min.",
            n(s.statistic),
            n(s.offset),
            n(s.exact),
            n(s.scale)
        ),
        Format::Int4G32 | Format::Int4G64 | Format::Int4G128 => format!(
            "min = {}; scale = (max − min) / 15 = {}; the zero point is a float, zp = min + 8·scale = {}. Codes q = round((w − (zp − 8·scale)) / scale) in 0…15, read back as (q − 8)·scale + zp.",
            n(s.statistic),
            n(s.scale),
            n(s.offset)
        ),
        Format::NvFp4 => format!(
            "absmax = {}; (absmax / 6) / t = {}, stored as E4M3: {}; times the tensor's f32 scale t, {} per step of the FP4 E2M1 elements (±0.5 … ±6).",
            n(s.statistic),
            n(s.exact),
            n(quant_core::formats::e4m3_round(s.exact)),
            n(s.scale)
        ),
        _ => format!(
            "The block's absmax is {}; its E8M0 scale is the power of two 2^⌊log₂ amax⌋ / 2^emax = {}. Elements are {} of amax / scale, saturating at the element's largest value.",
            n(s.statistic),
            n(s.scale),
            f.format.label().trim_start_matches("MX")
        ),
    };
    Some(format!(
        "{} block {}: {how}{spread}",
        f.format.label(),
        v.block_index
    ))
}

/// "Channel", "Group" or (a number format's) "Block", for the shown block.
pub fn block_noun(v: &LayerView) -> &'static str {
    if v.format.is_some() {
        return "Block";
    }
    match v.recipe.granularity {
        quant_core::recipe::Granularity::PerGroup(_) => "Group",
        _ => "Channel",
    }
}

#[component]
pub fn StaircasePanel(
    /// The selected layer at the current setting.
    layer_view: Memo<Result<LayerView, Error>>,
    /// The reader's choices (the shown channel or group).
    settings: crate::app::Settings,
) -> impl IntoView {
    let label = Signal::derive(move || {
        layer_view.with(|v| match v {
            Ok(v) if v.format.is_some() => format!(
                "Staircase of {}: FP32 inputs to the {} values the shown block can store.",
                v.recipe.format.label(),
                v.histogram.occupied_levels.max(v.histogram.levels.len())
            ),
            Ok(v) => format!(
                "Staircase mapping FP32 inputs to {} dequantized levels with scale {} and zero point {}.",
                v.bits().levels(),
                sig(f64::from(v.block.qparams.scale)),
                v.block.qparams.zero_point
            ),
            Err(e) => e.to_string(),
        })
    });
    // Every code up to 8 bits; at 16 bits only the landmarks (65,536 rows would help no one).
    let numbers = Signal::derive(move || {
        layer_view.with(|v| {
            let Ok(v) = v else { return Vec::new() };
            if let Some(f) = &v.format {
                // The block's levels, each with its index (the code, for the block formats).
                return f
                    .levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| vec![i.to_string(), sig(f64::from(*l))])
                    .collect();
            }
            let qp = v.block.qparams;
            let row = |q: i32| vec![q.to_string(), sig(f64::from(qp.dequantize(q)))];
            if v.bits().get() <= 8 {
                (qp.qmin..=qp.qmax).map(row).collect()
            } else {
                [qp.qmin, qp.zero_point, qp.qmax]
                    .into_iter()
                    .map(row)
                    .collect()
            }
        })
    });
    let filled =
        Memo::new(move |_| layer_view.with(|v| v.as_ref().map(Filled::new).unwrap_or_default()));
    // No scheme (and no integer formulas) under a format of its own.
    let scheme = Memo::new(move |_| {
        layer_view.with(|v| {
            v.as_ref()
                .ok()
                .filter(|v| v.format.is_none())
                .map(|v| v.scheme())
        })
    });
    let derivation = move || layer_view.with(|v| v.as_ref().ok().and_then(format_derivation));
    // Which block the numbers are for, and where its range came from, when that is not simply
    // the layer's min and max.
    let context = move || {
        layer_view.with(|v| {
            let Ok(v) = v else { return String::new() };
            let mut parts = Vec::new();
            if v.blocks > 1 {
                parts.push(format!(
                    "{} {} of 0–{}.",
                    block_noun(v),
                    v.block_index,
                    v.blocks - 1
                ));
            }
            if v.recipe.range != RangeMethod::MinMax {
                parts.push(format!(
                    "{}: α = {} and β = {} observed; the grid covers [{}, {}].",
                    range_rule(v.recipe.range),
                    sig(f64::from(v.block.alpha)),
                    sig(f64::from(v.block.beta)),
                    sig(f64::from(v.block.lo)),
                    sig(f64::from(v.block.hi)),
                ));
            }
            parts.join(" ")
        })
    };
    let math = formulas(scheme, filled);
    view! {
        <section class="panel" aria-labelledby="staircase-title">
            <h2 id="staircase-title">"The staircase"</h2>
            <p class="explain" hidden=move || scheme.get().is_some()>
                "A number format is a staircase too, but its treads need not be even: each is a "
                "value the format can store, and every input between two of them lands on the "
                "nearer. A block format first scales the block — by its largest weight, stored "
                "as an f16, an f32 or a power of two — so the treads stretch with each block's "
                "range; past the largest value the format saturates, and the ends go flat."
            </p>
            <p class="explain" hidden=move || scheme.get().is_none()>
                "Quantizing is a staircase: every input between two treads lands on the same "
                "integer q, and dequantizing maps q back to s·(q − z). Symmetric puts z at 0, so "
                "zero stays exactly zero and the grid is centred whether or not the weights are; "
                "asymmetric spends every level inside [α, β], which pays off when the range is "
                "lopsided. PyTorch first widens the range to include 0 (so α ≤ 0 ≤ β below) and "
                "rounds halves to the even integer."
            </p>
            <crate::panels::block::BlockPicker layer_view settings id="staircase-block" />
            <ChartCanvas
                draw=move |area, theme| {
                    layer_view.with(|v| {
                        if let Ok(LayerView { format: Some(f), histogram: h, .. }) = v {
                            let scale = f.scale.unwrap_or(BlockScale::UNIT);
                            let _ = quant_charts::format_staircase::draw(
                                area,
                                &|x| f.format.encode(x, &scale),
                                h.alpha,
                                h.beta,
                                theme,
                            );
                        } else if let Ok(v) = v {
                            let _ = quant_charts::staircase::draw(
                                area,
                                &v.block.qparams,
                                &|x| v.staircase_code(x),
                                v.block.alpha,
                                v.block.beta,
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
            <p class="caption" id="staircase-context">{context}</p>
            <p class="caption format-derivation" id="format-derivation"
                hidden=move || derivation().is_none()>{move || derivation().unwrap_or_default()}</p>
            <div class="formulas" hidden=move || scheme.get().is_none()>{math}</div>
        </section>
    }
}
