//! QAT's pieces against PyTorch (goldens written by scripts/qat_goldens.py): LSQ,
//! `torch._fake_quantize_learnable_per_tensor_affine`'s forward and backward
//! (core/tests/goldens/lsq.json); the moving-average weight observer,
//! `MovingAverageMinMaxObserver` (core/tests/goldens/moving_average.json).

use quant_core::qat::MovingRange;
use quant_core::quant::{observe_range, Bits, QParams, Scheme};
use serde_json::Value;

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn lsq_forward_and_gradients_are_pytorchs() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/goldens/lsq.json"
    ))
    .unwrap();
    let goldens: Value = serde_json::from_str(&text).unwrap();
    for case in goldens["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let qp = QParams {
            scale: case["scale"].as_f64().unwrap() as f32,
            zero_point: case["zero_point"].as_i64().unwrap() as i32,
            qmin: case["qmin"].as_i64().unwrap() as i32,
            qmax: case["qmax"].as_i64().unwrap() as i32,
        };
        let (x, dy) = (f32s(&case["x"]), f32s(&case["dy"]));
        let (y, dx) = (f32s(&case["y"]), f32s(&case["dx"]));
        let grad_factor = case["grad_factor"].as_f64().unwrap() as f32;
        let mut dscale = 0.0f64;
        let mut clipped = 0;
        for i in 0..x.len() {
            let (fake, clip) = qp.fake_quant_clips(x[i]);
            assert_eq!(
                fake.to_bits(),
                y[i].to_bits(),
                "{name}: y[{i}] for x = {}",
                x[i]
            );
            let (dw, ds) = qp.lsq_gradients(x[i], dy[i]);
            assert_eq!(
                dw.to_bits(),
                dx[i].to_bits(),
                "{name}: dx[{i}] for x = {}",
                x[i]
            );
            // Clipped exactly where the gradient stops (the STE's mask).
            assert_eq!(clip, dw == 0.0, "{name}: x = {}", x[i]);
            clipped += usize::from(clip);
            dscale += f64::from(ds * grad_factor);
        }
        assert!(clipped > 0, "{name}: the case must clip some values");
        // The per-value terms are PyTorch's; their sum is not in its order (ATen reduces in
        // vectorized partial sums), so the total agrees to f32 rounding of a sum of ~1,500
        // terms, not to the bit.
        let want = case["dscale"].as_f64().unwrap();
        assert!(
            (dscale - want).abs() <= 1e-5 * want.abs().max(1e-3),
            "{name}: dscale {dscale} vs PyTorch's {want}"
        );
    }
}

#[test]
fn the_moving_average_observer_is_pytorchs() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/goldens/moving_average.json"
    ))
    .unwrap();
    let goldens: Value = serde_json::from_str(&text).unwrap();
    let mut range = MovingRange::default();
    for (i, step) in goldens["steps"].as_array().unwrap().iter().enumerate() {
        let x = f32s(&step["x"]);
        let (lo, hi) = range.observe(observe_range(&x).unwrap());
        let want = |k: &str| step[k].as_f64().unwrap() as f32;
        assert_eq!(
            (lo.to_bits(), hi.to_bits()),
            (want("min").to_bits(), want("max").to_bits()),
            "step {i}"
        );
        let qp = QParams::from_range(lo, hi, Bits::new(2).unwrap(), Scheme::Symmetric).unwrap();
        assert_eq!(qp.scale.to_bits(), want("scale").to_bits(), "step {i}");
        assert_eq!(
            i64::from(qp.zero_point),
            step["zero_point"].as_i64().unwrap()
        );
    }
}
