//! Static PTQ against torch.ao: goldens written by `scripts/ptq_goldens.py` (PyTorch 2.15, eager
//! mode fuse → prepare → calibrate → convert, run under the preset's engine), read here without
//! PyTorch.
//!
//! - The integer engine, given PyTorch's activation qparams: every site's codes equal PyTorch's
//!   `int_repr()` for every one of the 2,000 test digits (CRC-32 per digit and site), for qnnpack
//!   and x86 alike. The script lists the (digit, site) pairs where FBGEMM's int16 pair saturation
//!   changes PyTorch's x86 result; on our model there are none, and the test asserts that too.
//! - Weight qparams bit for bit; loss and accuracy of the converted model as PyTorch's.
//! - Our calibration (our float forward, our observers) against PyTorch's recorded ranges and
//!   chosen qparams; split over workers as the browser runs it, the same bits as in one piece.
//! - HistogramObserver on PyTorch's own inputs (histogram.json): min, max, scale and zero point
//!   bit for bit after every batch, and the final histogram.

use quant_core::eval::EvalTally;
use quant_core::observer::{BatchSummary, Observer, ObserverKind};
use quant_core::ptq::{self, Preset, PtqConfig, SITES};
use quant_core::qinfer::{to_nchw, IntNet};
use quant_core::quant::QParams;
use serde_json::Value;

mod common;
use common::*;

/// zlib's CRC-32 (IEEE, reflected), as the goldens script's `zlib.crc32`.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn config_of(c: &Value) -> PtqConfig {
    PtqConfig::new(
        Preset::parse(c["preset"].as_str().unwrap()).unwrap(),
        ObserverKind::parse(c["observer"].as_str().unwrap()).unwrap(),
        c["calibration"].as_u64().unwrap() as usize,
    )
}

fn name(c: &Value) -> String {
    format!("{} {} N={}", c["preset"], c["observer"], c["calibration"])
}

fn f32_of(v: &Value) -> f32 {
    // The script writes f32 values as f64 JSON numbers: exact.
    v.as_f64().unwrap() as f32
}

/// PyTorch's activation qparams of a configuration.
fn torch_act(c: &Value, config: &PtqConfig) -> [QParams; 5] {
    let (qmin, qmax) = config.activation_range();
    std::array::from_fn(|i| {
        let a = &c["activations"][SITES[i]];
        QParams {
            scale: f32_of(&a["scale"]),
            zero_point: a["zero_point"].as_i64().unwrap() as i32,
            qmin,
            qmax,
        }
    })
}

#[test]
fn integer_engine_equals_pytorch_int_repr_for_every_digit_and_site() {
    let goldens = json("core/tests/goldens/ptq.json");
    let (net, test) = (bundled(), test_digits());
    let images = test.images_f32();
    for c in goldens["configs"].as_array().unwrap() {
        let config = config_of(c);
        let weights = ptq::quantize_all(&net, &config).unwrap();
        // Weights: bit for bit.
        for (l, w) in ["conv1", "conv2", "fc1", "fc2"].iter().zip(&weights) {
            let g = &c["weights"][l];
            let scales: Vec<u32> = g["scale"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| f32_of(v).to_bits())
                .collect();
            let ours: Vec<u32> = w.qparams.iter().map(|q| q.scale.to_bits()).collect();
            assert_eq!(ours, scales, "{} {l} weight scales", name(c));
            assert!(w.qparams.iter().all(|q| q.zero_point == 0));
            assert_eq!(g["dtype"], "torch.qint8");
        }
        // PyTorch lists the (digit, site) pairs FBGEMM's saturation changed; none on our model.
        let saturated = c["saturated"].as_array().unwrap();
        assert!(saturated.is_empty(), "{}: {saturated:?}", name(c));

        let int = IntNet::new(&net, &weights, &torch_act(c, &config), config.preset).unwrap();
        let mut mismatches = vec![];
        let mut logits = Vec::new();
        for start in (0..test.len()).step_by(100) {
            let batch = images.slice(ndarray::s![start..start + 100, ..]);
            let codes = int.codes(batch.as_slice().unwrap());
            let layouts = [(784, 1), (784, 32), (196, 64), (1, 128), (1, 10)];
            for (s, &(pixels, channels)) in layouts.iter().enumerate() {
                let nchw = to_nchw(&codes.sites[s], pixels, channels);
                let per = pixels * channels;
                for (d, img) in nchw.chunks_exact(per).enumerate() {
                    let want = c["codes"][SITES[s]][start + d].as_u64().unwrap() as u32;
                    if crc32(img) != want {
                        mismatches.push((start + d, SITES[s]));
                    }
                }
            }
            let scores = int.scores(&codes);
            // The fast path (pool the sums, then requantize once) gives the same codes.
            assert_eq!(int.logits(batch.as_slice().unwrap()), scores, "{}", name(c));
            logits.extend(scores.iter().copied());
        }
        assert!(
            mismatches.is_empty(),
            "{}: {} (digit, site) codes differ from PyTorch, first {:?}",
            name(c),
            mismatches.len(),
            &mismatches[..mismatches.len().min(10)]
        );

        let logits = ndarray::Array2::from_shape_vec((test.len(), 10), logits).unwrap();
        let mut tally = EvalTally::default();
        tally.add_scores(logits.view(), &test.labels);
        let score = tally.evaluation();
        let preds: String = ptq::predictions(logits.view())
            .iter()
            .map(|p| char::from(b'0' + p))
            .collect();
        assert_eq!(preds, c["predictions"].as_str().unwrap(), "{}", name(c));
        assert_eq!(
            score.correct as u64,
            c["correct"].as_u64().unwrap(),
            "{}",
            name(c)
        );
        let loss = c["loss"].as_f64().unwrap();
        assert!(
            (score.loss - loss).abs() < 1e-12,
            "{}: loss {} vs {loss}",
            name(c),
            score.loss
        );
    }
}

/// Our calibration runs our float forward pass, whose sums are ordered differently from oneDNN's
/// (PyTorch's CPU convolution): an activation can differ from PyTorch's in its last bits, and so
/// can the largest one (conv2's maximum over 1,000 digits: 7.209315 here, 7.2093139 in PyTorch,
/// 7.2093143 correctly rounded). So the recorded ranges agree to a few ulp, not to the bit; a
/// min–max scale follows them (≤ 4 ulp). The histogram's search turns such a difference into
/// at most one of its 2,048 bins where a value sits on a bin edge: its scale agrees to within one
/// bin width over the code range. On PyTorch's own inputs the observer is bit-exact (below).
/// Zero points agree exactly, and so does the whole pipeline's accuracy.
/// Calibration as the browser splits it over `workers`: each round, every worker runs one batch
/// on its own float network and reports the batch's ranges; the observers' side answers with the
/// range each batch's histogram counts are taken over; the workers send their summaries (through
/// JSON, as the messages do) and the observers absorb them in order. None for the percentile,
/// which needs every value where the observers are.
fn calibrate_split(
    net: &quant_core::model::MnistNet,
    train: &quant_core::data::Digits,
    config: PtqConfig,
    workers: usize,
) -> Option<ptq::Calibration> {
    let mut c = ptq::Calibrator::new(config, train.len()).unwrap();
    if !c.summaries_suffice() {
        return None;
    }
    let floats: Vec<ptq::FloatNet> = (0..workers).map(|_| ptq::FloatNet::new(net)).collect();
    loop {
        let next = c.batches(workers);
        if next.is_empty() {
            break;
        }
        let runs: Vec<ptq::SiteBatch> = next
            .iter()
            .zip(&floats)
            .map(|(d, f)| ptq::SiteBatch::run(f, train.images_f32_rows(d.clone()).view()).unwrap())
            .collect();
        let ranges = c.histogram_ranges(&runs.iter().map(|r| r.ranges).collect::<Vec<_>>());
        for (run, range) in runs.iter().zip(&ranges) {
            let sent = serde_json::to_string(&run.summaries(range).unwrap()).unwrap();
            let summaries: [BatchSummary; 5] = serde_json::from_str(&sent).unwrap();
            c.absorb(run.digits, &summaries, None).unwrap();
        }
    }
    Some(c.finish().unwrap())
}

#[test]
fn calibration_records_pytorchs_ranges_and_chooses_its_qparams() {
    let goldens = json("core/tests/goldens/ptq.json");
    let (net, train, test) = (bundled(), train_digits(), test_digits());
    let images = test.images_f32();
    let ulps = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
    let (mut exact, mut sites) = (0, 0);
    for c in goldens["configs"].as_array().unwrap() {
        let config = config_of(c);
        let cal = ptq::calibrate(&net, &train, config).unwrap();
        for (s, site) in cal.sites.iter().enumerate() {
            let g = &c["activations"][SITES[s]];
            let (lo, hi) = site.observer.recorded().unwrap();
            let (glo, ghi) = (f32_of(&g["min"]), f32_of(&g["max"]));
            let (gs, gz) = (
                f32_of(&g["scale"]),
                g["zero_point"].as_i64().unwrap() as i32,
            );
            let at = format!(
                "{} {}: min {lo:e}/{glo:e} max {hi:e}/{ghi:e} scale {:e}/{gs:e} zp {}/{gz}",
                name(c),
                SITES[s],
                site.qparams.scale,
                site.qparams.zero_point
            );
            assert!(ulps(lo, glo) <= 4 && ulps(hi, ghi) <= 4, "{at}");
            assert_eq!(site.qparams.zero_point, gz, "{at}");
            let (qmin, qmax) = config.activation_range();
            let tolerance = match config.observer {
                ObserverKind::Histogram => (ghi - glo) / 2048.0 / (qmax - qmin) as f32 * 1.01,
                _ => 4.0 * gs * f32::EPSILON,
            };
            assert!((site.qparams.scale - gs).abs() <= tolerance, "{at}");
            exact += usize::from(site.qparams.scale == gs);
            sites += 1;
        }
        if let Some(split) = calibrate_split(&net, &train, config, 3) {
            for (a, b) in cal.sites.iter().zip(&split.sites) {
                let bits = |r: Option<(f32, f32)>| r.map(|(lo, hi)| (lo.to_bits(), hi.to_bits()));
                assert_eq!(bits(a.observer.recorded()), bits(b.observer.recorded()));
                assert_eq!(bits(a.observer.chosen()), bits(b.observer.chosen()));
                assert_eq!(a.qparams, b.qparams, "{}", name(c));
                assert_eq!(a.display.counts, b.display.counts, "{}", name(c));
            }
        }
        let weights = ptq::quantize_all(&net, &config).unwrap();
        let int = IntNet::new(&net, &weights, &cal.qparams(), config.preset).unwrap();
        let mut tally = EvalTally::default();
        tally.add_scores(int.logits(images.as_slice().unwrap()).view(), &test.labels);
        let score = tally.evaluation();
        assert_eq!(
            score.correct as u64,
            c["correct"].as_u64().unwrap(),
            "{}",
            name(c)
        );
    }
    eprintln!("{exact} of {sites} calibrated scales equal PyTorch's to the bit");
}

#[test]
fn histogram_observer_matches_pytorch_on_pytorchs_inputs() {
    let goldens = json("core/tests/goldens/histogram.json");
    for (i, case) in goldens["cases"].as_array().unwrap().iter().enumerate() {
        let reduce = case["reduce_range"].as_bool().unwrap();
        let qmax = if reduce { 127 } else { 255 };
        let mut o = Observer::new(ObserverKind::Histogram, 0);
        for (b, (batch, step)) in case["batches"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["steps"].as_array().unwrap())
            .enumerate()
        {
            let values: Vec<f32> = batch.as_array().unwrap().iter().map(f32_of).collect();
            o.observe(&values).unwrap();
            let (lo, hi) = o.recorded().unwrap();
            let q = o.qparams(0, qmax).unwrap();
            let at = format!("case {i} batch {b}");
            assert_eq!(
                (lo, hi),
                (f32_of(&step["min"]), f32_of(&step["max"])),
                "{at}"
            );
            assert_eq!(
                q.scale.to_bits(),
                f32_of(&step["scale"]).to_bits(),
                "{at}: scale {} vs {}",
                q.scale,
                step["scale"]
            );
            assert_eq!(
                q.zero_point as i64,
                step["zero_point"].as_i64().unwrap(),
                "{at}"
            );
        }
        let Observer::Histogram(h) = &o else {
            unreachable!()
        };
        let want: Vec<f32> = case["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(f32_of)
            .collect();
        assert_eq!(h.counts, want, "case {i}: final histogram");
    }
}
