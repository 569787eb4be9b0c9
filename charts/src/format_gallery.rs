//! The format gallery's chart: each format's accuracy on the test digits against its bits per
//! weight (scales counted), the Pareto front joined by a line (no format to its upper left), and
//! the reader's format ringed. Formats still being evaluated are left out until they are done.

use crate::theme::{BLUE, GREEN, ORANGE};
use crate::{frame, themed, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One format on the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryPoint {
    pub label: String,
    pub bits_per_weight: f64,
    /// Accuracy in % on the test digits; `None` until evaluated.
    pub accuracy: Option<f64>,
    pub on_front: bool,
    pub selected: bool,
}

/// Accuracy at or above which a format counts as working; the axis zooms in on those, and a
/// collapsed format (2-bit integers at ~33 %) is drawn at the bottom edge with its value.
const WORKING: f64 = 90.0;
/// Bits per weight the x axis reaches at most: FP16's 16.
const MAX_BITS: f64 = 16.0;

/// Where each evaluated point landed: `(index into points, x, y)` in the backend's pixels.
pub type Positions = Vec<(usize, i32, i32)>;

/// Draws the chart and returns where each evaluated point landed, so a page can tell which
/// point a click is on.
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[GalleryPoint],
    theme: &Theme,
) -> Result<Positions, DrawingAreaErrorKind<DB::ErrorType>> {
    area.fill(&theme.background())?;
    let done: Vec<&GalleryPoint> = points.iter().filter(|p| p.accuracy.is_some()).collect();
    let acc = |p: &GalleryPoint| p.accuracy.unwrap_or(0.0);
    // Zoomed on the working formats: their differences are tenths of a point.
    let lowest = done
        .iter()
        .map(|p| acc(p))
        .filter(|&a| a >= WORKING)
        .fold(99.0f64, f64::min);
    let y0 = ((lowest - 0.3) * 2.0).floor() / 2.0;
    let y1 = done.iter().map(|p| acc(p)).fold(99.0f64, f64::max) + 0.25;
    // Up to 16 bits (FP16): a format that keeps layers in FP32 (torchao's INT4 at g128, ~32
    // bits a weight) sits on the right edge with its value, rather than squeezing the rest.
    let x1 = points
        .iter()
        .map(|p| p.bits_per_weight)
        .filter(|&b| b <= MAX_BITS)
        .fold(8.0f64, f64::max)
        .ceil()
        + 1.0;
    let mut chart = frame(area, theme, 44.0).build_cartesian_2d(1.0..x1, y0..y1)?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("bits per weight (scales counted)")
        .y_desc("accuracy on 2,000 test digits (%)")
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    // Where a point is drawn: a collapsed one sits on the bottom edge.
    let at = |p: &GalleryPoint| (p.bits_per_weight.min(x1 - 0.2), acc(p).max(y0));
    let positions = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.accuracy.is_some())
        .map(|(i, p)| {
            let (x, y) = chart.backend_coord(&at(p));
            (i, x, y)
        })
        .collect();

    let mut front: Vec<(f64, f64)> = done.iter().filter(|p| p.on_front).map(|p| at(p)).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart.draw_series(LineSeries::new(front, theme.stroke(GREEN, 1.5)))?;
    for p in &done {
        let colour = if p.on_front { GREEN } else { BLUE };
        let r = theme.px(4.0) as i32;
        if acc(p) < y0 {
            chart.draw_series([TriangleMarker::new(at(p), r + 1, colour.filled())])?;
        } else {
            chart.draw_series([Circle::new(at(p), r, colour.filled())])?;
        }
        if p.selected {
            chart.draw_series([Circle::new(
                at(p),
                theme.px(8.0) as i32,
                theme.stroke(ORANGE, 2.0),
            )])?;
        }
    }
    // Labels where there is room, the reader's and the front's first: a label that would
    // overlap one already placed is left out (the table below names every point).
    let style = theme.font(10.0).pos(Pos::new(HPos::Left, VPos::Center));
    let mut order: Vec<&&GalleryPoint> = done.iter().collect();
    // Beyond the axis (a point on the right edge) needs its label to be read at all.
    order.sort_by_key(|p| (!p.selected, p.bits_per_weight <= x1 - 0.2, !p.on_front));
    let mut placed: Vec<(i32, i32, i32, i32)> = Vec::new();
    let (char_w, line_h) = (theme.px(6.0) as i32, theme.px(12.0) as i32);
    for p in order {
        let text = if acc(p) < y0 {
            format!("{} ↓ {:.1}%", p.label, acc(p))
        } else if p.bits_per_weight > x1 - 0.2 {
            format!("{} → {:.1} bits", p.label, p.bits_per_weight)
        } else {
            p.label.clone()
        };
        let (px, y) = chart.backend_coord(&at(p));
        let width = char_w * text.chars().count() as i32;
        // Right of the point, or left of it where the chart's edge would cut it off.
        let right_edge = area.dim_in_pixel().0 as i32;
        let x = if px + theme.px(7.0) as i32 + width > right_edge {
            px - theme.px(7.0) as i32 - width
        } else {
            px + theme.px(7.0) as i32
        };
        let bx = (x, y - line_h / 2, x + width, y + line_h / 2);
        let overlaps = placed
            .iter()
            .any(|b| bx.0 < b.2 && b.0 < bx.2 && bx.1 < b.3 && b.1 < bx.3);
        if overlaps {
            continue;
        }
        placed.push(bx);
        area.draw(&Text::new(text, (x, y), style.clone()))?;
    }
    area.present()?;
    Ok(positions)
}

/// The point a click at `(x, y)` (backend pixels) picks: the nearest within `reach` pixels.
pub fn picked(positions: &[(usize, i32, i32)], x: i32, y: i32, reach: i32) -> Option<usize> {
    positions
        .iter()
        .map(|&(i, px, py)| (i, (px - x).pow(2) + (py - y).pow(2)))
        .filter(|&(_, d2)| d2 <= reach * reach)
        .min_by_key(|&(_, d2)| d2)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, bits: f64, accuracy: Option<f64>, on_front: bool) -> GalleryPoint {
        GalleryPoint {
            label: label.into(),
            bits_per_weight: bits,
            accuracy,
            on_front,
            selected: label == "NF4",
        }
    }

    #[test]
    fn labels_the_front_and_the_readers_format_and_skips_what_is_not_done() {
        let points = [
            point("INT8", 8.0, Some(98.95), true),
            point("NF4", 4.5, Some(98.9), false),
            point("Q4_0", 4.5, Some(98.95), true),
            point("INT2", 2.0, Some(32.6), true),
            point("MXFP4", 4.25, None, false),
        ];
        let mut positions = Vec::new();
        // A format that keeps layers in FP32 sits on the right edge, its value said.
        let mut points = points.to_vec();
        points.push(point("INT4 g128", 31.9, Some(99.0), false));
        let svg = crate::svg(700, 420, |a| {
            positions = draw(&a, &points, &Theme::default()).unwrap()
        });
        // Every evaluated point has a position, and a click on one picks it.
        assert_eq!(positions.len(), 5);
        assert!(svg.contains("INT4 g128 → 31.9 bits"), "{svg}");
        let (i, x, y) = positions[1];
        assert_eq!(i, 1);
        assert_eq!(picked(&positions, x + 2, y - 1, 8), Some(1));
        assert_eq!(picked(&positions, x + 200, y + 200, 8), None);
        for label in ["INT8", "NF4", "Q4_0", "INT2"] {
            assert!(svg.contains(label), "{label} labelled");
        }
        assert!(!svg.contains("MXFP4"), "not evaluated yet, not drawn");
        assert!(svg.contains("bits per weight"));
        // The axis zooms on the working formats; the collapsed 2-bit network sits on the bottom
        // edge with its value.
        assert!(svg.contains("INT2 ↓ 32.6%"), "{svg}");
        assert!(svg.lines().any(|l| l.trim() == "99.0"), "{svg}");
    }
}
