//! The playground's charts. Each is one plain function, generic over plotters' `DrawingBackend`,
//! so the same code draws into a canvas in the browser and into an SVG string in a native test.
//! Charts hold no state and do no quantization math: they draw what `quant_core::view` computed.

pub mod accuracy_curve;
pub mod error_curve;
pub mod histogram;
pub mod staircase;
mod theme;

pub use theme::Theme;

use plotters::prelude::*;

/// What a chart function returns: plotters' error for the backend it drew on.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

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
