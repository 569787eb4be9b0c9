//! The playground's charts. Each is one plain function, generic over plotters' `DrawingBackend`,
//! so the same code draws into a canvas in the browser and into an SVG string in a native test.
//! Charts hold no state and do no quantization math: they draw what `quant_core::view` computed.

pub mod accuracy_curve;
pub mod activations;
pub mod allocation;
pub mod channel_ranges;
pub mod clipping;
pub mod error_curve;
pub mod flip_curve;
pub mod format_gallery;
pub mod format_staircase;
pub mod histogram;
pub mod lsq_scales;
pub mod path;
pub mod qat_curve;
pub mod sensitivity;
pub mod staircase;
pub mod svg;
mod theme;

pub use theme::Theme;

use plotters::prelude::*;

/// What a chart function returns: plotters' error for the backend it drew on.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The frame every chart shares: the margin and the room for axis labels (`y_labels`, CSS px).
pub(crate) fn frame<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    theme: &Theme,
    y_labels: f64,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(theme.px(10.0))
        .x_label_area_size(theme.px(34.0))
        .y_label_area_size(theme.px(y_labels));
    builder
}

/// The mesh in the theme's colours and fonts; each chart adds its axis descriptions and labels.
pub(crate) fn themed<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>,
    theme: &Theme,
) -> &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB> {
    mesh.bold_line_style(theme.muted())
        .light_line_style(theme.background())
        .axis_style(theme.foreground())
        .label_style(theme.font(11.0))
        .axis_desc_style(theme.font(12.0))
}

#[cfg(test)]
pub(crate) fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>),
) -> String {
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(area);
    }
    out
}
