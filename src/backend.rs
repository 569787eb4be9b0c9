//! The backend charts draw on: the canvas when the chart is on screen, nothing when it is not,
//! and an SVG document for a chart's "Download SVG".
//!
//! A slider move changes every chart, but usually only one or two are in view. Charts off screen
//! still run their drawing code against [`PageBackend::Offscreen`], which makes no canvas call
//! (the canvas calls are most of a chart's cost) but reads the same signals, so the chart's effect
//! keeps tracking them; the canvas itself is painted when it scrolls into view.
//!
//! On screen, [`Pen`] draws text, lines and filled rectangles itself, and leaves the rarer shapes
//! to plotters-canvas, which sets the colour, line width (and for text the font and alignment)
//! before every element, formatting the colour's alpha as a float each time. The pen sets state
//! only when it changes, and runs of lines or rectangles in one colour become one path, stroked
//! or filled once: the histogram's 8-bit grid was 256 strokes, each with its own style strings.
//! It never changes the font's size: setting `font` costs ~0.2 ms in Chromium (it resolves the
//! style of the canvas element, after a move's DOM changes a style recalculation), so every size
//! is drawn from one font at [`BASE_PX`] scaled by the context's transform. The context, and so
//! the pen's record of it, lives as long as the canvas keeps its size.

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};
use plotters_canvas::CanvasBackend;
use quant_charts::svg::{estimate_text_size, SvgDoc};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

type CanvasError = <CanvasBackend as DrawingBackend>::ErrorType;

pub enum PageBackend {
    Canvas(CanvasBackend, Pen),
    /// Draws nothing; reports the canvas's size so layout code computes the same coordinates.
    Offscreen((u32, u32)),
    /// Writes the chart as an SVG document ("Download SVG").
    Svg(SvgDoc),
}

type Drawn = Result<(), DrawingErrorKind<CanvasError>>;

/// The size the context's font is set at; text of other sizes is scaled from it.
const BASE_PX: f64 = 12.0;

/// A colour as the pen compares it: rgb and alpha.
type Rgba = ((u8, u8, u8), f64);

/// The state last set on a canvas's context, kept by the chart between paints.
#[derive(Default)]
pub struct PenState {
    /// Style and family; the size is always [`BASE_PX`].
    font: Option<(String, String)>,
    baseline: &'static str,
    align: &'static str,
    /// Fill and stroke (colour, width): forgotten whenever plotters-canvas draws (it sets its own).
    fill: Option<Rgba>,
    stroke: Option<(Rgba, u32)>,
}

/// The path being built and not yet drawn: consecutive elements of one style.
#[derive(Clone, Copy, PartialEq)]
enum Batch {
    Empty,
    Stroke(Rgba, u32),
    Fill(Rgba),
}

/// Draws on a canvas's context, setting only the state that changed.
pub struct Pen {
    context: CanvasRenderingContext2d,
    state: Rc<RefCell<PenState>>,
    batch: Batch,
}

fn css(((r, g, b), a): Rgba) -> String {
    format!("rgba({r},{g},{b},{a})")
}

impl PageBackend {
    /// Draws on `canvas` (whose backing store is already sized), whose context's state is
    /// `state` (the default for a fresh context).
    pub fn canvas(canvas: HtmlCanvasElement, state: Rc<RefCell<PenState>>) -> Option<PageBackend> {
        let context = canvas.get_context("2d").ok()??.dyn_into().ok()?;
        let backend = CanvasBackend::with_canvas_object(canvas)?;
        let pen = Pen {
            context,
            state,
            batch: Batch::Empty,
        };
        Some(PageBackend::Canvas(backend, pen))
    }

    /// Erases the canvas, for a paint over the last one on a context that is kept.
    pub fn clear(&mut self) {
        let (w, h) = self.get_size();
        if let Some(pen) = self.pen() {
            let _ = pen.context.reset_transform();
            pen.context.clear_rect(0.0, 0.0, f64::from(w), f64::from(h));
        }
    }

    /// The canvas backend, for the shapes the pen does not draw; `None` off screen.
    fn shapes(&mut self) -> Option<&mut CanvasBackend> {
        match self {
            PageBackend::Canvas(c, pen) => {
                pen.flush();
                let mut state = pen.state.borrow_mut();
                (state.fill, state.stroke) = (None, None);
                Some(c)
            }
            PageBackend::Offscreen(_) | PageBackend::Svg(_) => None,
        }
    }

    fn pen(&mut self) -> Option<&mut Pen> {
        match self {
            PageBackend::Canvas(_, pen) => Some(pen),
            PageBackend::Offscreen(_) | PageBackend::Svg(_) => None,
        }
    }

    fn svg(&mut self) -> Option<&mut SvgDoc> {
        match self {
            PageBackend::Svg(doc) => Some(doc),
            _ => None,
        }
    }
}

impl Drop for PageBackend {
    fn drop(&mut self) {
        if let Some(pen) = self.pen() {
            pen.flush();
        }
    }
}

impl Pen {
    /// Draws the pending path.
    fn flush(&mut self) {
        match std::mem::replace(&mut self.batch, Batch::Empty) {
            Batch::Empty => {}
            Batch::Stroke(..) => self.context.stroke(),
            Batch::Fill(_) => self.context.fill(),
        }
    }

    /// Makes `batch` the pending path's style: draws the pending path if its style differs and
    /// starts a new one.
    fn begin(&mut self, batch: Batch) {
        if self.batch == batch {
            return;
        }
        self.flush();
        let mut state = self.state.borrow_mut();
        match batch {
            Batch::Stroke(color, width) if state.stroke != Some((color, width)) => {
                self.context.set_stroke_style_str(&css(color));
                self.context.set_line_width(f64::from(width));
                state.stroke = Some((color, width));
            }
            Batch::Fill(color) if state.fill != Some(color) => {
                self.context.set_fill_style_str(&css(color));
                state.fill = Some(color);
            }
            _ => {}
        }
        self.context.begin_path();
        self.batch = batch;
    }

    fn stroke<S: BackendStyle>(&mut self, style: &S, points: impl IntoIterator<Item = (f64, f64)>) {
        let c = style.color();
        if c.alpha == 0.0 {
            return;
        }
        self.begin(Batch::Stroke((c.rgb, c.alpha), style.stroke_width()));
        let mut points = points.into_iter();
        if let Some((x, y)) = points.next() {
            self.context.move_to(x, y);
            points.for_each(|(x, y)| self.context.line_to(x, y));
        }
    }

    fn fill_rect<S: BackendStyle>(
        &mut self,
        style: &S,
        (x0, y0): BackendCoord,
        (x1, y1): BackendCoord,
    ) {
        let c = style.color();
        if c.alpha == 0.0 {
            return;
        }
        self.begin(Batch::Fill((c.rgb, c.alpha)));
        self.context.rect(
            f64::from(x0),
            f64::from(y0),
            f64::from(x1 - x0),
            f64::from(y1 - y0),
        );
    }

    /// plotters-canvas's `draw_text`, setting only the state that changed.
    fn text<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Drawn {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        self.flush();
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
            ctx.set_fill_style_str(&css((color.rgb, color.alpha)));
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
            PageBackend::Svg(doc) => doc.size(),
        }
    }

    /// Called before every element: a canvas needs no preparing (plotters-canvas's does nothing)
    /// and the pending path must not be drawn here.
    fn ensure_prepared(&mut self) -> Drawn {
        Ok(())
    }

    fn present(&mut self) -> Drawn {
        match self.shapes() {
            Some(c) => c.present(),
            None => Ok(()),
        }
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn {
        if let Some(doc) = self.svg() {
            doc.pixel(point, color);
        }
        match self.shapes() {
            Some(c) => c.draw_pixel(point, color),
            None => Ok(()),
        }
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, s: &S) -> Drawn {
        if let Some(doc) = self.svg() {
            doc.line(from, to, s);
            return Ok(());
        }
        // As plotters-canvas does: a horizontal or vertical line moves half a pixel to lie on
        // the pixel grid, crisp rather than two half-covered rows.
        let (mut a, mut b) = (
            (f64::from(from.0), f64::from(from.1)),
            (f64::from(to.0), f64::from(to.1)),
        );
        if a.0 == b.0 {
            (a.0, b.0) = (a.0 - 0.5, b.0 - 0.5);
        }
        if a.1 == b.1 {
            (a.1, b.1) = (a.1 - 0.5, b.1 - 0.5);
        }
        if let Some(pen) = self.pen() {
            pen.stroke(s, [a, b]);
        }
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Drawn {
        if let Some(doc) = self.svg() {
            doc.rect(upper_left, bottom_right, s, fill);
            return Ok(());
        }
        if fill {
            if let Some(pen) = self.pen() {
                pen.fill_rect(s, upper_left, bottom_right);
            }
            return Ok(());
        }
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
        if let Some(doc) = self.svg() {
            doc.path(path, s);
            return Ok(());
        }
        if let Some(pen) = self.pen() {
            let points = quant_charts::path::axis_runs(path);
            pen.stroke(
                s,
                points
                    .into_iter()
                    .map(|(x, y)| (f64::from(x), f64::from(y))),
            );
        }
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        s: &S,
        fill: bool,
    ) -> Drawn {
        if let Some(doc) = self.svg() {
            doc.circle(center, radius, s, fill);
            return Ok(());
        }
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
        if let Some(doc) = self.svg() {
            doc.polygon(vert, s);
            return Ok(());
        }
        match self.shapes() {
            Some(c) => c.fill_polygon(vert, s),
            None => Ok(()),
        }
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, s: &S, pos: BackendCoord) -> Drawn {
        match self {
            PageBackend::Canvas(_, pen) => pen.text(text, s, pos),
            PageBackend::Offscreen(_) => Ok(()),
            PageBackend::Svg(doc) => {
                doc.text(text, s, pos);
                Ok(())
            }
        }
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        s: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<CanvasError>> {
        // plotters' own answer measures the text in a DOM span given a style attribute, which
        // the page's CSP refuses (an error per label per redraw); the estimate is the same on
        // screen, off screen and in the SVG, so a chart lays out identically in each.
        Ok(estimate_text_size(text, s.size()))
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Drawn {
        if let Some(doc) = self.svg() {
            doc.bitmap(pos, size, src);
        }
        match self.shapes() {
            Some(c) => c.blit_bitmap(pos, size, src),
            None => Ok(()),
        }
    }
}
