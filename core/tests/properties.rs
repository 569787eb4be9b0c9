//! Properties of quantization over random tensors.

use proptest::prelude::*;
use quant_core::quant::{Bits, QParams, Scheme};
use quant_core::stats::error_stats;

fn bits() -> impl Strategy<Value = Bits> {
    prop::sample::select(Bits::ALL.to_vec())
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop::sample::select(Scheme::ALL.to_vec())
}

/// Tensors like real weights: a scale from 1e-4 to 1e2 and an offset, so ranges are lopsided,
/// all-positive, all-negative or straddling zero.
fn tensor(min_len: usize) -> impl Strategy<Value = Vec<f32>> {
    (
        1e-4f32..1e2,
        -1.5f32..1.5,
        prop::collection::vec(-1.0f32..1.0, min_len..min_len + 600),
    )
        .prop_map(|(scale, offset, v)| v.into_iter().map(|x| (x + offset) * scale).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn codes_stay_within_qmin_qmax(w in tensor(1), extra in prop::collection::vec(-1e6f32..1e6, 0..20), b in bits(), s in scheme()) {
        let qp = QParams::calibrate(&w, b, s).unwrap();
        // Values far outside the calibrated range (extra) must clamp, not overflow.
        for &x in w.iter().chain(&extra) {
            let q = qp.quantize(x);
            prop_assert!((b.qmin()..=b.qmax()).contains(&q));
        }
    }

    #[test]
    fn error_is_at_most_half_a_step_inside_the_grid(w in tensor(1), b in bits(), s in scheme()) {
        let qp = QParams::calibrate(&w, b, s).unwrap();
        let (lo, hi) = qp.representable_range();
        for &x in w.iter().filter(|&&x| (lo..=hi).contains(&x)) {
            let err = (x - qp.fake_quant(x)).abs();
            // Half a step, plus the f32 rounding of x·(1/s) and of s·(q − z).
            let bound = qp.scale / 2.0 * (1.0 + 1e-5) + 4.0 * f32::EPSILON * x.abs();
            prop_assert!(err <= bound, "x {x} err {err} scale {}", qp.scale);
        }
    }

    #[test]
    fn fake_quant_is_idempotent(w in tensor(1), b in bits(), s in scheme()) {
        let qp = QParams::calibrate(&w, b, s).unwrap();
        for &x in &w {
            let once = qp.fake_quant(x);
            prop_assert_eq!(qp.fake_quant(once), once);
        }
    }

    /// Over tensors of many continuous random values the error falls as bits grow. (Not for
    /// every tensor: values that sit exactly on the n-bit grid have zero error at n bits and a
    /// little at n + 1, whose grid is not a refinement of the n-bit one.)
    #[test]
    fn error_does_not_increase_with_bits(w in tensor(400), s in scheme()) {
        let mut previous = f64::INFINITY;
        for b in Bits::ALL {
            let qp = QParams::calibrate(&w, b, s).unwrap();
            let mae = error_stats(&w, &qp).mean_abs_error;
            prop_assert!(mae <= previous, "{b} bits: {mae} > {previous}");
            previous = mae;
        }
    }
}
