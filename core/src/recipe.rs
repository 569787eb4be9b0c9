//! The recipe: one value that says how every layer of the network is quantized.
//!
//! A [`LayerRecipe`] holds the knobs of the field for one tensor — bit width, scheme, granularity
//! (per tensor, per output channel, per group of `g` weights), rounding and range method — and a
//! [`Recipe`] is one default for every layer with an optional override per layer.
//!
//! A recipe has one canonical text form, the same everywhere a setting is named (the URL, cache
//! keys, worker messages, CLI flags, JSON): `key=value` pairs joined by `&`, in a fixed order, the
//! knobs at their defaults left out except `bits` and `scheme`:
//!
//! `bits=4&scheme=asym&granularity=group:32&rounding=floor&range=clip:0.8&fc1.bits=2`
//!
//! Values: `granularity` is `tensor | channel | group:G` (G ∈ 8, 16, 32, 64, 128); `rounding` is
//! `even | zero | floor | stochastic:SEED`; `range` is `minmax | percentile:P | mse | clip:F` with
//! P a percentage from 50 to 100 and F a fraction of the min–max range from 0.001 to 1, each with
//! at most three decimals; `dtype` is `int` (the grid the other knobs describe, left out) or a
//! number format that decides its own grid: `fp16 | bf16 | fp8_e4m3 | fp8_e5m2 | nf4 | q4_0 |
//! q4_1 | q5_0 | q8_0 | mxfp8 | mxfp6_e2m3 | mxfp6_e3m2 | mxfp4 | nvfp4 | int4_g32 | int4_g64 |
//! int4_g128` (see [`crate::formats`]). A link from before recipes existed (`?bits=4&scheme=asym`) is the same
//! recipe it always was: per tensor, half to even, min–max.

use crate::error::{Error, Result};
use crate::formats::Format;
use crate::model::Layer;
use crate::quant::{Bits, Scheme};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The group sizes offered, in weights along a row's input dimension.
pub const GROUP_SIZES: [u16; 5] = [8, 16, 32, 64, 128];

/// Which weights share one scale and zero point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Granularity {
    /// One pair for the whole tensor (PyTorch's `per_tensor_*` qschemes).
    #[default]
    PerTensor,
    /// One pair per output channel: row `o` of the weight `[out, …]` (`per_channel_*`, axis 0).
    PerChannel,
    /// One pair per run of `g` consecutive weights of a row, in PyTorch's layout (the input
    /// channels, then the kernel positions). A row whose length `g` does not divide ends with a
    /// shorter group (conv1's rows hold 9 weights: at `g = 8`, a group of 8 and one of 1).
    PerGroup(u16),
}

impl Granularity {
    pub fn group(g: u16) -> Result<Self> {
        if GROUP_SIZES.contains(&g) {
            Ok(Granularity::PerGroup(g))
        } else {
            Err(Error::Recipe(format!(
                "group size {g} is not offered: choose 8, 16, 32, 64 or 128"
            )))
        }
    }

    /// Every granularity, in the order a control lists them.
    pub fn all() -> impl Iterator<Item = Granularity> {
        [Granularity::PerTensor, Granularity::PerChannel]
            .into_iter()
            .chain(GROUP_SIZES.into_iter().map(Granularity::PerGroup))
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Granularity::PerTensor => f.write_str("tensor"),
            Granularity::PerChannel => f.write_str("channel"),
            Granularity::PerGroup(g) => write!(f, "group:{g}"),
        }
    }
}

impl FromStr for Granularity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "tensor" | "per-tensor" | "per_tensor" => Ok(Granularity::PerTensor),
            "channel" | "per-channel" | "per_channel" => Ok(Granularity::PerChannel),
            _ => {
                let g = s
                    .strip_prefix("group:")
                    .and_then(|g| g.parse::<u16>().ok())
                    .ok_or_else(|| {
                        Error::Recipe(format!(
                            "unknown granularity {s:?}: use tensor, channel or group:32"
                        ))
                    })?;
                Granularity::group(g)
            }
        }
    }
}

/// How `w · (1/s)` becomes an integer before the clamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Rounding {
    /// Round half to even (`nearbyint`), as PyTorch's kernels do.
    #[default]
    HalfEven,
    /// Toward zero: the essay's "truncation".
    TowardZero,
    /// Toward −∞.
    Floor,
    /// Away from zero with probability equal to the discarded fraction, else toward zero; the
    /// coin of weight `i` is a hash of (seed, layer, i), so a seed always gives the same codes.
    Stochastic(u32),
}

impl Rounding {
    pub const DETERMINISTIC: [Rounding; 3] =
        [Rounding::HalfEven, Rounding::TowardZero, Rounding::Floor];

    /// Every mode, for comparing them on one recipe: the three deterministic ones, and
    /// stochastic with `current`'s seed if it is stochastic (else seed 0).
    pub fn modes_beside(current: Rounding) -> [Rounding; 4] {
        let seed = match current {
            Rounding::Stochastic(seed) => seed,
            _ => 0,
        };
        [
            Rounding::HalfEven,
            Rounding::TowardZero,
            Rounding::Floor,
            Rounding::Stochastic(seed),
        ]
    }

    /// `R(x)`: `x` rounded to an integer (as f32). `coin` is this value's uniform draw in
    /// `[0, 1)`, used by stochastic rounding only.
    #[inline(always)]
    pub fn round(self, x: f32, coin: impl FnOnce() -> f32) -> f32 {
        match self {
            Rounding::HalfEven => crate::quant::round_half_even(x),
            Rounding::TowardZero => x.trunc(),
            Rounding::Floor => x.floor(),
            Rounding::Stochastic(_) => {
                let t = x.trunc();
                // Up with probability |x − t|: the expected value of R(x) is x itself.
                if coin() < (x - t).abs() {
                    t + x.signum()
                } else {
                    t
                }
            }
        }
    }

    /// The coin of value `index` in stream `salt` (the layer), uniform in `[0, 1)` with 24 bits:
    /// SplitMix64's finaliser over (seed, salt, index), independent of evaluation order.
    pub fn coin(seed: u32, salt: u32, index: usize) -> f32 {
        let mut z = (u64::from(seed) << 32 | u64::from(salt))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rounding::HalfEven => f.write_str("even"),
            Rounding::TowardZero => f.write_str("zero"),
            Rounding::Floor => f.write_str("floor"),
            Rounding::Stochastic(seed) => write!(f, "stochastic:{seed}"),
        }
    }
}

impl FromStr for Rounding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "even" | "half-even" | "nearest" => Ok(Rounding::HalfEven),
            "zero" | "trunc" | "truncate" => Ok(Rounding::TowardZero),
            "floor" => Ok(Rounding::Floor),
            "stochastic" => Ok(Rounding::Stochastic(0)),
            _ => s
                .strip_prefix("stochastic:")
                .and_then(|seed| seed.parse::<u32>().ok())
                .map(Rounding::Stochastic)
                .ok_or_else(|| {
                    Error::Recipe(format!(
                        "unknown rounding {s:?}: use even, zero, floor or stochastic:SEED"
                    ))
                }),
        }
    }
}

/// Thousandths, so that a percentile or a clip fraction is an exact value with one text form
/// (99.9 is 99,900 thousandths of a percent; 0.8 is 800 thousandths).
fn parse_thousandths(s: &str) -> Option<u32> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || frac.len() > 3 || !digits(int) || !digits(frac) {
        return None;
    }
    let int: u32 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: u32 = format!("{frac:0<3}").parse().ok()?;
    int.checked_mul(1000)?.checked_add(frac)
}

/// A count of thousandths, printed as the shortest decimal (99,900 → "99.9", 50 → "0.05").
pub struct Thousandths(pub u32);

impl fmt::Display for Thousandths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frac = format!("{:03}", self.0 % 1000);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}.{frac}", self.0 / 1000)
        }
    }
}

/// How the range `[lo, hi]` that the grid covers is chosen from the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RangeMethod {
    /// The observed minimum and maximum (PyTorch's `MinMaxObserver`).
    #[default]
    MinMax,
    /// The `p`-th percentile and the `(100 − p)`-th, by nearest rank: with the `n` values
    /// sorted, `hi` is the `k`-th smallest and `lo` the `k`-th largest, `k = ⌈p·n/100⌉`.
    /// Held in thousandths of a percent (99.9 % is 99,900).
    Percentile(u32),
    /// The clip that minimises the squared error `Σ(w − ŵ)²`, searched over the min–max range
    /// scaled by `c = k/100`, `k = 100, 99, …, 1` (the first of equal errors kept).
    Mse,
    /// The min–max range (widened to include 0) scaled by a fraction `f ∈ (0, 1]`, held in
    /// thousandths.
    Clip(u32),
}

impl RangeMethod {
    pub fn percentile(thousandths: u32) -> Result<Self> {
        if (50_000..=100_000).contains(&thousandths) {
            Ok(RangeMethod::Percentile(thousandths))
        } else {
            Err(Error::Recipe(
                "a percentile must lie between 50 and 100".into(),
            ))
        }
    }

    pub fn clip(thousandths: u32) -> Result<Self> {
        if (1..=1000).contains(&thousandths) {
            Ok(RangeMethod::Clip(thousandths))
        } else {
            Err(Error::Recipe(
                "a clip must be a fraction of the range, above 0 and at most 1".into(),
            ))
        }
    }
}

impl fmt::Display for RangeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RangeMethod::MinMax => f.write_str("minmax"),
            RangeMethod::Percentile(p) => write!(f, "percentile:{}", Thousandths(p)),
            RangeMethod::Mse => f.write_str("mse"),
            RangeMethod::Clip(c) => write!(f, "clip:{}", Thousandths(c)),
        }
    }
}

impl FromStr for RangeMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        let bad = || {
            Error::Recipe(format!(
                "unknown range {s:?}: use minmax, percentile:99.9, mse or clip:0.8"
            ))
        };
        match s.as_str() {
            "minmax" | "min-max" => Ok(RangeMethod::MinMax),
            "mse" => Ok(RangeMethod::Mse),
            _ => {
                if let Some(p) = s.strip_prefix("percentile:") {
                    RangeMethod::percentile(parse_thousandths(p).ok_or_else(bad)?)
                } else if let Some(c) = s.strip_prefix("clip:") {
                    RangeMethod::clip(parse_thousandths(c).ok_or_else(bad)?)
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// How one layer's weights are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerRecipe {
    pub bits: Bits,
    pub scheme: Scheme,
    pub granularity: Granularity,
    pub rounding: Rounding,
    pub range: RangeMethod,
    /// The number format. `Int` is the grid the knobs above describe; any other format
    /// (FP8, NF4, Q4_0, MXFP4, …) decides its own grid, and the knobs above do not apply.
    pub format: Format,
}

impl LayerRecipe {
    /// The essay's quantization: per tensor, half to even, min–max.
    pub fn per_tensor(bits: Bits, scheme: Scheme) -> Self {
        LayerRecipe {
            bits,
            scheme,
            granularity: Granularity::PerTensor,
            rounding: Rounding::HalfEven,
            range: RangeMethod::MinMax,
            format: Format::Int,
        }
    }

    /// True when the integer knobs (bits, scheme, granularity, rounding, range) decide the grid.
    pub fn is_int(&self) -> bool {
        self.format == Format::Int
    }
}

impl Default for LayerRecipe {
    fn default() -> Self {
        LayerRecipe::per_tensor(Bits::ALL[6], Scheme::Symmetric)
    }
}

/// The knobs of a recipe, each with its key in the text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    Bits,
    Scheme,
    Granularity,
    Rounding,
    Range,
    Dtype,
}

impl Knob {
    pub const ALL: [Knob; 6] = [
        Knob::Bits,
        Knob::Scheme,
        Knob::Granularity,
        Knob::Rounding,
        Knob::Range,
        Knob::Dtype,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Knob::Bits => "bits",
            Knob::Scheme => "scheme",
            Knob::Granularity => "granularity",
            Knob::Rounding => "rounding",
            Knob::Range => "range",
            Knob::Dtype => "dtype",
        }
    }

    /// The key for a text form: the canonical one, or the aliases links and the CLI accept.
    pub fn from_key(key: &str) -> Option<Knob> {
        match key {
            "bits" => Some(Knob::Bits),
            "scheme" | "mode" => Some(Knob::Scheme),
            "granularity" | "gran" => Some(Knob::Granularity),
            "rounding" | "round" => Some(Knob::Rounding),
            "range" => Some(Knob::Range),
            "dtype" => Some(Knob::Dtype),
            _ => None,
        }
    }

    /// This knob's value in `r`, as text.
    pub fn value(self, r: &LayerRecipe) -> String {
        match self {
            Knob::Bits => r.bits.to_string(),
            Knob::Scheme => r.scheme.short().to_string(),
            Knob::Granularity => r.granularity.to_string(),
            Knob::Rounding => r.rounding.to_string(),
            Knob::Range => r.range.to_string(),
            Knob::Dtype => r.format.to_string(),
        }
    }

    /// Sets this knob of `r` from text.
    pub fn set(self, r: &mut LayerRecipe, value: &str) -> Result<()> {
        match self {
            Knob::Bits => r.bits = value.parse()?,
            Knob::Scheme => r.scheme = value.parse()?,
            Knob::Granularity => r.granularity = value.parse()?,
            Knob::Rounding => r.rounding = value.parse()?,
            Knob::Range => r.range = value.parse()?,
            Knob::Dtype => r.format = value.parse()?,
        }
        Ok(())
    }
}

/// How every layer is quantized: one default and an optional override per layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Recipe {
    pub default: LayerRecipe,
    /// Indexed by `Layer as usize`; `None` follows the default.
    pub overrides: [Option<LayerRecipe>; 4],
}

impl Recipe {
    /// The same recipe for every layer.
    pub fn uniform(layer: LayerRecipe) -> Self {
        Recipe {
            default: layer,
            overrides: [None; 4],
        }
    }

    /// The essay's per-tensor fake quantization.
    pub fn per_tensor(bits: Bits, scheme: Scheme) -> Self {
        Recipe::uniform(LayerRecipe::per_tensor(bits, scheme))
    }

    /// The recipe `layer` is quantized with.
    pub fn layer(&self, layer: Layer) -> LayerRecipe {
        self.overrides[layer as usize].unwrap_or(self.default)
    }

    /// The same recipe with `change` applied to the default (layers with an override keep it).
    ///
    /// An override holds only the knobs it changes: a knob an override shared with the old
    /// default follows the new one. So `fc1.bits=2&scheme=asym` gives fc1 the asymmetric scheme,
    /// whatever order a link lists its keys in.
    pub fn with_default(mut self, change: impl FnOnce(&mut LayerRecipe)) -> Self {
        let old = self.default;
        change(&mut self.default);
        let new = self.default;
        for o in self.overrides.iter_mut().flatten() {
            if o.bits == old.bits {
                o.bits = new.bits;
            }
            if o.scheme == old.scheme {
                o.scheme = new.scheme;
            }
            if o.granularity == old.granularity {
                o.granularity = new.granularity;
            }
            if o.rounding == old.rounding {
                o.rounding = new.rounding;
            }
            if o.range == old.range {
                o.range = new.range;
            }
            if o.format == old.format {
                o.format = new.format;
            }
        }
        self.normalize()
    }

    /// An override equal to the default is no override: one recipe, one text form.
    fn normalize(mut self) -> Self {
        for o in &mut self.overrides {
            if *o == Some(self.default) {
                *o = None;
            }
        }
        self
    }

    /// The recipes one step away along each axis of the default: a bit more and a bit fewer, the
    /// other scheme, the granularities either side, and the default rounding and range if the
    /// recipe has others. Where the reader's next move most likely goes.
    pub fn neighbours(&self) -> Vec<Recipe> {
        let d = self.default;
        // A format other than the integer grid has no bits or scheme to step along: its
        // neighbour is the integer grid the knobs describe.
        if !d.is_int() {
            return vec![self.with_default(|r| r.format = Format::Int)];
        }
        let either_side = |at: Option<usize>| {
            at.map_or(Vec::new(), |i| {
                [i.checked_sub(1), Some(i + 1)]
                    .into_iter()
                    .flatten()
                    .collect()
            })
        };
        let mut out = Vec::new();
        for i in either_side(Bits::ALL.iter().position(|&b| b == d.bits)) {
            if let Some(&bits) = Bits::ALL.get(i) {
                out.push(self.with_default(|r| r.bits = bits));
            }
        }
        out.push(self.with_default(|r| r.scheme = d.scheme.other()));
        let grans: Vec<Granularity> = Granularity::all().collect();
        for i in either_side(grans.iter().position(|&g| g == d.granularity)) {
            if let Some(&g) = grans.get(i) {
                out.push(self.with_default(|r| r.granularity = g));
            }
        }
        if d.rounding != Rounding::HalfEven {
            out.push(self.with_default(|r| r.rounding = Rounding::HalfEven));
        }
        if d.range != RangeMethod::MinMax {
            out.push(self.with_default(|r| r.range = RangeMethod::MinMax));
        }
        out
    }

    /// The canonical `key=value` pairs, in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let base = LayerRecipe::default();
        let mut out = Vec::new();
        for knob in Knob::ALL {
            let always = matches!(knob, Knob::Bits | Knob::Scheme);
            if always || knob.value(&self.default) != knob.value(&base) {
                out.push((knob.key().to_string(), knob.value(&self.default)));
            }
        }
        for layer in Layer::ALL {
            if let Some(o) = self.overrides[layer as usize] {
                for knob in Knob::ALL {
                    if knob.value(&o) != knob.value(&self.default) {
                        out.push((format!("{}.{}", layer.name(), knob.key()), knob.value(&o)));
                    }
                }
            }
        }
        out
    }

    /// Applies one `key=value` pair of the text form (`bits=4`, `fc1.range=mse`). Per-layer keys
    /// start from the default as it stands, so defaults come first in the text form.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        let (layer, knob) = match key.split_once('.') {
            Some((layer, knob)) => (Some(layer.parse::<Layer>().map_err(Error::Recipe)?), knob),
            None => (None, key),
        };
        let knob = Knob::from_key(knob)
            .ok_or_else(|| Error::Recipe(format!("unknown recipe setting {key:?}")))?;
        match layer {
            None => {
                let mut d = self.default;
                knob.set(&mut d, value)?;
                *self = self.with_default(|x| *x = d);
            }
            Some(l) => {
                let mut o = self.layer(l);
                knob.set(&mut o, value)?;
                self.overrides[l as usize] = Some(o);
            }
        }
        *self = self.normalize();
        Ok(())
    }
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self
            .pairs()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&text.join("&"))
    }
}

impl FromStr for Recipe {
    type Err = Error;
    /// The strict text form (the CLI's and the worker's): any unknown key or bad value is an
    /// error. The URL is parsed leniently instead, in [`crate::url`].
    fn from_str(s: &str) -> Result<Self> {
        let mut r = Recipe::default();
        for pair in s.trim().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| Error::Recipe(format!("{pair:?} is not key=value")))?;
            r.apply(k.trim(), v.trim())?;
        }
        Ok(r)
    }
}

impl From<Recipe> for String {
    fn from(r: Recipe) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for Recipe {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_essay_s_links_are_the_same_recipe_they_always_were() {
        let r: Recipe = "bits=4&scheme=asym".parse().unwrap();
        assert_eq!(
            r,
            Recipe::per_tensor(Bits::new(4).unwrap(), Scheme::Asymmetric)
        );
        assert_eq!(r.to_string(), "bits=4&scheme=asym");
        assert_eq!(Recipe::default().to_string(), "bits=8&scheme=sym");
    }

    #[test]
    fn every_knob_round_trips_through_its_one_text_form() {
        let text = "bits=3&scheme=asym&granularity=group:32&rounding=stochastic:7&range=clip:0.8\
                    &conv1.bits=8&conv1.granularity=channel&fc1.range=percentile:99.99";
        let r: Recipe = text.parse().unwrap();
        assert_eq!(r.to_string(), text);
        assert_eq!(r.layer(Layer::Conv2), r.default);
        assert_eq!(r.layer(Layer::Conv1).bits.get(), 8);
        assert_eq!(r.layer(Layer::Conv1).rounding, Rounding::Stochastic(7));
        assert_eq!(r.layer(Layer::Fc1).range, RangeMethod::Percentile(99_990));
        // Aliases and other spellings parse to the same recipe and print canonically.
        let alias: Recipe = "mode=asym&bits=3&gran=group:32&round=stochastic:7&range=clip:.800\
                             &conv1.bits=8&conv1.gran=per-channel&fc1.range=percentile:99.990"
            .parse()
            .unwrap();
        assert_eq!(alias, r);
        // Serde carries the text form.
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Recipe>(&json).unwrap(), r);
    }

    #[test]
    fn an_override_equal_to_the_default_is_dropped() {
        let r: Recipe = "bits=4&fc1.bits=4".parse().unwrap();
        assert_eq!(r.overrides, [None; 4]);
        let r: Recipe = "bits=4&fc1.bits=2".parse().unwrap();
        // Moving the default onto the override merges them.
        let merged = r.with_default(|d| d.bits = Bits::new(2).unwrap());
        assert_eq!(merged.to_string(), "bits=2&scheme=sym");
        // Keys in any order give one recipe: the override keeps only what it changes.
        let a: Recipe = "fc1.bits=2&scheme=asym&bits=4".parse().unwrap();
        let b: Recipe = "bits=4&scheme=asym&fc1.bits=2".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.layer(Layer::Fc1).scheme, Scheme::Asymmetric);
    }

    #[test]
    fn bad_values_are_named_errors() {
        for bad in [
            "bits=9",
            "scheme=foo",
            "granularity=group:12",
            "granularity=row",
            "rounding=up",
            "rounding=stochastic:-1",
            "range=percentile:40",
            "range=percentile:99.9999",
            "range=clip:0",
            "range=clip:1.5",
            "range=clip:",
            "range=clip:.",
            "range=clip:1e-3",
            "fc3.bits=4",
            "depth=3",
            "bits",
        ] {
            assert!(bad.parse::<Recipe>().is_err(), "{bad}");
        }
    }

    #[test]
    fn thousandths_are_exact() {
        assert_eq!(parse_thousandths("99.9"), Some(99_900));
        assert_eq!(parse_thousandths("0.05"), Some(50));
        assert_eq!(parse_thousandths(".8"), Some(800));
        assert_eq!(parse_thousandths("1"), Some(1000));
        assert_eq!(parse_thousandths("99999999999"), None);
        assert_eq!(RangeMethod::Percentile(99_000).to_string(), "percentile:99");
        assert_eq!(RangeMethod::Clip(50).to_string(), "clip:0.05");
    }

    #[test]
    fn rounding_modes_on_hand_cases() {
        let no_coin = || unreachable!("deterministic");
        let r = |m: Rounding, x: f32| m.round(x, no_coin);
        assert_eq!(
            [2.5, -2.5, 1.7, -1.7].map(|x| r(Rounding::HalfEven, x)),
            [2.0, -2.0, 2.0, -2.0]
        );
        assert_eq!(
            [2.5, -2.5, 1.7, -1.7].map(|x| r(Rounding::TowardZero, x)),
            [2.0, -2.0, 1.0, -1.0]
        );
        assert_eq!(
            [2.5, -2.5, 1.7, -1.7].map(|x| r(Rounding::Floor, x)),
            [2.0, -3.0, 1.0, -2.0]
        );
        let s = Rounding::Stochastic(1);
        assert_eq!(s.round(1.75, || 0.74), 2.0, "coin below the fraction: away");
        assert_eq!(s.round(1.75, || 0.76), 1.0, "above: toward zero");
        assert_eq!(s.round(-1.25, || 0.2), -2.0);
        assert_eq!(s.round(3.0, || 0.0), 3.0, "an integer stays");
    }

    #[test]
    fn stochastic_coins_are_uniform_and_depend_on_seed_salt_and_index() {
        let n = 100_000;
        let mean = (0..n)
            .map(|i| f64::from(Rounding::coin(7, 2, i)))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        assert_ne!(Rounding::coin(7, 2, 5), Rounding::coin(8, 2, 5));
        assert_ne!(Rounding::coin(7, 2, 5), Rounding::coin(7, 3, 5));
        assert_ne!(Rounding::coin(7, 2, 5), Rounding::coin(7, 2, 6));
        assert_eq!(Rounding::coin(7, 2, 5), Rounding::coin(7, 2, 5));
    }
}
