//! Colours, fonts and sizes shared by every chart. The palette is Okabe–Ito (safe for the common
//! forms of colour blindness), and every series also differs by line style or marker.

use plotters::style::{Color, FontDesc, RGBColor, ShapeStyle, TextStyle};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Theme {
    /// Device pixels per CSS pixel: fonts and strokes are multiplied by it so HiDPI canvases
    /// stay crisp and correctly sized.
    pub scale: f64,
    pub dark: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            scale: 1.0,
            dark: false,
        }
    }
}

/// Okabe–Ito blue: FP32, symmetric.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
/// Okabe–Ito vermillion: quantized, asymmetric.
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
/// Okabe–Ito orange: the grid.
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
/// Okabe–Ito bluish green: the clipping range.
pub const GREEN: RGBColor = RGBColor(0, 158, 115);

impl Theme {
    pub fn background(&self) -> RGBColor {
        if self.dark {
            RGBColor(24, 26, 31)
        } else {
            RGBColor(255, 255, 255)
        }
    }

    pub fn foreground(&self) -> RGBColor {
        if self.dark {
            RGBColor(225, 228, 234)
        } else {
            RGBColor(30, 32, 38)
        }
    }

    pub fn muted(&self) -> RGBColor {
        if self.dark {
            RGBColor(70, 74, 84)
        } else {
            RGBColor(222, 224, 230)
        }
    }

    /// A length in CSS pixels, in device pixels.
    pub fn px(&self, css: f64) -> u32 {
        (css * self.scale).round().max(1.0) as u32
    }

    pub fn font<'b>(&self, css_size: f64) -> TextStyle<'b> {
        FontDesc::from(("sans-serif", css_size * self.scale)).color(&self.foreground())
    }

    pub fn stroke(&self, color: RGBColor, css_width: f64) -> ShapeStyle {
        self.translucent(color, 1.0, css_width)
    }

    pub fn translucent(&self, color: RGBColor, alpha: f64, css_width: f64) -> ShapeStyle {
        ShapeStyle {
            color: color.mix(alpha),
            filled: false,
            stroke_width: self.px(css_width),
        }
    }

    /// Axis labels without a spurious sign on zero ("-0.0") or trailing noise, and with a true
    /// minus sign.
    pub fn tick(v: f64) -> String {
        let s = format!("{:.2}", v);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        match s {
            "-0" | "" => "0".into(),
            _ => Theme::minus(s),
        }
    }

    /// `text` with each hyphen-minus as a true minus sign (U+2212), as a number is typeset: a
    /// hyphen is shorter and sits lower, so "-0.2" beside "0.2" reads as a dash. Only for what is
    /// drawn; tables and exports keep ASCII so they parse.
    pub fn minus(text: &str) -> String {
        text.replace('-', "\u{2212}")
    }
}

#[cfg(test)]
mod tests {
    use super::Theme;

    #[test]
    fn ticks_have_a_true_minus_and_no_negative_zero() {
        assert_eq!(Theme::tick(-0.2), "\u{2212}0.2");
        assert_eq!(Theme::tick(-1.0), "\u{2212}1");
        assert_eq!(Theme::tick(0.25), "0.25");
        assert_eq!(Theme::tick(-0.001), "0");
        assert_eq!(Theme::tick(0.0), "0");
        assert_eq!(Theme::minus("1e-2"), "1e\u{2212}2");
    }
}
