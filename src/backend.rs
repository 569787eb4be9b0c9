//! The backend charts draw on: the canvas when the chart is on screen, nothing when it is not.
//!
//! A slider move changes every chart, but usually only one or two are in view. Charts off screen
//! still run their drawing code against [`PageBackend::Offscreen`], which makes no canvas call
//! (the canvas calls are most of a chart's cost) but reads the same signals, so the chart's effect
//! keeps tracking them; the canvas itself is drawn a moment later or when it scrolls into view.

use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};
use plotters_canvas::CanvasBackend;

type CanvasError = <CanvasBackend as DrawingBackend>::ErrorType;

pub enum PageBackend {
    Canvas(CanvasBackend),
    /// Draws nothing; reports the canvas's size so layout code computes the same coordinates.
    Offscreen((u32, u32)),
}

type Drawn = Result<(), DrawingErrorKind<CanvasError>>;

impl DrawingBackend for PageBackend {
    type ErrorType = CanvasError;

    fn get_size(&self) -> (u32, u32) {
        match self {
            PageBackend::Canvas(c) => c.get_size(),
            PageBackend::Offscreen(size) => *size,
        }
    }

    fn ensure_prepared(&mut self) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.ensure_prepared(),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn present(&mut self) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.present(),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.draw_pixel(point, color),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, s: &S) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.draw_line(from, to, s),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.draw_rect(upper_left, bottom_right, s, fill),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.draw_path(path, s),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        s: &S,
        fill: bool,
    ) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.draw_circle(center, radius, s, fill),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.fill_polygon(vert, s),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, s: &S, pos: BackendCoord) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.draw_text(text, s, pos),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        s: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<CanvasError>> {
        match self {
            PageBackend::Canvas(c) => c.estimate_text_size(text, s),
            // The trait's default, which the canvas backend uses too: the same sizes either way.
            PageBackend::Offscreen(_) => {
                let ((x0, y0), (x1, y1)) = s
                    .layout_box(text)
                    .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
                Ok(((x1 - x0) as u32, (y1 - y0) as u32))
            }
        }
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Drawn {
        match self {
            PageBackend::Canvas(c) => c.blit_bitmap(pos, size, src),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }
}
