//! The backend charts draw on: the canvas when the chart is on screen, nothing when it is not.
//!
//! A slider move changes every chart, but usually only one or two are in view. Charts off screen
//! still run their drawing code against [`PageBackend::Offscreen`], which makes no canvas call
//! (the canvas calls are most of a chart's cost) but reads the same signals, so the chart's effect
//! keeps tracking them; the canvas itself is painted when it scrolls into view.
//!
//! Text is drawn here rather than by plotters-canvas, which sets the font, alignment and colour
//! before every label, formatting the font size and the colour's alpha as floats each time: that
//! was ~2.5 ms of every move. [`TextPen`] sets them only when they change.

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};
use plotters_canvas::CanvasBackend;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

type CanvasError = <CanvasBackend as DrawingBackend>::ErrorType;

pub enum PageBackend {
    Canvas(CanvasBackend, TextPen),
    /// Draws nothing; reports the canvas's size so layout code computes the same coordinates.
    Offscreen((u32, u32)),
}

type Drawn = Result<(), DrawingErrorKind<CanvasError>>;

/// The text state last set on the canvas's context.
pub struct TextPen {
    context: CanvasRenderingContext2d,
    font: Option<(String, f64, String)>,
    baseline: &'static str,
    align: &'static str,
    /// The fill colour (rgb, alpha), forgotten whenever plotters-canvas draws (it sets its own).
    fill: Option<((u8, u8, u8), f64)>,
}

impl PageBackend {
    /// Draws on `canvas` (whose backing store is already sized).
    pub fn canvas(canvas: HtmlCanvasElement) -> Option<PageBackend> {
        let context = canvas.get_context("2d").ok()??.dyn_into().ok()?;
        let backend = CanvasBackend::with_canvas_object(canvas)?;
        let pen = TextPen {
            context,
            font: None,
            baseline: "",
            align: "",
            fill: None,
        };
        Some(PageBackend::Canvas(backend, pen))
    }

    /// The canvas backend, for everything but text; `None` off screen.
    fn shapes(&mut self) -> Option<&mut CanvasBackend> {
        match self {
            PageBackend::Canvas(c, pen) => {
                pen.fill = None;
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
        let (x, y, rotated) = match style.transform() {
            FontTransform::None => (f64::from(pos.0), f64::from(pos.1), false),
            turn => {
                let degrees = match turn {
                    FontTransform::Rotate90 => 90.0,
                    FontTransform::Rotate180 => 180.0,
                    _ => 270.0,
                };
                // Rotated about the text's anchor. Not save/restore as plotters-canvas does:
                // `restore` would also undo the font and colour just set, and charts never set
                // a transform of their own, so resetting to identity afterwards is the same.
                ctx.translate(f64::from(pos.0), f64::from(pos.1))
                    .map_err(failed)?;
                ctx.rotate(degrees / 180.0 * std::f64::consts::PI)
                    .map_err(failed)?;
                (0.0, 0.0, true)
            }
        };
        let baseline = match style.anchor().v_pos {
            VPos::Top => "top",
            VPos::Center => "middle",
            VPos::Bottom => "bottom",
        };
        if baseline != self.baseline {
            ctx.set_text_baseline(baseline);
            self.baseline = baseline;
        }
        let align = match style.anchor().h_pos {
            HPos::Left => "start",
            HPos::Right => "end",
            HPos::Center => "center",
        };
        if align != self.align {
            ctx.set_text_align(align);
            self.align = align;
        }
        if self.fill != Some((color.rgb, color.alpha)) {
            let (r, g, b) = color.rgb;
            ctx.set_fill_style_str(&format!("rgba({r},{g},{b},{})", color.alpha));
            self.fill = Some((color.rgb, color.alpha));
        }
        let same_font = self.font.as_ref().is_some_and(|(s, size, family)| {
            s == style.style().as_str()
                && *size == style.size()
                && family == style.family().as_str()
        });
        if !same_font {
            let font = (
                style.style().as_str().to_string(),
                style.size(),
                style.family().as_str().to_string(),
            );
            ctx.set_font(&format!("{} {}px {}", font.0, font.1, font.2));
            self.font = Some(font);
        }
        ctx.fill_text(text, x, y).map_err(failed)?;
        if rotated {
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
