//! The drawing pad's preprocessing on real test digits, per-layer recipes, sensitivity, and the
//! allocation search against brute force.

mod common;

use quant_core::data::{Digits, PIXELS, SIDE};
use quant_core::draw::{preprocess, upscale};
use quant_core::eval::evaluate;
use quant_core::formats::Format;
use quant_core::model::Layer;
use quant_core::quant::{Bits, Scheme};
use quant_core::recipe::{LayerRecipe, Recipe};
use quant_core::study::{
    alone, assignment, best_under, front_by, losses_alone, predicted_front, scores, sensitivity,
    Measured,
};

fn digit(d: &Digits, i: usize) -> Vec<f32> {
    d.images_f32_rows(i..i + 1).into_raw_vec_and_offset().0
}

/// The largest difference between two digits.
fn diff(a: &[f32], b: &[f32]) -> f32 {
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    max
}

/// `digit` shifted by whole pixels inside the 28×28 field (what leaves is lost; none does here).
fn shifted(digit: &[f32], dx: isize, dy: isize) -> Vec<f32> {
    let mut out = vec![0.0; PIXELS];
    for y in 0..SIDE as isize {
        for x in 0..SIDE as isize {
            let (sx, sy) = (x - dx, y - dy);
            if (0..SIDE as isize).contains(&sx) && (0..SIDE as isize).contains(&sy) {
                out[(y * SIDE as isize + x) as usize] = digit[(sy * SIDE as isize + sx) as usize];
            }
        }
    }
    out
}

#[test]
fn a_test_digit_drawn_at_pad_size_comes_back_as_itself() {
    // Every test digit shown on the pad (10× nearest neighbour, as the page draws it) and read
    // back: its box is 20 pixels on its longer side, so the scaling is exact (each output pixel
    // the mean of a 10×10 block of one value), and its centre of mass lies within half a pixel
    // of 14, so it is not moved. Tolerance: 1e-6 (the mean of 100 equal f32s).
    let d = common::test_digits();
    for i in 0..d.len() {
        let original = digit(&d, i);
        let back = preprocess(&upscale(&original, 10), 280, 280)
            .unwrap()
            .unwrap();
        let max = diff(&original, &back);
        assert!(max < 1e-6, "digit {i} came back {max} away");
    }
    // One pixel off centre, it is put back.
    let original = digit(&d, 0);
    for (dx, dy) in [(-2, 0), (2, 1), (0, -3)] {
        let moved = shifted(&original, dx, dy);
        let back = preprocess(&upscale(&moved, 10), 280, 280).unwrap().unwrap();
        assert!(diff(&original, &back) < 1e-6, "shift ({dx}, {dy})");
    }
}

#[test]
fn a_shifted_and_scaled_digit_is_recentred() {
    let d = common::test_digits();
    let mut checked = 0;
    for i in 0..50 {
        let original = digit(&d, i);
        let centred = preprocess(&upscale(&original, 10), 280, 280)
            .unwrap()
            .unwrap();
        // The same digit at 7× in a corner of a wider pad: the same 28×28 comes out.
        let big = upscale(&original, 7);
        let (w, h) = (420, 300);
        let mut pad = vec![0.0; w * h];
        for y in 0..SIDE * 7 {
            pad[(y + 100) * w + 230..][..SIDE * 7]
                .copy_from_slice(&big[y * SIDE * 7..][..SIDE * 7]);
        }
        let back = preprocess(&pad, w, h).unwrap().unwrap();
        let max = diff(&centred, &back);
        assert!(max < 1e-5, "digit {i}: {max}");
        // And at 3.5× (not a whole number): the grey levels move, the digit does not.
        let small: Vec<f32> = (0..98 * 98)
            .map(|j| original[(j / 98 * 2 / 7) * SIDE + (j % 98) * 2 / 7])
            .collect();
        let back = preprocess(&small, 98, 98).unwrap().unwrap();
        let (mut mass, mut mx, mut my) = (0.0, 0.0, 0.0);
        for (j, v) in back.iter().enumerate() {
            mass += v;
            mx += v * (j % SIDE) as f32;
            my += v * (j / SIDE) as f32;
        }
        let (cx, cy) = (mx / mass, my / mass);
        assert!(
            (cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5,
            "digit {i}: ({cx}, {cy})"
        );
        checked += 1;
    }
    assert_eq!(checked, 50);
}

#[test]
fn drawn_digits_are_read_as_the_network_reads_the_test_digit() {
    let net = common::bundled();
    let d = common::test_digits();
    let take: Vec<usize> = (0..200).collect();
    let sample = d.select(&take);
    let original = scores(&net, &sample);
    let redrawn: Vec<u8> = (0..200)
        .flat_map(|i| {
            preprocess(&upscale(&digit(&sample, i), 10), 280, 280)
                .unwrap()
                .unwrap()
                .map(|v| (v * 255.0).round() as u8)
        })
        .collect();
    let redrawn = Digits::from_pixels(redrawn, sample.labels.clone()).unwrap();
    let again = scores(&net, &redrawn);
    let agree = original
        .chunks(10)
        .zip(again.chunks(10))
        .filter(|(a, b)| quant_core::eval::argmax(a) == quant_core::eval::argmax(b))
        .count();
    assert!(agree >= 198, "{agree} of 200 read alike");
}

#[test]
fn fp32_layers_keep_their_weights_and_size() {
    let net = common::bundled();
    let base = LayerRecipe::per_tensor(Bits::new(4).unwrap(), Scheme::Symmetric);
    let r = alone(base, Layer::Conv2, Bits::new(3).unwrap());
    assert_eq!(
        r.to_string(),
        "bits=4&scheme=sym&dtype=fp32&conv2.bits=3&conv2.dtype=int"
    );
    let q = net.fake_quantized(&r).unwrap();
    let only = net
        .fake_quantized(&Recipe::per_tensor(
            Bits::new(3).unwrap(),
            Scheme::Symmetric,
        ))
        .unwrap();
    assert_eq!(q.conv1_w, net.conv1_w);
    assert_eq!(q.fc1_w, net.fc1_w);
    assert_eq!(q.fc2_w, net.fc2_w);
    assert_eq!(q.conv2_w, only.conv2_w);
    let all_fp32 = Recipe::uniform(LayerRecipe {
        format: Format::Fp32,
        ..base
    });
    assert_eq!(
        quant_core::report::model_size_bytes(Some(&all_fp32)),
        quant_core::report::model_size_bytes(None)
    );
}

#[test]
fn the_allocation_search_finds_what_brute_force_finds() {
    // A small case: four widths per layer (256 assignments), 300 digits. Brute force measures
    // every assignment; the search measures only its two predicted fronts. At every budget on
    // the true front, the search's best recipe that fits is as accurate as brute force's, or one
    // digit of 300 short (measured: 12 of 14 budgets exact, 2 one digit short; with only the
    // first predicted front, one budget was 23 digits short).
    let net = common::bundled();
    let d = common::test_digits();
    let digits = d.select(&(0..300).collect::<Vec<_>>());
    let images = digits.images_f32();
    let widths = [2, 4, 8, 16].map(|b| Bits::new(b).unwrap());
    let n = widths.len();
    let base = LayerRecipe::per_tensor(Bits::new(8).unwrap(), Scheme::Symmetric);
    let fp32 = evaluate(&net, images.view(), &digits.labels).unwrap();
    let sens = sensitivity(&net, &digits, base, &widths).unwrap();
    assert_eq!(sens.len(), 4 * n);
    let front = predicted_front(
        base,
        &widths,
        fp32.loss,
        &losses_alone(&sens, &widths).unwrap(),
        quant_core::study::FRONTS,
    );
    let measure = |c: quant_core::study::Candidate| Measured {
        candidate: c,
        evaluation: evaluate(
            &net.fake_quantized(&c.recipe).unwrap(),
            images.view(),
            &digits.labels,
        )
        .unwrap(),
    };
    let searched: Vec<Measured> = front.iter().copied().map(measure).collect();
    let every: Vec<Measured> = (0..n.pow(4))
        .map(|code| {
            let bits = [
                code / (n * n * n),
                code / (n * n) % n,
                code / n % n,
                code % n,
            ]
            .map(|i| widths[i]);
            let recipe = assignment(base, bits);
            measure(quant_core::study::Candidate {
                bits,
                recipe,
                size_bytes: quant_core::report::model_size_bytes(Some(&recipe)),
                predicted_loss: 0.0,
            })
        })
        .collect();
    // Measured: 42 of 256.
    assert!(
        searched.len() * 5 <= every.len(),
        "{} of {} measured",
        searched.len(),
        every.len()
    );
    let true_front = front_by(&every, |m| {
        (m.candidate.size_bytes as f64, m.evaluation.accuracy)
    });
    let mut agreed = 0;
    for m in &true_front {
        let budget = m.candidate.size_bytes;
        let ours = best_under(&searched, budget).expect("the smallest fits");
        let best = best_under(&every, budget).unwrap();
        assert!(
            ours.evaluation.accuracy >= best.evaluation.accuracy - 0.34,
            "budget {budget}: {:?} at {} vs {:?} at {}",
            ours.candidate.bits,
            ours.evaluation.accuracy,
            best.candidate.bits,
            best.evaluation.accuracy
        );
        agreed += usize::from(ours.evaluation.accuracy == best.evaluation.accuracy);
    }
    assert!(
        agreed * 4 >= true_front.len() * 3,
        "{agreed} of {}",
        true_front.len()
    );
}
