//! Which layer breaks first: the test accuracy with one layer quantized alone (the others FP32)
//! against its bit width, one line per layer, FP32's accuracy as the ceiling.

use crate::theme::{BLUE, GREEN, ORANGE, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;

/// The widths on the x axis, evenly spaced (16 bits sits one step after 8).
pub const WIDTHS: [u8; 8] = [2, 3, 4, 5, 6, 7, 8, 16];

/// One layer's line: its name and the accuracy at each of [`WIDTHS`] (`None`: not measured yet).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerLine {
    pub name: String,
    pub accuracy: [Option<f64>; 8],
}

/// Colours per layer, in the network's order; markers differ too.
const COLORS: [RGBColor; 4] = [BLUE, VERMILLION, GREEN, ORANGE];

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[LayerLine],
    fp32: Option<f64>,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let lowest = lines
        .iter()
        .flat_map(|l| l.accuracy.iter().flatten())
        .fold(90.0f64, |a, &b| a.min(b));
    let y0 = (lowest / 10.0).floor() * 10.0;
    let mut chart = frame(area, theme, 44.0).build_cartesian_2d(-0.4f64..7.4f64, y0..100.5)?;
    themed(&mut chart.configure_mesh(), theme)
        .x_desc("bits of the one quantized layer")
        .y_desc("accuracy (%)")
        .x_labels(8)
        .x_label_formatter(&|x| {
            WIDTHS
                .get(x.round() as usize)
                .filter(|_| (x - x.round()).abs() < 1e-6)
                .map_or(String::new(), |w| w.to_string())
        })
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    if let Some(f) = fp32 {
        chart.draw_series(DashedLineSeries::new(
            [(-0.4, f), (7.4, f)],
            theme.px(5.0),
            theme.px(4.0),
            theme.stroke(theme.foreground(), 1.0),
        ))?;
        chart.draw_series([Text::new(
            format!("FP32 {f:.2}%"),
            (5.2, f),
            theme.font(11.0).color(&theme.foreground()),
        )])?;
    }
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = line
            .accuracy
            .iter()
            .enumerate()
            .filter_map(|(x, a)| Some((x as f64, (*a)?)))
            .collect();
        chart.draw_series(LineSeries::new(pts.clone(), theme.stroke(color, 2.0)))?;
        let r = theme.px(4.0) as i32;
        match i {
            0 => chart.draw_series(pts.iter().map(|&p| Circle::new(p, r, color.filled())))?,
            1 => chart.draw_series(
                pts.iter()
                    .map(|&p| TriangleMarker::new(p, r + 1, color.filled())),
            )?,
            2 => chart.draw_series(pts.iter().map(|&p| Cross::new(p, r, color.stroke_width(2))))?,
            _ => chart.draw_series(pts.iter().map(|&p| {
                EmptyElement::at(p) + Rectangle::new([(-r, -r), (r, r)], color.filled())
            }))?,
        };
    }
    area.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_layer_and_the_ceiling() {
        let lines: Vec<LayerLine> = ["conv1", "conv2", "fc1", "fc2"]
            .iter()
            .map(|n| LayerLine {
                name: n.to_string(),
                accuracy: [
                    Some(40.0),
                    Some(98.0),
                    None,
                    Some(99.0),
                    None,
                    None,
                    None,
                    None,
                ],
            })
            .collect();
        let svg = crate::svg(640, 360, |a| {
            draw(&a, &lines, Some(99.0), &Theme::default()).unwrap()
        });
        assert!(svg.contains("FP32 99.00%"));
        // The lowest point sets the axis: 40 % is shown, so 40 is a label.
        assert!(svg.lines().any(|l| l.trim() == "40"), "the 40 % label");
        assert!(svg.lines().any(|l| l.trim() == "16"), "the 16-bit label");
    }
}
