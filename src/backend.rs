//! The backend charts draw on: the canvas when the chart is on screen, nothing when it is not.
//!
//! A slider move changes every chart, but usually only one or two are in view. Charts off screen
//! still run their drawing code against [`PageBackend::Offscreen`], which makes no canvas call
//! (the canvas calls are most of a chart's cost) but reads the same signals, so the chart's effect
//! keeps tracking them; the canvas itself is painted when it scrolls into view.
//!
//! Text is drawn here rather than by plotters-canvas, which sets the font, alignment and colour
//! before every label, formatting the font size and the colour's alpha as floats each time: that
//! was ~2.5 ms of every move. [`TextPen`] sets them only when they change, and never changes the
//! font's size: setting `font` costs ~0.2 ms in Chromium (it resolves the style of the canvas
//! element, after a move's DOM changes a style recalculation), so every size is drawn from one
//! font at [`BASE_PX`] scaled by the context's transform. The context, and so the pen's record of
//! it, lives as long as the canvas keeps its size.

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};
use plotters_canvas::CanvasBackend;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

type CanvasError = <CanvasBackend as DrawingBackend>::ErrorType;

pub enum PageBackend {
    Canvas(CanvasBackend, TextPen),
    /// Draws nothing; reports the canvas's size so layout code computes the same coordinates.
    Offscreen((u32, u32)),
}

type Drawn = Result<(), DrawingErrorKind<CanvasError>>;

/// The size the context's font is set at; text of other sizes is scaled from it.
const BASE_PX: f64 = 12.0;

/// The text state last set on a canvas's context, kept by the chart between paints.
#[derive(Default)]
pub struct PenState {
    /// Style and family; the size is always [`BASE_PX`].
    font: Option<(String, String)>,
    baseline: &'static str,
    align: &'static str,
    /// The fill colour (rgb, alpha), forgotten whenever plotters-canvas draws (it sets its own).
    fill: Option<((u8, u8, u8), f64)>,
}

/// Draws text on a canvas's context, setting only the state that changed.
pub struct TextPen {
    context: CanvasRenderingContext2d,
    state: Rc<RefCell<PenState>>,
}

impl PageBackend {
    /// Draws on `canvas` (whose backing store is already sized), whose context's text state is
    /// `state` (the default for a fresh context).
    pub fn canvas(canvas: HtmlCanvasElement, state: Rc<RefCell<PenState>>) -> Option<PageBackend> {
        let context = canvas.get_context("2d").ok()??.dyn_into().ok()?;
        let backend = CanvasBackend::with_canvas_object(canvas)?;
        Some(PageBackend::Canvas(backend, TextPen { context, state }))
    }

    /// The canvas backend, for everything but text; `None` off screen.
    fn shapes(&mut self) -> Option<&mut CanvasBackend> {
        match self {
            PageBackend::Canvas(c, pen) => {
                pen.state.borrow_mut().fill = None;
                Some(c)
            }
            PageBackend::Offscreen(_) => None,
        }
    }
}

impl TextPen {
    /// plotters-canvas's `draw_text`, setting only the state that changed.
    fn draw<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Drawn {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let ctx = &self.context;
        // plotters-canvas's error type cannot be built outside it; these calls do not fail on
        // a live 2D context anyway.
        let failed = |e: wasm_bindgen::JsValue| {
            DrawingErrorKind::FontError(format!("canvas text: {e:?}").into())
        };
        let degrees = match style.transform() {
            FontTransform::None => 0.0,
            FontTransform::Rotate90 => 90.0,
            FontTransform::Rotate180 => 180.0,
            FontTransform::Rotate270 => 270.0,
        };
        let zoom = style.size() / BASE_PX;
        // Rotated or resized about the text's anchor. Not save/restore as plotters-canvas does:
        // `restore` would also undo the font and colour just set, and charts never set a
        // transform of their own, so resetting to identity afterwards is the same.
        let transformed = degrees != 0.0 || zoom != 1.0;
        let (x, y) = if transformed {
            ctx.translate(f64::from(pos.0), f64::from(pos.1))
                .map_err(failed)?;
            if degrees != 0.0 {
                ctx.rotate(degrees / 180.0 * std::f64::consts::PI)
                    .map_err(failed)?;
            }
            if zoom != 1.0 {
                ctx.scale(zoom, zoom).map_err(failed)?;
            }
            (0.0, 0.0)
        } else {
            (f64::from(pos.0), f64::from(pos.1))
        };
        let mut state = self.state.borrow_mut();
        let baseline = match style.anchor().v_pos {
            VPos::Top => "top",
            VPos::Center => "middle",
            VPos::Bottom => "bottom",
        };
        if baseline != state.baseline {
            ctx.set_text_baseline(baseline);
            state.baseline = baseline;
        }
        let align = match style.anchor().h_pos {
            HPos::Left => "start",
            HPos::Right => "end",
            HPos::Center => "center",
        };
        if align != state.align {
            ctx.set_text_align(align);
            state.align = align;
        }
        if state.fill != Some((color.rgb, color.alpha)) {
            let (r, g, b) = color.rgb;
            ctx.set_fill_style_str(&format!("rgba({r},{g},{b},{})", color.alpha));
            state.fill = Some((color.rgb, color.alpha));
        }
        let same_font = state.font.as_ref().is_some_and(|(s, family)| {
            s == style.style().as_str() && family == style.family().as_str()
        });
        if !same_font {
            let font = (
                style.style().as_str().to_string(),
                style.family().as_str().to_string(),
            );
            ctx.set_font(&format!("{} {BASE_PX}px {}", font.0, font.1));
            state.font = Some(font);
        }
        ctx.fill_text(text, x, y).map_err(failed)?;
        if transformed {
            ctx.reset_transform().map_err(failed)?;
        }
        Ok(())
    }
}

impl DrawingBackend for PageBackend {
    type ErrorType = CanvasError;

    fn get_size(&self) -> (u32, u32) {
        match self {
            PageBackend::Canvas(c, _) => c.get_size(),
            PageBackend::Offscreen(size) => *size,
        }
    }

    fn ensure_prepared(&mut self) -> Drawn {
        match self.shapes() {
            Some(c) => c.ensure_prepared(),
            None => Ok(()),
        }
    }

    fn present(&mut self) -> Drawn {
        match self.shapes() {
            Some(c) => c.present(),
            None => Ok(()),
        }
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn {
        match self.shapes() {
            Some(c) => c.draw_pixel(point, color),
            None => Ok(()),
        }
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, s: &S) -> Drawn {
        match self.shapes() {
            Some(c) => c.draw_line(from, to, s),
            None => Ok(()),
        }
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Drawn {
        match self.shapes() {
            Some(c) => c.draw_rect(upper_left, bottom_right, s, fill),
            None => Ok(()),
        }
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Drawn {
        match self.shapes() {
            Some(c) => c.draw_path(path, s),
            None => Ok(()),
        }
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        s: &S,
        fill: bool,
    ) -> Drawn {
        match self.shapes() {
            Some(c) => c.draw_circle(center, radius, s, fill),
            None => Ok(()),
        }
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> Drawn {
        match self.shapes() {
            Some(c) => c.fill_polygon(vert, s),
            None => Ok(()),
        }
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, s: &S, pos: BackendCoord) -> Drawn {
        match self {
            PageBackend::Canvas(_, pen) => pen.draw(text, s, pos),
            PageBackend::Offscreen(_) => Ok(()),
        }
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        s: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<CanvasError>> {
        match self {
            PageBackend::Canvas(c, _) => c.estimate_text_size(text, s),
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
        match self.shapes() {
            Some(c) => c.blit_bitmap(pos, size, src),
            None => Ok(()),
        }
    }
}
