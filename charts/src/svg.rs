//! A chart as an SVG file: every chart's "Download SVG".
//!
//! plotters' own `SVGBackend` borrows the string it writes into, so it cannot be one case of the
//! page's backend (a value that lives as long as the chart's drawing area, with no lifetime).
//! [`SvgDoc`] owns its document and writes the same elements: `<line>`, `<rect>`, `<polyline>`,
//! `<circle>`, `<polygon>`, `<text>` with its anchor and rotation, in CSS pixels. The page's
//! backend hands it each element; here it is also a `DrawingBackend` of its own, so the native
//! tests draw charts on it and compare with plotters' `SVGBackend`.

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::FontTransform;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};
use std::cell::RefCell;
use std::fmt::Write;
use std::rc::Rc;

/// An SVG document being drawn; `</svg>` is written when it is dropped, so the shared string
/// is complete once the drawing area that owned it is gone.
pub struct SvgDoc {
    size: (u32, u32),
    out: Rc<RefCell<String>>,
}

fn paint(c: BackendColor) -> String {
    let (r, g, b) = c.rgb;
    if c.alpha >= 1.0 {
        format!("#{r:02x}{g:02x}{b:02x}")
    } else {
        format!("#{r:02x}{g:02x}{b:02x}\" opacity=\"{:.3}", c.alpha)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl SvgDoc {
    /// A document of `width × height` CSS pixels, written into `out`, on a `background`.
    pub fn new(size: (u32, u32), background: BackendColor, out: Rc<RefCell<String>>) -> SvgDoc {
        {
            let mut s = out.borrow_mut();
            s.clear();
            let _ = write!(
                s,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
                 viewBox=\"0 0 {w} {h}\">\n<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" \
                 fill=\"{bg}\"/>\n",
                w = size.0,
                h = size.1,
                bg = paint(background)
            );
        }
        SvgDoc { size, out }
    }

    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    fn push(&self, element: std::fmt::Arguments) {
        let mut s = self.out.borrow_mut();
        let _ = s.write_fmt(element);
        s.push('\n');
    }

    pub fn pixel(&mut self, (x, y): BackendCoord, c: BackendColor) {
        if c.alpha > 0.0 {
            self.push(format_args!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"1\" height=\"1\" fill=\"{}\"/>",
                paint(c)
            ));
        }
    }

    pub fn line<S: BackendStyle>(&mut self, (x0, y0): BackendCoord, (x1, y1): BackendCoord, s: &S) {
        if s.color().alpha > 0.0 {
            self.push(format_args!(
                "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"{}\" stroke-width=\"{}\"/>",
                paint(s.color()),
                s.stroke_width()
            ));
        }
    }

    pub fn rect<S: BackendStyle>(
        &mut self,
        (x0, y0): BackendCoord,
        (x1, y1): BackendCoord,
        s: &S,
        fill: bool,
    ) {
        if s.color().alpha == 0.0 {
            return;
        }
        let (w, h) = (x1 - x0, y1 - y0);
        if fill {
            self.push(format_args!(
                "<rect x=\"{x0}\" y=\"{y0}\" width=\"{w}\" height=\"{h}\" fill=\"{}\"/>",
                paint(s.color())
            ));
        } else {
            self.push(format_args!(
                "<rect x=\"{x0}\" y=\"{y0}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"/>",
                paint(s.color()),
                s.stroke_width()
            ));
        }
    }

    fn points(path: impl IntoIterator<Item = BackendCoord>) -> String {
        let mut text = String::new();
        for (x, y) in path {
            let _ = write!(text, "{x},{y} ");
        }
        text.trim_end().to_string()
    }

    pub fn path<S: BackendStyle>(&mut self, path: impl IntoIterator<Item = BackendCoord>, s: &S) {
        if s.color().alpha > 0.0 {
            self.push(format_args!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"/>",
                SvgDoc::points(path),
                paint(s.color()),
                s.stroke_width()
            ));
        }
    }

    pub fn circle<S: BackendStyle>(&mut self, (x, y): BackendCoord, r: u32, s: &S, fill: bool) {
        if s.color().alpha == 0.0 {
            return;
        }
        let look = if fill {
            format!("fill=\"{}\"", paint(s.color()))
        } else {
            format!(
                "fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"",
                paint(s.color()),
                s.stroke_width()
            )
        };
        self.push(format_args!(
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"{r}\" {look}/>"
        ));
    }

    pub fn polygon<S: BackendStyle>(
        &mut self,
        vert: impl IntoIterator<Item = BackendCoord>,
        s: &S,
    ) {
        if s.color().alpha > 0.0 {
            self.push(format_args!(
                "<polygon points=\"{}\" fill=\"{}\"/>",
                SvgDoc::points(vert),
                paint(s.color())
            ));
        }
    }

    pub fn text<S: BackendTextStyle>(&mut self, text: &str, s: &S, (x, y): BackendCoord) {
        let c = s.color();
        if c.alpha == 0.0 || text.is_empty() {
            return;
        }
        let anchor = match s.anchor().h_pos {
            HPos::Left => "start",
            HPos::Right => "end",
            HPos::Center => "middle",
        };
        let baseline = match s.anchor().v_pos {
            VPos::Top => "text-before-edge",
            VPos::Center => "middle",
            VPos::Bottom => "text-after-edge",
        };
        let rotate = match s.transform() {
            FontTransform::None => String::new(),
            FontTransform::Rotate90 => format!(" transform=\"rotate(90, {x}, {y})\""),
            FontTransform::Rotate180 => format!(" transform=\"rotate(180, {x}, {y})\""),
            FontTransform::Rotate270 => format!(" transform=\"rotate(270, {x}, {y})\""),
        };
        let style = match s.style().as_str() {
            "" | "normal" => String::new(),
            other => format!(" font-weight=\"{other}\""),
        };
        self.push(format_args!(
            "<text x=\"{x}\" y=\"{y}\" font-family=\"{}\" font-size=\"{}\"{style} text-anchor=\"{anchor}\" dominant-baseline=\"{baseline}\" fill=\"{}\"{rotate}>{}</text>",
            escape(s.family().as_str()),
            s.size(),
            paint(c),
            escape(text)
        ));
    }

    /// A bitmap (RGB rows) as one rectangle per pixel: charts draw none today, and a pixel map
    /// in vectors stays exact.
    pub fn bitmap(&mut self, (x0, y0): BackendCoord, (w, h): (u32, u32), src: &[u8]) {
        for (i, rgb) in src.chunks_exact(3).take((w * h) as usize).enumerate() {
            let (x, y) = (x0 + (i as u32 % w) as i32, y0 + (i as u32 / w) as i32);
            self.pixel(
                (x, y),
                BackendColor {
                    alpha: 1.0,
                    rgb: (rgb[0], rgb[1], rgb[2]),
                },
            );
        }
    }
}

impl Drop for SvgDoc {
    fn drop(&mut self) {
        self.out.borrow_mut().push_str("</svg>\n");
    }
}

/// What [`SvgDoc`] reports as a `DrawingBackend`: it never fails.
#[derive(Debug)]
pub struct NoError;

impl std::fmt::Display for NoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no error")
    }
}

impl std::error::Error for NoError {}

type Drawn = Result<(), DrawingErrorKind<NoError>>;

impl DrawingBackend for SvgDoc {
    type ErrorType = NoError;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Drawn {
        Ok(())
    }

    fn present(&mut self) -> Drawn {
        Ok(())
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn {
        self.pixel(point, color);
        Ok(())
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, s: &S) -> Drawn {
        self.line(from, to, s);
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Drawn {
        self.rect(a, b, s, fill);
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Drawn {
        self.path(path, s);
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        s: &S,
        fill: bool,
    ) -> Drawn {
        self.circle(center, radius, s, fill);
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> Drawn {
        self.polygon(vert, s);
        Ok(())
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, s: &S, pos: BackendCoord) -> Drawn {
        self.text(text, s, pos);
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        s: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<NoError>> {
        Ok(estimate_text_size(text, s.size()))
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Drawn {
        self.bitmap(pos, size, src);
        Ok(())
    }
}

/// The page's estimate of a text's size, from its character count: plotters asks it only to
/// align a right-hand axis's labels, and the canvas, the chart off screen and its SVG must lay
/// out identically.
pub fn estimate_text_size(text: &str, size: f64) -> (u32, u32) {
    let width = 0.56 * size * text.chars().count() as f64;
    (width.ceil() as u32, size.ceil() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{histogram, Theme};
    use plotters::prelude::*;
    use quant_core::model::{Layer, MnistNet};
    use quant_core::recipe::Recipe;
    use quant_core::view::layer_view_at;

    /// The `<text>` contents of an SVG document, in order.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let body = &t[t.find('>').unwrap() + 1..];
                body[..body.find("</text>").unwrap()].trim().to_string()
            })
            .collect()
    }

    #[test]
    fn a_chart_on_svgdoc_has_plotters_svg_texts_and_shapes() {
        let net = MnistNet::init(2);
        let recipe: Recipe = "bits=3".parse().unwrap();
        let view = layer_view_at(&net, Layer::Fc2, &recipe, 0)
            .unwrap()
            .histogram;
        let theme = Theme::default();
        let ours = Rc::new(RefCell::new(String::new()));
        {
            let doc = SvgDoc::new(
                (640, 320),
                BackendColor {
                    alpha: 1.0,
                    rgb: (255, 255, 255),
                },
                ours.clone(),
            );
            histogram::draw(&doc.into_drawing_area(), &view, &theme).unwrap();
        }
        let ours = ours.borrow().clone();
        let theirs = crate::svg(640, 320, |a| histogram::draw(&a, &view, &theme).unwrap());
        assert!(ours
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"320\""));
        assert!(ours.ends_with("</svg>\n"));
        // The same labels, in the same order, as plotters' own SVG backend draws.
        assert_eq!(texts(&ours), texts(&theirs));
        assert!(texts(&ours).len() > 5);
        // As many bars and lines (plotters writes each rectangle and line as ours does).
        for tag in ["<rect", "<line", "<polyline"] {
            assert_eq!(
                ours.matches(tag).count() - usize::from(tag == "<rect"),
                theirs.matches(tag).count(),
                "{tag}"
            );
        }
    }

    #[test]
    fn text_is_escaped_and_rotated_about_its_anchor() {
        let out = Rc::new(RefCell::new(String::new()));
        {
            let mut doc = SvgDoc::new(
                (100, 50),
                BackendColor {
                    alpha: 1.0,
                    rgb: (0, 0, 0),
                },
                out.clone(),
            );
            let style =
                TextStyle::from(("sans-serif", 12).into_font()).transform(FontTransform::Rotate270);
            doc.text("a < b & \"c\"", &style, (10, 20));
        }
        let svg = out.borrow();
        assert!(
            svg.contains(">a &lt; b &amp; &quot;c&quot;</text>"),
            "{svg}"
        );
        assert!(svg.contains("transform=\"rotate(270, 10, 20)\""), "{svg}");
    }
}
