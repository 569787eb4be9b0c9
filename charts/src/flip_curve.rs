//! How many test digits change their answer against the bit width, for the reader's recipe at
//! each width: the flips that broke a right answer and all flips, with the reader's width ringed.

use crate::theme::{BLUE, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One width's counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlipCount {
    pub bits: u8,
    pub flips: usize,
    /// Of those, digits FP32 got right.
    pub broken: usize,
}

/// Log scale from 1 (no flips drawn at 0.5 on the bottom edge).
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    counts: &[FlipCount],
    current: Option<u8>,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let top = counts.iter().map(|c| c.flips).max().unwrap_or(10).max(10) as f64 * 2.0;
    let x = |bits: u8| if bits == 16 { 9.0 } else { f64::from(bits) };
    let y = |n: usize| (n as f64).max(0.5);
    let mut chart =
        frame(area, theme, 48.0).build_cartesian_2d(1.6f64..9.4f64, (0.5f64..top).log_scale())?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("bits (every layer)")
        .y_desc("test digits that flip (log)")
        .x_labels(9)
        .x_label_formatter(&|v| match v.round() as i64 {
            9 => "16".into(),
            b @ 2..=8 if (v - v.round()).abs() < 1e-6 => b.to_string(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| {
            if *v < 1.0 {
                "0".into()
            } else {
                format!("{v:.0}")
            }
        })
        .draw()?;
    let mut sorted = counts.to_vec();
    sorted.sort_by_key(|c| c.bits);
    let all: Vec<(f64, f64)> = sorted.iter().map(|c| (x(c.bits), y(c.flips))).collect();
    let broken: Vec<(f64, f64)> = sorted.iter().map(|c| (x(c.bits), y(c.broken))).collect();
    chart.draw_series(LineSeries::new(all.clone(), theme.stroke(BLUE, 2.0)))?;
    chart.draw_series(
        all.iter()
            .map(|&p| Circle::new(p, theme.px(4.0), BLUE.filled())),
    )?;
    chart.draw_series(DashedLineSeries::new(
        broken.clone(),
        theme.px(6.0),
        theme.px(4.0),
        theme.stroke(VERMILLION, 2.0),
    ))?;
    chart.draw_series(
        broken
            .iter()
            .map(|&p| TriangleMarker::new(p, theme.px(5.0), VERMILLION.filled())),
    )?;
    if let Some(c) = current.and_then(|b| sorted.iter().find(|c| c.bits == b)) {
        chart.draw_series([Circle::new(
            (x(c.bits), y(c.flips)),
            theme.px(9.0),
            theme.stroke(theme.foreground(), 2.5),
        )])?;
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_series_and_rings_the_reader() {
        let counts = [
            FlipCount {
                bits: 2,
                flips: 1300,
                broken: 1290,
            },
            FlipCount {
                bits: 4,
                flips: 12,
                broken: 7,
            },
            FlipCount {
                bits: 8,
                flips: 0,
                broken: 0,
            },
            FlipCount {
                bits: 16,
                flips: 0,
                broken: 0,
            },
        ];
        let svg = crate::svg(640, 360, |a| {
            draw(&a, &counts, Some(4), &Theme::default()).unwrap()
        });
        // Both series' markers: four circles and four triangles (one per width), and the ring.
        assert_eq!(svg.matches("<polygon").count(), 4, "the triangles");
        assert!(
            svg.contains("\n16\n") || svg.contains(">16<"),
            "the 16-bit label"
        );
        assert!(svg.contains("r=\"9\""));
    }
}
