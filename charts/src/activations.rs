//! One PTQ site's activations over the calibration digits: a histogram on a log scale (ReLU's
//! zeros would otherwise flatten everything else), the range the observer recorded, and the
//! range it chose, outside which values are clipped to qmin or qmax.

use crate::theme::{BLUE, GREEN, VERMILLION};
use crate::{frame, themed, DrawResult, Theme};
use plotters::coord::Shift;
use plotters::prelude::*;
use quant_core::ptq::SiteRow;

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    site: &SiteRow,
    theme: &Theme,
) -> DrawResult<DB> {
    area.fill(&theme.background())?;
    let (mut lo, mut hi) = (f64::from(site.bins_range.0), f64::from(site.bins_range.1));
    if hi <= lo {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.03;
    let y = |c: f32| (1.0 + f64::from(c)).log10();
    let y_max = site.bins.iter().map(|&c| y(c)).fold(1.0, f64::max) * 1.08;
    let mut chart =
        frame(area, theme, 44.0).build_cartesian_2d((lo - pad)..(hi + pad), 0f64..y_max)?;
    themed(&mut chart.configure_mesh(), theme)
        .disable_x_mesh()
        .y_max_light_lines(0)
        .x_desc("activation value")
        .y_desc("values per bin (log)")
        .x_labels(5)
        .y_labels(4)
        .x_label_formatter(&|v| Theme::tick(*v))
        .y_label_formatter(&|v| match *v {
            v if v < 0.5 => "1".into(),
            v => format!("1e{v:.0}"),
        })
        .draw()?;
    let width = (hi - lo) / site.bins.len().max(1) as f64;
    chart.draw_series(
        site.bins
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0.0)
            .map(|(i, &c)| {
                let a = lo + i as f64 * width;
                Rectangle::new(
                    [(a, 0.0), (a + width, y(c))],
                    theme.translucent(BLUE, 0.75, 1.0).filled(),
                )
            }),
    )?;
    let line = |x: f32, color, dashed: bool| {
        let x = f64::from(x);
        let style = theme.translucent(color, 0.95, if dashed { 1.5 } else { 2.5 });
        PathElement::new(vec![(x, 0.0), (x, y_max)], style)
    };
    let (o, c) = (site.observed, site.chosen);
    chart.draw_series([line(o.0, GREEN, true), line(o.1, GREEN, true)])?;
    chart.draw_series([line(c.0, VERMILLION, false), line(c.1, VERMILLION, false)])?;
    Ok(())
}
