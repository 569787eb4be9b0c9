//! `qp ptq`: the essay's post-training static quantization printout, and the integer codes of
//! every layer for anyone to diff against PyTorch.

use crate::format::Format;
use quant_core::data::Digits;
use quant_core::fmt::{accuracy, table, thousands};
use quant_core::model::MnistNet;
use quant_core::observer::ObserverKind;
use quant_core::ptq::{self, Preset, PtqConfig, CALIBRATION_BATCH, SITES};
use quant_core::qinfer::{to_nchw, IntNet};
use std::collections::HashMap;
use std::path::Path;

#[derive(clap::Args)]
pub struct PtqArgs {
    /// PyTorch's qconfig: x86 (FBGEMM: per-channel weights, activations 0..127) or qnnpack
    /// (per-tensor weights, activations 0..255).
    #[arg(long, default_value = "x86")]
    pub preset: String,
    /// Activation observer: histogram (the presets' default), minmax, moving_average or
    /// percentile:P (ours).
    #[arg(long, default_value = "histogram")]
    pub observer: String,
    /// Calibration digits: the first N of the training split (1 to 8,000).
    #[arg(long, default_value_t = 1000)]
    pub calibration: usize,
    /// Weight bits (below 8: simulated only).
    #[arg(long, default_value_t = 8)]
    pub weight_bits: u8,
    /// Activation bits (below 8: simulated only).
    #[arg(long, default_value_t = 8)]
    pub activation_bits: u8,
    /// Write every site's integer output for every test digit to this safetensors file: U8
    /// tensors `quant` [n,1,28,28], `conv1` [n,32,28,28] (after the fused ReLU, before the
    /// pool), `conv2` [n,64,14,14], `fc1` [n,128], `fc2` [n,10], NCHW as PyTorch's
    /// `int_repr()`, with each site's scale and zero_point in the metadata.
    #[arg(long)]
    pub emit_codes: Option<std::path::PathBuf>,
}

impl PtqArgs {
    pub fn config(&self) -> Result<PtqConfig, String> {
        let e = |e: quant_core::Error| e.to_string();
        let config = PtqConfig {
            preset: Preset::parse(&self.preset).map_err(e)?,
            observer: ObserverKind::parse(&self.observer).map_err(e)?,
            calibration: self.calibration,
            weight_bits: self.weight_bits,
            activation_bits: self.activation_bits,
        };
        config.validate().map_err(e)?;
        Ok(config)
    }
}

fn scales(v: &[f32]) -> String {
    if v.len() == 1 {
        return format!("{:.6e}", v[0]);
    }
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, 0f32), |(a, b), &s| (a.min(s), b.max(s)));
    format!("{} channels, {lo:.4e} … {hi:.4e}", v.len())
}

/// The clipped share: exact for the histogram observer (its range ends on bin edges), within a
/// bin of 2,048 for the others, so shown as an estimate.
fn clipped(f: f64, observer: ObserverKind) -> String {
    let approx = if observer == ObserverKind::Histogram {
        ""
    } else {
        "≈ "
    };
    match f {
        0.0 => "0".into(),
        f if f < 1e-5 => format!("{approx}<0.001%"),
        f => format!("{approx}{:.3}%", 100.0 * f),
    }
}

pub fn run(
    args: &PtqArgs,
    net: &MnistNet,
    train: &Digits,
    test: &Digits,
    format: Format,
) -> Result<String, String> {
    let config = args.config()?;
    let start = std::time::Instant::now();
    let cal = ptq::calibrate(net, train, config).map_err(|e| e.to_string())?;
    let calibrated = start.elapsed();
    // The report's steps, timed one by one (the same steps a worker runs).
    let e = |e: quant_core::Error| e.to_string();
    let images = test.images_f32();
    let t = std::time::Instant::now();
    let fp32 = quant_core::eval::evaluate(net, images.view(), &test.labels).map_err(e)?;
    let wo = ptq::weight_only(net, config.preset, config.weight_bits).map_err(e)?;
    let weight_only = quant_core::eval::evaluate(&wo, images.view(), &test.labels).map_err(e)?;
    let floats = t.elapsed();
    let mut evaluator = ptq::PtqEvaluator::new(net, &cal).map_err(e)?;
    let clock = std::time::Instant::now();
    let now = || clock.elapsed().as_secs_f64() * 1000.0;
    while evaluator.step(test, &now) {}
    let (simulated, integer) = evaluator.rates();
    let report = evaluator.finish(net, &cal, fp32, weight_only);
    eprintln!(
        "calibrated on {} digits in {:.2} s; FP32 and weight-only {:.2} s; simulated {:.0} img/s; \
         integer engine {} (one thread)",
        config.calibration,
        calibrated.as_secs_f64(),
        floats.as_secs_f64(),
        simulated,
        integer.map_or("not run (below 8 bits)".into(), |r| format!("{r:.0} img/s")),
    );
    if let Some(path) = &args.emit_codes {
        emit_codes(path, net, &cal, test)?;
    }
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(&report).expect("plain data") + "\n");
    }
    let md = format.markdown();
    let n = report.fp32.count;
    let row = |name: String, e: &quant_core::eval::Evaluation, bytes: usize| {
        vec![
            name,
            format!("{:.4}", e.loss),
            accuracy(e.correct, e.count, n),
            thousands(bytes),
        ]
    };
    let gran = if config.preset.per_channel() {
        "per channel"
    } else {
        "per tensor"
    };
    let w = config.weight_bits;
    let a = config.activation_bits;
    let mut rows = vec![
        row("fp32".into(), &report.fp32, report.fp32_bytes),
        row(
            format!("int{w} weights only (fake quant, {gran})"),
            &report.weight_only,
            report.quantized_bytes,
        ),
        row(
            format!("W{w}A{a} simulated (fake quant)"),
            &report.simulated,
            report.quantized_bytes,
        ),
    ];
    if let Some(int) = &report.integer {
        rows.push(row(
            format!("int8 ({} integer engine)", config.preset.name()),
            int,
            report.quantized_bytes,
        ));
    }
    let mut out = format!(
        "Static PTQ, preset {} ({} arithmetic), {}, calibrated on the first {} training digits \
         (batches of {CALIBRATION_BATCH}); {} test digits\n\n",
        config.preset.name(),
        match config.preset {
            Preset::X86 => "FBGEMM",
            Preset::Qnnpack => "QNNPACK",
        },
        config.observer.torch_name(),
        thousands(config.calibration),
        thousands(n),
    );
    out += &table(md, &["model", "loss", "accuracy", "size (bytes)"], &rows);
    if let Some(agree) = report.agree {
        out += &format!(
            "\nSimulation and the integer engine predict the same class for {} of {} digits.\n",
            thousands(agree),
            thousands(n)
        );
    }
    out += "\nWeights\n\n";
    let wrows: Vec<Vec<String>> = report
        .weights
        .iter()
        .map(|r| {
            vec![
                r.layer.clone(),
                r.dtype.clone(),
                r.qscheme.clone(),
                scales(&r.scales),
                r.zero_point.to_string(),
            ]
        })
        .collect();
    out += &table(
        md,
        &["layer", "dtype", "qscheme", "scale", "zero_point"],
        &wrows,
    );
    out += "\nActivations (quint8; the site's output, e.g. conv1 = q_model.conv1.scale)\n\n";
    let arows: Vec<Vec<String>> = report
        .sites
        .iter()
        .map(|s| {
            vec![
                s.site.clone(),
                format!("{:.5} … {:.5}", s.observed.0, s.observed.1),
                format!("{:.5} … {:.5}", s.chosen.0, s.chosen.1),
                format!("{}..{}", s.qmin, s.qmax),
                clipped(s.clipped, report.config.observer),
                format!("{:.8e}", s.scale),
                s.zero_point.to_string(),
            ]
        })
        .collect();
    out += &table(
        md,
        &[
            "site",
            "observed range",
            "chosen range",
            "codes",
            "clipped",
            "scale",
            "zero_point",
        ],
        &arows,
    );
    Ok(out + "\n")
}

fn emit_codes(
    path: &Path,
    net: &MnistNet,
    cal: &ptq::Calibration,
    test: &Digits,
) -> Result<(), String> {
    let config = cal.config;
    if !config.integer() {
        return Err("--emit-codes needs 8-bit weights and activations (the integer engine)".into());
    }
    let weights = ptq::quantize_all(net, &config).map_err(|e| e.to_string())?;
    let int =
        IntNet::new(net, &weights, &cal.qparams(), config.preset).map_err(|e| e.to_string())?;
    let images = test.images_f32();
    let mut sites: [Vec<u8>; 5] = Default::default();
    for start in (0..test.len()).step_by(CALIBRATION_BATCH) {
        let end = (start + CALIBRATION_BATCH).min(test.len());
        let batch = images.slice(ndarray::s![start..end, ..]);
        let codes = int.codes(batch.as_slice().expect("standard layout"));
        for (all, c) in sites.iter_mut().zip(codes.sites) {
            all.extend(c);
        }
    }
    let n = test.len();
    let layouts = [
        (784, 1, vec![n, 1, 28, 28]),
        (784, 32, vec![n, 32, 28, 28]),
        (196, 64, vec![n, 64, 14, 14]),
        (1, 128, vec![n, 128]),
        (1, 10, vec![n, 10]),
    ];
    let nchw: Vec<Vec<u8>> = sites
        .iter()
        .zip(&layouts)
        .map(|(c, (pixels, channels, _))| to_nchw(c, *pixels, *channels))
        .collect();
    let views = nchw
        .iter()
        .zip(&layouts)
        .zip(SITES)
        .map(|((data, (_, _, shape)), name)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::U8, shape.clone(), data)
                .map(|v| (name.to_string(), v))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut metadata = HashMap::new();
    for (site, s) in SITES.iter().zip(&cal.sites) {
        metadata.insert(format!("{site}.scale"), format!("{:e}", s.qparams.scale));
        metadata.insert(
            format!("{site}.zero_point"),
            s.qparams.zero_point.to_string(),
        );
    }
    metadata.insert("preset".into(), config.preset.name().into());
    metadata.insert("observer".into(), config.observer.name());
    metadata.insert("calibration".into(), config.calibration.to_string());
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())?;
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
