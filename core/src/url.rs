//! The view as a URL query (`?bits=4&scheme=asym&layer=fc1&metric=mae&embed=histogram`), so a
//! copied link or an iframe reproduces exactly what the reader saw. Parsing never fails: anything
//! malformed (unknown keys, `bits=99`, `bits=abc`, repeated keys, 10 kB values, broken percent
//! escapes, non-UTF-8) falls back to the nearest valid setting with a notice saying what was
//! ignored.

use crate::model::Layer;
use crate::observer::ObserverKind;
use crate::ptq::{Preset, PtqConfig};
use crate::qat::{QatSetting, WeightObserver, MAX_STEPS};
use crate::quant::Bits;
use crate::recipe::{Knob, Recipe};
use crate::view::Metric;

/// A panel that can be embedded alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Histogram,
    Staircase,
    Error,
    Accuracy,
    Table,
    Channels,
    Clipping,
    Rounding,
    Ptq,
    Qat,
    Gallery,
    Draw,
    Flips,
    Layers,
    Export,
    Tensor,
}

impl Panel {
    pub const ALL: [Panel; 16] = [
        Panel::Histogram,
        Panel::Staircase,
        Panel::Error,
        Panel::Accuracy,
        Panel::Table,
        Panel::Channels,
        Panel::Clipping,
        Panel::Rounding,
        Panel::Gallery,
        Panel::Draw,
        Panel::Flips,
        Panel::Layers,
        Panel::Export,
        Panel::Tensor,
        Panel::Ptq,
        Panel::Qat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Panel::Histogram => "histogram",
            Panel::Staircase => "staircase",
            Panel::Error => "error",
            Panel::Accuracy => "accuracy",
            Panel::Table => "table",
            Panel::Channels => "channels",
            Panel::Clipping => "clipping",
            Panel::Rounding => "rounding",
            Panel::Ptq => "ptq",
            Panel::Qat => "qat",
            Panel::Gallery => "gallery",
            Panel::Draw => "draw",
            Panel::Flips => "flips",
            Panel::Layers => "layers",
            Panel::Export => "export",
            Panel::Tensor => "tensor",
        }
    }
}

/// Light, dark, or whatever the reader's system prefers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThemeChoice {
    Auto,
    Light,
    Dark,
}

/// Which network the page runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelChoice {
    /// The trained MNISTNet in the build.
    #[default]
    Bundled,
    /// The weights a QAT run in this tab fine-tuned (`model=qat`): kept in the tab's session
    /// storage, so such a link works in this tab only.
    FineTuned,
    /// A network from a reader's own file, opened in this tab (`model=file`): kept likewise.
    File,
}

/// Everything a URL can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlState {
    /// How the network is quantized (its own keys: `bits`, `scheme`, `granularity`, `rounding`,
    /// `range`, and per layer `fc1.bits` and so on).
    pub recipe: Recipe,
    pub layer: Layer,
    /// Which channel or group of the layer the histogram and staircase show (`block=3`).
    pub block: usize,
    pub metric: Metric,
    /// `Some(panel)`: widget mode, that panel alone.
    pub embed: Option<Panel>,
    /// Whether the widget shows its controls (`controls=none` hides them).
    pub controls: bool,
    pub theme: ThemeChoice,
    /// The PTQ section's setting (`ptq.preset`, `ptq.observer`, `ptq.calibration`, `ptq.wbits`,
    /// `ptq.abits`).
    pub ptq: PtqConfig,
    /// The QAT section's steps and learning rate (`qat.steps`, `qat.lr`).
    pub qat: QatSetting,
    pub model: ModelChoice,
    /// The test digit the drawing pad starts from and the flips panel shows (`digit=17`).
    pub digit: usize,
    /// The allocation's size budget in bytes (`budget=150000`); `None`: no budget chosen.
    pub budget: Option<usize>,
}

/// The PTQ section's setting before the reader changes it: PyTorch's x86 default qconfig
/// (HistogramObserver), the essay's 1,000 calibration digits.
pub fn default_ptq() -> PtqConfig {
    PtqConfig::new(Preset::X86, ObserverKind::Histogram, 1000)
}

impl Default for UrlState {
    fn default() -> Self {
        UrlState {
            recipe: Recipe::default(),
            layer: Layer::Conv2,
            block: 0,
            metric: Metric::MeanAbsError,
            embed: None,
            controls: true,
            theme: ThemeChoice::Auto,
            ptq: default_ptq(),
            qat: QatSetting::default(),
            model: ModelChoice::Bundled,
            digit: 0,
            budget: None,
        }
    }
}

/// A `digit=` at or past this is refused (the page then clamps to the digits it has).
const MAX_DIGIT: usize = 2000;
/// Values longer than this are refused unread.
const MAX_VALUE: usize = 32;
/// At most this many notices, so a hostile URL cannot flood the page.
const MAX_NOTICES: usize = 5;

/// Decodes `%XX` escapes and `+`; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Shows a hostile value safely: at most 20 characters, control characters replaced.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(20)
        .map(|c| if c.is_control() { '�' } else { c })
        .collect();
    if s.chars().count() > 20 {
        out.push('…');
    }
    out
}

/// The supported width nearest to `n` (ties go to the smaller width).
fn nearest_bits(n: f64) -> Bits {
    // Clamp first: at 1e308 the distances to every width round to the same f64.
    let n = n.clamp(0.0, 32.0);
    Bits::ALL
        .into_iter()
        .min_by(|a, b| {
            let da = (f64::from(a.get()) - n).abs();
            let db = (f64::from(b.get()) - n).abs();
            da.total_cmp(&db).then(a.cmp(b))
        })
        .expect("non-empty")
}

impl UrlState {
    /// Parses a query string (with or without the leading `?`). Returns the state and what was
    /// ignored or adjusted, in words for the reader.
    pub fn parse(query: &str) -> (UrlState, Vec<String>) {
        let mut state = UrlState::default();
        let mut notices: Vec<String> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let note = |notices: &mut Vec<String>, msg: String| {
            if notices.len() < MAX_NOTICES {
                notices.push(msg);
            } else if notices.len() == MAX_NOTICES {
                notices.push("…and more problems in the link, ignored.".into());
            }
        };
        let query = query.strip_prefix('?').unwrap_or(query);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(key), Some(value)) = (percent_decode(raw_key), percent_decode(raw_value))
            else {
                note(
                    &mut notices,
                    format!("Ignored “{}”: not valid text.", shown(pair)),
                );
                continue;
            };
            // A recipe knob, for the whole network or one layer (`fc1.bits`), by its canonical
            // name; plain `bits` keeps its own nearest-width rule below.
            let recipe_key = match key.split_once('.') {
                Some((layer, knob)) => layer
                    .parse::<Layer>()
                    .ok()
                    .and(Knob::from_key(knob))
                    .map(|k| format!("{layer}.{}", k.key())),
                None => Knob::from_key(&key)
                    .filter(|&k| k != Knob::Bits)
                    .map(|k| k.key().to_string()),
            };
            let key_name: &'static str = match key.as_str() {
                _ if recipe_key.is_some() => "recipe",
                "bits" => "bits",
                "layer" => "layer",
                "block" => "block",
                "metric" => "metric",
                "embed" => "embed",
                "controls" => "controls",
                "theme" => "theme",
                "model" => "model",
                "digit" => "digit",
                "budget" => "budget",
                "ptq.preset" => "ptq.preset",
                "ptq.observer" => "ptq.observer",
                "ptq.calibration" => "ptq.calibration",
                "ptq.wbits" => "ptq.wbits",
                "ptq.abits" => "ptq.abits",
                "qat.steps" => "qat.steps",
                "qat.lr" => "qat.lr",
                "qat.lsq" => "qat.lsq",
                "qat.observer" => "qat.observer",
                "qat.abits" => "qat.abits",
                _ => {
                    note(
                        &mut notices,
                        format!("Ignored unknown setting “{}”.", shown(&key)),
                    );
                    continue;
                }
            };
            let seen_name = recipe_key.clone().unwrap_or_else(|| key_name.to_string());
            if seen.contains(&seen_name) {
                note(
                    &mut notices,
                    format!("“{seen_name}” was given more than once; used the last."),
                );
            } else {
                seen.push(seen_name);
            }
            if value.len() > MAX_VALUE {
                note(
                    &mut notices,
                    format!("Ignored an overlong value for “{key_name}”."),
                );
                continue;
            }
            let v = value.trim().to_ascii_lowercase();
            let bad = |notices: &mut Vec<String>, expected: &str| {
                note(
                    notices,
                    format!(
                        "Ignored {key_name}=“{}”: expected {expected}.",
                        shown(&value)
                    ),
                )
            };
            match key_name {
                "bits" => match v.parse::<f64>() {
                    Ok(n) if n.is_finite() => {
                        let b = nearest_bits(n);
                        if f64::from(b.get()) != n {
                            note(
                                &mut notices,
                                format!(
                                    "{} bits is not supported; showing {b} bits.",
                                    shown(&value)
                                ),
                            );
                        }
                        state.recipe = state.recipe.with_default(|r| r.bits = b);
                    }
                    _ => bad(&mut notices, "a bit width, 2 to 8 or 16"),
                },
                "recipe" => {
                    let key = recipe_key.as_deref().unwrap_or_default();
                    if let Err(e) = state.recipe.apply(key, &v) {
                        note(
                            &mut notices,
                            format!("Ignored {key}=“{}”: {e}.", shown(&value)),
                        );
                    }
                }
                "block" => match v.parse::<usize>() {
                    Ok(b) if b < 1 << 20 => state.block = b,
                    _ => bad(&mut notices, "a channel or group number"),
                },
                "digit" => match v.parse::<usize>() {
                    Ok(d) if d < MAX_DIGIT => state.digit = d,
                    _ => bad(&mut notices, "a test digit's number, 0 to 1999"),
                },
                "budget" => match v.parse::<usize>() {
                    Ok(b) if (1..=1 << 30).contains(&b) => state.budget = Some(b),
                    _ => bad(&mut notices, "a size in bytes"),
                },
                "layer" => match v.parse::<Layer>() {
                    Ok(l) => state.layer = l,
                    Err(_) => bad(&mut notices, "conv1, conv2, fc1 or fc2"),
                },
                "metric" => match v.as_str() {
                    "mae" => state.metric = Metric::MeanAbsError,
                    "sqnr" => state.metric = Metric::Sqnr,
                    _ => bad(&mut notices, "mae or sqnr"),
                },
                "embed" => match Panel::ALL.into_iter().find(|p| p.name() == v) {
                    Some(p) => state.embed = Some(p),
                    None => bad(
                        &mut notices,
                        "histogram, staircase, error, accuracy, table, channels, clipping, rounding, gallery, draw, flips, layers, export, tensor, ptq or qat",
                    ),
                },
                "controls" => match v.as_str() {
                    "none" | "0" | "false" => state.controls = false,
                    "all" | "1" | "true" => state.controls = true,
                    _ => bad(&mut notices, "none or all"),
                },
                "model" => match v.as_str() {
                    "qat" => state.model = ModelChoice::FineTuned,
                    "file" => state.model = ModelChoice::File,
                    "bundled" => state.model = ModelChoice::Bundled,
                    _ => bad(&mut notices, "bundled, qat or file"),
                },
                "theme" => match v.as_str() {
                    "auto" => state.theme = ThemeChoice::Auto,
                    "light" => state.theme = ThemeChoice::Light,
                    "dark" => state.theme = ThemeChoice::Dark,
                    _ => bad(&mut notices, "light, dark or auto"),
                },
                "ptq.preset" => match Preset::parse(&v) {
                    Ok(p) => state.ptq.preset = p,
                    Err(_) => bad(&mut notices, "x86 or qnnpack"),
                },
                "ptq.observer" => match ObserverKind::parse(&v) {
                    Ok(o) => state.ptq.observer = o,
                    Err(_) => bad(
                        &mut notices,
                        "histogram, minmax, moving_average or percentile:99.99",
                    ),
                },
                "ptq.calibration" => match v.parse::<usize>() {
                    Ok(n) if (1..=crate::ptq::MAX_CALIBRATION).contains(&n) => {
                        state.ptq.calibration = n
                    }
                    _ => bad(&mut notices, "a number of digits, 1 to 8000"),
                },
                "ptq.wbits" | "ptq.abits" => match v.parse::<u8>() {
                    Ok(b) if (2..=8).contains(&b) => {
                        if key_name == "ptq.wbits" {
                            state.ptq.weight_bits = b
                        } else {
                            state.ptq.activation_bits = b
                        }
                    }
                    _ => bad(&mut notices, "2 to 8 bits"),
                },
                "qat.steps" => match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_STEPS).contains(&n) => state.qat.steps = n,
                    _ => bad(&mut notices, "a number of steps, 1 to 5000"),
                },
                "qat.lr" => match QatSetting::parse_lr(&v) {
                    Some(i) => state.qat.lr = i,
                    None => bad(&mut notices, "1e-5, 3e-5, 1e-4, 3e-4 or 1e-3"),
                },
                "qat.abits" => match v.as_str() {
                    "32" | "fp32" | "none" => state.qat.activation_bits = None,
                    b => match b.parse::<u8>() {
                        Ok(b) if (2..=8).contains(&b) => state.qat.activation_bits = Some(b),
                        _ => bad(&mut notices, "2 to 8 bits, or fp32"),
                    },
                },
                "qat.observer" => match v.as_str() {
                    "current" => state.qat.weight_observer = WeightObserver::Current,
                    "moving_average" => state.qat.weight_observer = WeightObserver::MovingAverage,
                    _ => bad(&mut notices, "current or moving_average"),
                },
                "qat.lsq" => match v.as_str() {
                    "1" | "true" | "on" => state.qat.lsq = true,
                    "0" | "false" | "off" => state.qat.lsq = false,
                    _ => bad(&mut notices, "1 or 0"),
                },
                _ => unreachable!("matched above"),
            }
        }
        (state, notices)
    }

    /// The canonical query for this state (no leading `?`); parsing it gives the state back.
    pub fn to_query(&self) -> String {
        let mut q = format!(
            "{}&layer={}&metric={}",
            self.recipe,
            self.layer.name(),
            match self.metric {
                Metric::MeanAbsError => "mae",
                Metric::Sqnr => "sqnr",
            }
        );
        if self.block > 0 {
            q.push_str(&format!("&block={}", self.block));
        }
        if let Some(p) = self.embed {
            q.push_str("&embed=");
            q.push_str(p.name());
        }
        if !self.controls {
            q.push_str("&controls=none");
        }
        match self.theme {
            ThemeChoice::Auto => {}
            ThemeChoice::Light => q.push_str("&theme=light"),
            ThemeChoice::Dark => q.push_str("&theme=dark"),
        }
        match self.model {
            ModelChoice::Bundled => {}
            ModelChoice::FineTuned => q.push_str("&model=qat"),
            ModelChoice::File => q.push_str("&model=file"),
        }
        if self.digit > 0 {
            q.push_str(&format!("&digit={}", self.digit));
        }
        if let Some(b) = self.budget {
            q.push_str(&format!("&budget={b}"));
        }
        // The PTQ setting only where it differs from the default, so other links stay short.
        let (p, d) = (self.ptq, default_ptq());
        if p.preset != d.preset {
            q.push_str(&format!("&ptq.preset={}", p.preset.name()));
        }
        if p.observer != d.observer {
            q.push_str(&format!("&ptq.observer={}", p.observer.name()));
        }
        if p.calibration != d.calibration {
            q.push_str(&format!("&ptq.calibration={}", p.calibration));
        }
        if p.weight_bits != d.weight_bits {
            q.push_str(&format!("&ptq.wbits={}", p.weight_bits));
        }
        if p.activation_bits != d.activation_bits {
            q.push_str(&format!("&ptq.abits={}", p.activation_bits));
        }
        let (t, d) = (self.qat, QatSetting::default());
        if t.steps != d.steps {
            q.push_str(&format!("&qat.steps={}", t.steps));
        }
        if t.lr != d.lr {
            q.push_str(&format!("&qat.lr={}", QatSetting::lr_name(t.lr)));
        }
        if t.lsq {
            q.push_str("&qat.lsq=1");
        }
        if let Some(b) = t.activation_bits {
            q.push_str(&format!("&qat.abits={b}"));
        }
        if t.weight_observer == WeightObserver::MovingAverage {
            q.push_str("&qat.observer=moving_average");
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(q: &str) -> (UrlState, Vec<String>) {
        UrlState::parse(q)
    }

    #[test]
    fn digit_budget_and_the_new_panels_round_trip() {
        let (s, notices) = parse("?embed=layers&digit=17&budget=170000&fc2.dtype=fp32");
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!((s.digit, s.budget), (17, Some(170_000)));
        assert_eq!(s.embed, Some(Panel::Layers));
        assert_eq!(
            s.recipe.layer(Layer::Fc2).format,
            crate::formats::Format::Fp32
        );
        assert_eq!(parse(&s.to_query()), (s, vec![]));
        for p in ["draw", "flips"] {
            assert!(parse(&format!("embed={p}")).1.is_empty());
        }
        // Out of range or not a number: ignored with a notice, the defaults kept.
        let (s, notices) = parse("digit=2000&budget=0&digit=-1&budget=lots");
        assert_eq!((s.digit, s.budget), (0, None));
        assert!(notices.len() >= 4, "{notices:?}");
    }

    #[test]
    fn a_full_query_round_trips() {
        let (s, notices) = parse(
            "?bits=4&scheme=asym&layer=fc1&metric=sqnr&embed=histogram&controls=none&theme=dark",
        );
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(s.recipe.default.bits.get(), 4);
        assert_eq!(s.recipe.default.scheme, crate::quant::Scheme::Asymmetric);
        assert_eq!(s.layer, Layer::Fc1);
        assert_eq!(s.metric, Metric::Sqnr);
        assert_eq!(s.embed, Some(Panel::Histogram));
        assert!(!s.controls);
        assert_eq!(s.theme, ThemeChoice::Dark);
        assert_eq!(parse(&s.to_query()), (s, vec![]));
        assert_eq!(parse(""), (UrlState::default(), vec![]));
    }

    #[test]
    fn the_qat_setting_round_trips_and_bad_values_are_named() {
        let (s, notices) = parse("bits=2&qat.steps=250&qat.lr=0.0003&qat.lsq=1&embed=qat");
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(
            (s.qat.steps, s.qat.learning_rate(), s.qat.lsq),
            (250, 3e-4, true)
        );
        assert_eq!(s.embed, Some(Panel::Qat));
        let q = s.to_query();
        assert!(q.contains("qat.lr=3e-4"), "{q}");
        assert_eq!(parse(&q).0, s);
        assert!(!UrlState::default().to_query().contains("qat"));
        let (s, _) = parse("model=qat");
        assert_eq!(s.model, ModelChoice::FineTuned);
        assert!(s.to_query().contains("model=qat"));
        let (s, _) = parse("model=file");
        assert_eq!(s.model, ModelChoice::File);
        assert!(s.to_query().contains("model=file"));
        let (s, _) = parse("qat.abits=4");
        assert_eq!(s.qat.activation_bits, Some(4));
        assert_eq!(parse(&s.to_query()).0, s);
        let (s, _) = parse("qat.observer=moving_average");
        assert_eq!(s.qat.weight_observer, WeightObserver::MovingAverage);
        assert!(s.to_query().contains("qat.observer=moving_average"));
        let (s, notices) = parse("qat.steps=0&qat.lr=0.5");
        assert_eq!(s.qat, QatSetting::default());
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(notices[1].contains("1e-4"), "{notices:?}");
    }

    #[test]
    fn the_ptq_setting_round_trips_and_bad_values_are_named() {
        let (s, notices) = parse(
            "ptq.preset=qnnpack&ptq.observer=percentile:99.9&ptq.calibration=250&ptq.wbits=4&ptq.abits=6&embed=ptq",
        );
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(s.ptq.preset, Preset::Qnnpack);
        assert_eq!(s.ptq.observer, ObserverKind::Percentile(99_900));
        assert_eq!(
            (s.ptq.calibration, s.ptq.weight_bits, s.ptq.activation_bits),
            (250, 4, 6)
        );
        assert_eq!(s.embed, Some(Panel::Ptq));
        assert_eq!(parse(&s.to_query()).0, s);
        assert!(!UrlState::default().to_query().contains("ptq"));
        let (s, notices) = parse("ptq.calibration=0&ptq.abits=1&ptq.observer=kl&ptq.preset=arm");
        assert_eq!(s.ptq, default_ptq());
        assert_eq!(notices.len(), 4, "{notices:?}");
        assert!(notices[0].contains("1 to 8000"), "{notices:?}");
    }

    #[test]
    fn every_knob_of_the_recipe_is_in_the_link() {
        let q = "bits=3&scheme=asym&granularity=group:32&rounding=stochastic:7&range=clip:0.8\
                 &fc1.bits=2&layer=fc1&metric=mae&block=5";
        let (s, notices) = parse(q);
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(s.recipe, q.split("&layer").next().unwrap().parse().unwrap());
        assert_eq!(s.block, 5);
        assert_eq!(s.to_query(), q);
        // Bad knobs keep the default and say why; the rest of the link still applies.
        let (s, n) = parse("granularity=group:7&rounding=up&range=clip:7&fc9.bits=2&bits=4");
        assert_eq!(s.recipe.to_string(), "bits=4&scheme=sym");
        assert_eq!(n.len(), 4, "{n:?}");
        assert!(n[0].contains("group size 7"), "{}", n[0]);
        let (s, n) = parse("fc1.bits=99");
        assert_eq!((s.recipe, n.len()), (Recipe::default(), 1));
    }

    #[test]
    fn hostile_values_use_the_nearest_valid_setting_and_say_so() {
        let bits = |q: &str| {
            let (s, n) = parse(q);
            (s.recipe.default.bits.get(), n.len())
        };
        assert_eq!(bits("bits=99"), (16, 1));
        assert_eq!(bits("bits=-1"), (2, 1));
        assert_eq!(bits("bits=10"), (8, 1));
        assert_eq!(bits("bits=12"), (8, 1), "ties go to the smaller width");
        assert_eq!(bits("bits=abc"), (8, 1));
        assert_eq!(bits("bits=NaN"), (8, 1));
        assert_eq!(bits("bits=1e308"), (16, 1));
        assert_eq!(bits("bits=3&bits=5"), (5, 1), "last of repeated keys");
        assert_eq!(bits("bits=%34"), (4, 0), "percent-escaped 4");
        assert_eq!(bits("bits=%ZZ"), (8, 1));
        assert_eq!(bits("bits=%FF%FE"), (8, 1), "not UTF-8");
        assert_eq!(bits(&format!("bits={}", "9".repeat(10_000))), (8, 1));
        let (s, n) = parse("scheme=foo&layer=fc9&theme=pink&zzz=1&embed=everything");
        assert_eq!(s, UrlState::default());
        assert_eq!(n.len(), 5);
        assert!(
            n[0].contains("scheme=“foo”") && n[0].contains("\"asym\""),
            "{}",
            n[0]
        );
        let (_, n) = parse(&"x=1&".repeat(100));
        assert_eq!(n.len(), MAX_NOTICES + 1, "notices are capped");
        let (_, n) = parse("bits=%0A%1B");
        assert!(
            !n[0].contains('\n') && !n[0].contains('\u{1b}'),
            "control characters are not shown"
        );
    }

    /// Fuzzing: any input at all, and inputs built from the grammar's own pieces, never panic,
    /// and the canonical form of whatever was parsed parses back to the same state with no
    /// notice. `PROPTEST_CASES=100000 cargo test -p quant-core --release url::` runs 100,000 of
    /// each (the default here is 2,000, to keep the test suite fast).
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("bits".to_string()),
            Just("scheme".to_string()),
            Just("layer".to_string()),
            Just("embed".to_string()),
            Just("theme".to_string()),
            Just("granularity".to_string()),
            Just("rounding".to_string()),
            Just("range".to_string()),
            Just("block".to_string()),
            Just("fc1.".to_string()),
            Just("group:".to_string()),
            Just("stochastic:".to_string()),
            Just("percentile:99.9".to_string()),
            Just("clip:".to_string()),
            Just("%".to_string()),
            Just("%FF".to_string()),
            Just("=".to_string()),
            Just("&".to_string()),
            Just("+".to_string()),
            "[0-9a-z%.+-]{0,6}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
        ))]

        #[test]
        fn fuzz_arbitrary_strings(q in any::<String>()) {
            let (s, notices) = UrlState::parse(&q);
            prop_assert!(notices.len() <= MAX_NOTICES + 1);
            prop_assert_eq!(UrlState::parse(&s.to_query()), (s, vec![]));
        }

        #[test]
        fn fuzz_grammar_pieces(parts in prop::collection::vec(piece(), 0..24)) {
            let q = parts.concat();
            let (s, _) = UrlState::parse(&q);
            prop_assert_eq!(UrlState::parse(&s.to_query()), (s, vec![]));
        }
    }
}
