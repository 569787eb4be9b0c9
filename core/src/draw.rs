//! A reader's drawing made into a digit the network can read, with MNIST's own preprocessing
//! (LeCun et al.): the ink's bounding box scaled to fit a 20×20 box keeping its aspect ratio,
//! with grey levels from the scaling (each output pixel is the mean ink over the area it
//! covers), then placed in the 28×28 field so that its centre of mass is at the field's centre.
//!
//! Where "the centre" is was measured, not assumed: over our 2,000 test digits the centre of
//! mass, in pixel indices, averages (14.00, 14.00) with a spread of 0.29, and every digit's
//! bounding box is exactly 20 pixels on its longer side. So the mass goes to index 14 by a
//! whole-pixel shift (as the digits' own placement is whole pixels).

use crate::data::{PIXELS, SIDE};
use crate::error::{Error, Result};

/// The box the ink is scaled to fit, in pixels.
pub const BOX: usize = 20;
/// Where the centre of mass goes, in pixel indices of the 28×28 field.
pub const CENTRE: f32 = 14.0;

/// The 28×28 digit (row-major, values in `[0, 1]`) that `ink` — a `width`×`height` raster of
/// ink coverage in `[0, 1]`, row-major — becomes. `None` when there is no ink.
pub fn preprocess(ink: &[f32], width: usize, height: usize) -> Result<Option<[f32; PIXELS]>> {
    if width == 0 || height == 0 || ink.len() != width * height {
        return Err(Error::Data(format!(
            "a {width}×{height} drawing needs {} values, not {}",
            width * height,
            ink.len()
        )));
    }
    if let Some(i) = ink.iter().position(|v| !v.is_finite()) {
        return Err(Error::Data(format!("ink value {i} is {}", ink[i])));
    }
    let Some((x0, y0, x1, y1)) = ink_box(ink, width) else {
        return Ok(None);
    };
    let (bw, bh) = (x1 - x0, y1 - y0);
    // The longer side becomes 20 pixels, the other keeps the aspect (at least one pixel).
    let s = BOX as f64 / bw.max(bh) as f64;
    let tw = ((bw as f64 * s).round() as usize).clamp(1, BOX);
    let th = ((bh as f64 * s).round() as usize).clamp(1, BOX);
    let small = resample(ink, width, (x0, y0, bw, bh), (tw, th));
    // The centre of mass of the scaled ink, in its own pixel indices.
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in small.iter().enumerate() {
        let v = f64::from(v);
        mass += v;
        mx += v * (i % tw) as f64;
        my += v * (i / tw) as f64;
    }
    let (cx, cy) = (mx / mass, my / mass);
    // Whole-pixel offsets that put it at the centre, kept inside the field.
    let place = |c: f64, len: usize| {
        let at = (f64::from(CENTRE) - c).round() as isize;
        at.clamp(0, (SIDE - len) as isize) as usize
    };
    let (ox, oy) = (place(cx, tw), place(cy, th));
    let mut out = [0.0f32; PIXELS];
    for y in 0..th {
        for x in 0..tw {
            out[(oy + y) * SIDE + ox + x] = small[y * tw + x].clamp(0.0, 1.0);
        }
    }
    Ok(Some(out))
}

/// The half-open bounding box `(x0, y0, x1, y1)` of the ink, or `None` when there is none.
fn ink_box(ink: &[f32], width: usize) -> Option<(usize, usize, usize, usize)> {
    let mut b: Option<(usize, usize, usize, usize)> = None;
    for (i, _) in ink.iter().enumerate().filter(|(_, &v)| v > 0.0) {
        let (x, y) = (i % width, i / width);
        b = Some(match b {
            None => (x, y, x + 1, y + 1),
            Some((a, c, d, e)) => (a.min(x), c.min(y), d.max(x + 1), e.max(y + 1)),
        });
    }
    b
}

/// The region `(x0, y0, w, h)` of `ink` scaled to `tw`×`th` by area: each output pixel is the
/// mean of the input over the rectangle it covers (fractions of pixels weighted by overlap), in
/// two passes, rows then columns.
fn resample(
    ink: &[f32],
    width: usize,
    (x0, y0, w, h): (usize, usize, usize, usize),
    (tw, th): (usize, usize),
) -> Vec<f32> {
    let across = weights(w, tw);
    let down = weights(h, th);
    let mut rows = vec![0.0f64; h * tw];
    for y in 0..h {
        let src = &ink[(y0 + y) * width + x0..][..w];
        for (t, taps) in across.iter().enumerate() {
            rows[y * tw + t] = taps.iter().map(|&(i, f)| f * f64::from(src[i])).sum();
        }
    }
    let mut out = vec![0.0f32; tw * th];
    for (t, taps) in down.iter().enumerate() {
        for x in 0..tw {
            out[t * tw + x] = taps.iter().map(|&(i, f)| f * rows[i * tw + x]).sum::<f64>() as f32;
        }
    }
    out
}

/// For each of `n` output pixels over `len` input pixels: the inputs it covers and the share of
/// each (the shares sum to 1).
fn weights(len: usize, n: usize) -> Vec<Vec<(usize, f64)>> {
    let step = len as f64 / n as f64;
    (0..n)
        .map(|t| {
            let (a, b) = (t as f64 * step, (t + 1) as f64 * step);
            let first = a.floor() as usize;
            let last = (b.ceil() as usize).min(len);
            (first..last)
                .map(|i| {
                    let overlap = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                    (i, overlap / step)
                })
                .filter(|&(_, f)| f > 0.0)
                .collect()
        })
        .collect()
}

/// Adds a pen stroke from `a` to `b` (pixel coordinates) of radius `r` to `ink` (`width` wide):
/// a pixel's coverage is `clamp(r + 0.5 − d, 0, 1)`, `d` its centre's distance from the segment
/// (a soft edge one pixel wide, as a canvas anti-aliases), and ink keeps the larger of old and
/// new.
pub fn stroke(ink: &mut [f32], width: usize, a: (f32, f32), b: (f32, f32), r: f32) {
    let height = ink.len() / width.max(1);
    if width == 0 || !(a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite()) {
        return;
    }
    let span = |p: f32, q: f32, len: usize| {
        let lo = (p.min(q) - r - 1.0).floor().max(0.0) as usize;
        let hi = ((p.max(q) + r + 1.0).ceil().max(0.0) as usize).min(len);
        lo..hi
    };
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    for y in span(a.1, b.1, height) {
        for x in span(a.0, b.0, width) {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            // The nearest point of the segment: a + t·(b − a), t clamped to [0, 1].
            let t = if len2 > 0.0 {
                (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let d = ((px - a.0 - t * dx).powi(2) + (py - a.1 - t * dy).powi(2)).sqrt();
            let c = (r + 0.5 - d).clamp(0.0, 1.0);
            let v = &mut ink[y * width + x];
            *v = v.max(c);
        }
    }
}

/// A 28×28 digit drawn at `zoom` pixels per pixel (nearest neighbour), as the pad shows a test
/// digit to draw over.
pub fn upscale(digit: &[f32], zoom: usize) -> Vec<f32> {
    let side = SIDE * zoom;
    (0..side * side)
        .map(|i| digit[(i / side / zoom) * SIDE + (i % side) / zoom])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(width: usize, height: usize, at: (usize, usize), size: (usize, usize)) -> Vec<f32> {
        let mut ink = vec![0.0; width * height];
        for y in at.1..at.1 + size.1 {
            for x in at.0..at.0 + size.0 {
                ink[y * width + x] = 1.0;
            }
        }
        ink
    }

    #[test]
    fn a_box_becomes_twenty_pixels_at_the_centre() {
        // A 100×50 rectangle in a corner of a 280×280 pad: 20×10 after scaling, centred.
        let ink = blob(280, 280, (3, 200), (100, 50));
        let d = preprocess(&ink, 280, 280).unwrap().unwrap();
        let lit: Vec<usize> = (0..PIXELS).filter(|&i| d[i] > 0.0).collect();
        let xs: Vec<usize> = lit.iter().map(|i| i % SIDE).collect();
        let ys: Vec<usize> = lit.iter().map(|i| i / SIDE).collect();
        assert_eq!(lit.len(), 200);
        // Its centre of mass (9.5, 4.5) goes to 14: a shift of 4.5 rounds to 5.
        assert_eq!((xs.iter().min(), xs.iter().max()), (Some(&5), Some(&24)));
        assert_eq!((ys.iter().min(), ys.iter().max()), (Some(&10), Some(&19)));
        assert!(lit.iter().all(|&i| (d[i] - 1.0).abs() < 1e-6));
    }

    #[test]
    fn scaling_averages_the_area() {
        // A 30-pixel-wide bar of width 3 → 20 wide, 2 tall: every pixel the mean of its area.
        let ink = blob(40, 40, (5, 5), (30, 3));
        let d = preprocess(&ink, 40, 40).unwrap().unwrap();
        let total: f32 = d.iter().sum();
        assert!((total - 40.0).abs() < 1e-4, "{total}");
    }

    #[test]
    fn a_stroke_inks_a_rounded_band() {
        let mut ink = vec![0.0; 100 * 100];
        stroke(&mut ink, 100, (20.0, 50.0), (80.0, 50.0), 5.0);
        // The line is y = 50; pixel row 54's centres lie 4.5 away (inside), row 55's 5.5 (out),
        // and a centre 5 away would be half inked.
        assert_eq!(ink[50 * 100 + 50], 1.0);
        assert_eq!(ink[54 * 100 + 50], 1.0);
        assert_eq!(ink[55 * 100 + 50], 0.0);
        let mut half = vec![0.0; 100 * 100];
        stroke(&mut half, 100, (20.0, 50.5), (80.0, 50.5), 5.0);
        assert!((half[55 * 100 + 50] - 0.5).abs() < 1e-6);
        // Rounded ends: past the end along the line by 3 px still inked, diagonally 6 px not.
        assert_eq!(ink[50 * 100 + 83], 1.0);
        assert_eq!(ink[(50 + 5) * 100 + 85], 0.0);
        // A dot (a = b) and a stroke off the pad do not panic.
        stroke(&mut ink, 100, (-50.0, -50.0), (-40.0, 500.0), 5.0);
        stroke(&mut ink, 100, (10.0, 10.0), (10.0, 10.0), 3.0);
        assert_eq!(ink[10 * 100 + 10], 1.0);
        stroke(&mut ink, 100, (f32::NAN, 1.0), (2.0, 2.0), 3.0);
    }

    #[test]
    fn empty_and_bad_drawings() {
        assert_eq!(preprocess(&[0.0; 100], 10, 10).unwrap(), None);
        assert!(preprocess(&[0.0; 99], 10, 10).is_err());
        assert!(preprocess(&[], 0, 0).is_err());
        let mut ink = vec![0.0; 100];
        ink[5] = f32::NAN;
        assert!(preprocess(&ink, 10, 10).is_err());
        // One dot: one pixel scaled up to fill the box.
        let dot = blob(10, 10, (2, 2), (1, 1));
        let d = preprocess(&dot, 10, 10).unwrap().unwrap();
        assert_eq!(d.iter().filter(|&&v| v > 0.0).count(), 400);
    }
}
