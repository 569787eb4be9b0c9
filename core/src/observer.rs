//! Activation observers for static PTQ: what torch.ao's observers record while the float network
//! sees the calibration digits, and the range each one chooses.
//!
//! - [`ObserverKind::MinMax`]: the running min and max (`MinMaxObserver`).
//! - [`ObserverKind::MovingAverage`]: `min ← min + c·(batch min − min)` with c = 0.01, the first
//!   batch taken as is (`MovingAverageMinMaxObserver`).
//! - [`ObserverKind::Histogram`]: a 2,048-bin histogram over the running range, then the L2 search
//!   that narrows the range bin by bin (`HistogramObserver`), ported operation by operation, f32
//!   where PyTorch computes on f32 tensors and f64 where it computes on Python floats.
//! - [`ObserverKind::Percentile`]: ours, not PyTorch's: the range ends at the p-th and
//!   (100 − p)-th percentiles of every value seen, by nearest rank, kept exactly (only the
//!   largest and smallest values are stored, as many as the ranks need).
//!
//! Each observer sees the calibration digits batch by batch, as PyTorch's do: the histogram's
//! merging and the moving average depend on where the batches end.

use crate::error::{Error, Result};
use crate::quant::QParams;
use serde::{Deserialize, Serialize};
use std::collections::BinaryHeap;

/// The histogram's bins, and the search's destination bins (`2 ** bits(quint8)`, 256 even with
/// reduce_range, as PyTorch's `dst_nbins`).
pub const BINS: usize = 2048;
const DST_BINS: f64 = 256.0;
const UPSAMPLE: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObserverKind {
    MinMax,
    MovingAverage,
    Histogram,
    /// Thousandths of a percent, as the recipe's percentile: 99_990 is 99.99.
    Percentile(u32),
}

impl ObserverKind {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Ptq(format!(
                "unknown observer {s:?}: use minmax, moving_average, histogram or percentile:99.99"
            ))
        };
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "minmax" => ObserverKind::MinMax,
            "moving_average" | "movingaverage" | "moving-average" => ObserverKind::MovingAverage,
            "histogram" => ObserverKind::Histogram,
            other => {
                let p = other.strip_prefix("percentile:").ok_or_else(bad)?;
                let v: f64 = p.parse().map_err(|_| bad())?;
                if !(90.0..100.0).contains(&v) {
                    return Err(Error::Ptq(
                        "an activation percentile must lie in [90, 100)".into(),
                    ));
                }
                ObserverKind::Percentile((v * 1000.0).round() as u32)
            }
        })
    }

    pub fn name(self) -> String {
        match self {
            ObserverKind::MinMax => "minmax".into(),
            ObserverKind::MovingAverage => "moving_average".into(),
            ObserverKind::Histogram => "histogram".into(),
            ObserverKind::Percentile(p) => {
                format!("percentile:{}", crate::recipe::Thousandths(p))
            }
        }
    }

    /// PyTorch's class name (ours for the percentile, which PyTorch lacks).
    pub fn torch_name(self) -> &'static str {
        match self {
            ObserverKind::MinMax => "MinMaxObserver",
            ObserverKind::MovingAverage => "MovingAverageMinMaxObserver",
            ObserverKind::Histogram => "HistogramObserver",
            ObserverKind::Percentile(_) => "percentile (ours)",
        }
    }
}

/// `MovingAverageMinMaxObserver`'s step: the first range is taken as is; after it,
/// `min ← min + c·(batch min − min)` and likewise the max, with PyTorch's averaging constant
/// c = 0.01, in f32 as its tensors compute it. (PTQ's observer and QAT's weight ranges.)
pub fn moving_average(range: Option<(f32, f32)>, (lo, hi): (f32, f32)) -> (f32, f32) {
    const C: f32 = 0.01;
    match range {
        None => (lo, hi),
        Some((min, max)) => (min + C * (lo - min), max + C * (hi - max)),
    }
}

/// quint8 affine parameters from a chosen range, as `_calculate_qparams` (per_tensor_affine):
/// widen to include 0; `scale = max((max⁺ − min⁻) / (qmax − qmin), eps)`;
/// `zero_point = clamp(qmin − round(min⁻ / scale), qmin, qmax)`.
pub fn affine_qparams(min: f32, max: f32, qmin: i32, qmax: i32) -> QParams {
    let (min_neg, max_pos) = (min.min(0.0), max.max(0.0));
    let scale = ((max_pos - min_neg) / (qmax - qmin) as f32).max(f32::EPSILON);
    let zero_point = (qmin - (min_neg / scale).round_ties_even() as i32).clamp(qmin, qmax);
    QParams {
        scale,
        zero_point,
        qmin,
        qmax,
    }
}

/// One observer's state.
#[derive(Clone, Debug)]
pub enum Observer {
    MinMax {
        min: f32,
        max: f32,
    },
    MovingAverage {
        min: f32,
        max: f32,
    },
    Histogram(Histogram),
    Percentile {
        thousandths: u32,
        /// How many values the calibration will show (the ranks depend on it).
        expected: u64,
        seen: u64,
        /// The largest values (a min-heap of the top k) and the smallest (a max-heap).
        top: BinaryHeap<std::cmp::Reverse<Ordered>>,
        bottom: BinaryHeap<Ordered>,
    },
}

/// An f32 with a total order (observers refuse NaN before it gets here).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ordered(pub f32);
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Observer {
    /// A fresh observer; `expected` is the number of values it will see (used by the percentile).
    pub fn new(kind: ObserverKind, expected: u64) -> Self {
        match kind {
            ObserverKind::MinMax => Observer::MinMax {
                min: f32::INFINITY,
                max: f32::NEG_INFINITY,
            },
            ObserverKind::MovingAverage => Observer::MovingAverage {
                min: f32::INFINITY,
                max: f32::NEG_INFINITY,
            },
            ObserverKind::Histogram => Observer::Histogram(Histogram::new()),
            ObserverKind::Percentile(thousandths) => Observer::Percentile {
                thousandths,
                expected,
                seen: 0,
                top: BinaryHeap::new(),
                bottom: BinaryHeap::new(),
            },
        }
    }

    /// Records one batch. Non-finite activations are refused: they have no range.
    pub fn observe(&mut self, batch: &[f32]) -> Result<()> {
        self.observe_times(batch, 1)
    }

    /// `times` calls of `forward(batch)` in a row (PyTorch calls a fused module's observer
    /// twice), computed once: the range is the same each time, so a moving average takes its
    /// steps from the same batch range, and the histogram's second call (its range unchanged)
    /// adds the same counts again. Our percentile sees each value once.
    pub fn observe_times(&mut self, batch: &[f32], times: u32) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (lo, hi) = crate::quant::observe_range(batch)?;
        let counts = match self {
            Observer::Histogram(h) => {
                let (min, max) = h.range_with(lo, hi);
                histc(batch, min, max)
            }
            _ => Vec::new(),
        };
        self.observe_summary(
            &BatchSummary {
                values: batch.len() as u64,
                lo,
                hi,
                counts,
            },
            Some(batch),
            times,
        )
    }

    /// Records a batch from its summary (computed where the batch is: another worker). The
    /// percentile needs the values themselves, `batch`; the others need only the summary.
    pub fn observe_summary(
        &mut self,
        summary: &BatchSummary,
        batch: Option<&[f32]>,
        times: u32,
    ) -> Result<()> {
        let (lo, hi) = (summary.lo, summary.hi);
        if summary.values == 0 {
            return Ok(());
        }
        match self {
            Observer::MinMax { min, max } => {
                *min = min.min(lo);
                *max = max.max(hi);
            }
            Observer::MovingAverage { min, max } => {
                for _ in 0..times {
                    let seen = *min != f32::INFINITY || *max != f32::NEG_INFINITY;
                    (*min, *max) = moving_average(seen.then_some((*min, *max)), (lo, hi));
                }
            }
            Observer::Histogram(h) => h.absorb(summary, times)?,
            Observer::Percentile {
                thousandths,
                expected,
                seen,
                top,
                bottom,
            } => {
                let batch = batch.ok_or_else(|| {
                    Error::Ptq("the percentile observer needs the values themselves".into())
                })?;
                *seen += batch.len() as u64;
                let keep = tail_count(*thousandths, (*expected).max(*seen)) as usize;
                for &v in batch {
                    top.push(std::cmp::Reverse(Ordered(v)));
                    if top.len() > keep {
                        top.pop();
                    }
                    bottom.push(Ordered(v));
                    if bottom.len() > keep {
                        bottom.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// The range the observer recorded (min_val, max_val as PyTorch stores them).
    pub fn recorded(&self) -> Option<(f32, f32)> {
        let r = match self {
            Observer::MinMax { min, max } | Observer::MovingAverage { min, max } => (*min, *max),
            Observer::Histogram(h) => (h.min, h.max),
            Observer::Percentile { top, bottom, .. } => (
                bottom.iter().map(|o| o.0).fold(f32::INFINITY, f32::min),
                top.iter().map(|o| o.0 .0).fold(f32::NEG_INFINITY, f32::max),
            ),
        };
        (r.0 <= r.1).then_some(r)
    }

    /// The range the observer chooses for quantization.
    pub fn chosen(&self) -> Option<(f32, f32)> {
        match self {
            Observer::Histogram(h) => h.recorded().then(|| h.search()),
            Observer::Percentile { top, bottom, .. } => {
                // The k-th largest is the smallest kept of the top; likewise at the bottom.
                let hi = top.peek()?.0 .0;
                let lo = bottom.peek()?.0;
                Some((lo, hi))
            }
            _ => self.recorded(),
        }
    }

    /// The observer's qparams over `[qmin, qmax]`, or an error if it saw nothing.
    pub fn qparams(&self, qmin: i32, qmax: i32) -> Result<QParams> {
        let (lo, hi) = self.chosen().ok_or(Error::EmptyTensor)?;
        Ok(affine_qparams(lo, hi, qmin, qmax))
    }
}

/// How many values lie at or beyond the p-th percentile's nearest rank, `n − ⌈p·n⌉ + 1`.
fn tail_count(thousandths: u32, n: u64) -> u64 {
    let rank = (u128::from(thousandths) * u128::from(n)).div_ceil(100_000) as u64;
    (n - rank.clamp(1, n.max(1)) + 1).max(1)
}

/// What an observer other than the percentile needs of a batch: how many values, their range,
/// and (for a histogram) their counts over [`Histogram::range_with`] that range. A worker that
/// ran the batch sends this (40 KB) instead of its activations (15 MB per 100 digits).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchSummary {
    pub values: u64,
    pub lo: f32,
    pub hi: f32,
    /// `histc` over the histogram's range with this batch, or empty where no histogram needs it.
    pub counts: Vec<f32>,
}

impl BatchSummary {
    /// A batch's summary, its counts over `range` (the histograms' range with this batch).
    pub fn of(batch: &[f32], range: Option<(f32, f32)>) -> Result<Self> {
        let (lo, hi) = crate::quant::observe_range(batch)?;
        Ok(BatchSummary {
            values: batch.len() as u64,
            lo,
            hi,
            counts: range.map_or_else(Vec::new, |(min, max)| histc(batch, min, max)),
        })
    }
}

/// A histogram's range after a batch spanning `batch`: the batch's own if it is the first, else
/// the union with the range so far.
pub fn widened(range: Option<(f32, f32)>, batch: (f32, f32)) -> (f32, f32) {
    match range {
        Some((min, max)) => (min.min(batch.0), max.max(batch.1)),
        None => batch,
    }
}

/// PyTorch's HistogramObserver state: `histogram` (f32 counts), `min_val`, `max_val`.
#[derive(Clone, Debug)]
pub struct Histogram {
    pub counts: Vec<f32>,
    pub min: f32,
    pub max: f32,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0.0; BINS],
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }

    fn recorded(&self) -> bool {
        self.min <= self.max
    }

    /// The range covered so far, if any batch was seen.
    pub fn range(&self) -> Option<(f32, f32)> {
        self.recorded().then_some((self.min, self.max))
    }

    /// Adds a batch (the display histograms beside the other observers use it).
    pub fn add(&mut self, x: &[f32]) {
        if let Ok((lo, hi)) = crate::quant::observe_range(x) {
            let (min, max) = self.range_with(lo, hi);
            let summary = BatchSummary {
                values: x.len() as u64,
                lo,
                hi,
                counts: histc(x, min, max),
            };
            let _ = self.absorb(&summary, 1);
        }
    }

    /// The range the histogram covers once it has seen a batch whose values span `lo..=hi`: the
    /// first batch's own range, then the union (where that batch's counts are taken).
    pub fn range_with(&self, lo: f32, hi: f32) -> (f32, f32) {
        widened(self.range(), (lo, hi))
    }

    /// Records a batch from its summary (once: the display histograms).
    pub fn add_summary(&mut self, summary: &BatchSummary) -> Result<()> {
        self.absorb(summary, 1)
    }

    /// The counts summed `BINS / n` bins at a time.
    pub fn merged(&self, n: usize) -> Vec<f32> {
        self.counts
            .chunks(BINS / n)
            .map(|c| c.iter().sum())
            .collect()
    }

    /// The share of the mass below `lo` or above `hi`, each bin's mass spread evenly over it.
    pub fn mass_outside(&self, lo: f32, hi: f32) -> f64 {
        let total: f64 = self.counts.iter().map(|&c| f64::from(c)).sum();
        if total == 0.0 || !self.recorded() {
            return 0.0;
        }
        let (min, width) = (
            f64::from(self.min),
            f64::from(self.max - self.min) / BINS as f64,
        );
        if width == 0.0 {
            return 0.0;
        }
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        let outside: f64 = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let (a, b) = (min + i as f64 * width, min + (i + 1) as f64 * width);
                let below = ((lo.min(b) - a) / width).clamp(0.0, 1.0);
                let above = ((b - hi.max(a)) / width).clamp(0.0, 1.0);
                f64::from(c) * (below + above).min(1.0)
            })
            .sum();
        outside / total
    }

    /// `forward(x)`, `times` times, from the batch's summary (its counts taken over
    /// [`Self::range_with`]): the first batch sets the range; a later one that widens it upsamples
    /// the old histogram into the new range before adding its own counts. A repeated call finds
    /// the range unchanged and adds the same counts.
    fn absorb(&mut self, summary: &BatchSummary, times: u32) -> Result<()> {
        if summary.counts.len() != BINS {
            return Err(Error::Ptq(format!(
                "a histogram batch needs {BINS} counts, got {}",
                summary.counts.len()
            )));
        }
        let update = &summary.counts;
        let (new_min, new_max) = self.range_with(summary.lo, summary.hi);
        if !self.recorded() {
            self.min = new_min;
            self.max = new_max;
            self.counts = update.clone();
            for _ in 1..times {
                add_into(&mut self.counts, update);
            }
            return Ok(());
        }
        if new_min == self.min && new_max == self.max {
            for _ in 0..times {
                add_into(&mut self.counts, update);
            }
            return Ok(());
        }
        let transformed = if self.min == self.max {
            // A one-value histogram moves whole: torch.histc(orig_min) · sum(orig_hist).
            let total = torch_sum(&self.counts);
            let mut t = histc(&[self.min], new_min, new_max);
            t.iter_mut().for_each(|c| *c *= total);
            t
        } else {
            self.upscale(new_min, new_max)
        };
        self.counts = update.clone();
        add_into(&mut self.counts, &transformed);
        self.min = new_min;
        self.max = new_max;
        for _ in 1..times {
            add_into(&mut self.counts, update);
        }
        Ok(())
    }

    /// `_upscale_histogram`: each bin split into 16 equal parts, each part's mid-point assigned to
    /// the new range's bin (bucketize, right=True), its count added there (bincount, in order).
    fn upscale(&self, update_min: f32, update_max: f32) -> Vec<f32> {
        let fine = BINS * UPSAMPLE;
        let bin_size = (self.max - self.min) / fine as f32;
        let half = 0.5 * bin_size;
        let boundaries = linspace(update_min, update_max, BINS + 1);
        let mut out = vec![0.0f32; BINS];
        let mut b = 0usize; // mid-points increase: walk the boundaries once
        for i in 0..fine {
            let mid = linspace_at(self.min, self.max, fine + 1, i) + half;
            while b < boundaries.len() && boundaries[b] <= mid {
                b += 1;
            }
            let bucket = (b as isize - 1).clamp(0, BINS as isize - 1) as usize;
            out[bucket] += self.counts[i / UPSAMPLE] / UPSAMPLE as f32;
        }
        out
    }

    /// `_non_linear_param_search`: move the start or end bin inwards, whichever side's next
    /// quantile step (1e-5 of the mass) crosses more bins, while the L2 error falls.
    fn search(&self) -> (f32, f32) {
        let bin_width = (self.max - self.min) / BINS as f32;
        let total = f64::from(torch_sum(&self.counts));
        let csum = cumsum(&self.counts);
        let stepsize = 1e-5f64;
        let (mut alpha, mut beta) = (0.0f64, 1.0f64);
        let (mut start_bin, mut end_bin) = (0usize, BINS - 1);
        let mut norm_min = f64::INFINITY;
        while alpha < beta {
            let next_alpha = alpha + stepsize;
            let next_beta = beta - stepsize;
            // `cSum[l] < next_alpha * total`: a tensor against a Python float, compared in f32.
            let (lo_t, hi_t) = ((next_alpha * total) as f32, (next_beta * total) as f32);
            let mut l = start_bin;
            let mut r = end_bin;
            while l < end_bin && csum[l] < lo_t {
                l += 1;
            }
            while r > start_bin && csum[r] > hi_t {
                r -= 1;
            }
            let (mut next_start, mut next_end) = (start_bin, end_bin);
            if (l - start_bin) as isize > (end_bin as isize - r as isize) {
                next_start = l;
                alpha = next_alpha;
            } else {
                next_end = r;
                beta = next_beta;
            }
            if next_start == start_bin && next_end == end_bin {
                continue;
            }
            let norm = self.quantization_error(next_start, next_end);
            if norm > norm_min {
                break;
            }
            norm_min = norm;
            start_bin = next_start;
            end_bin = next_end;
        }
        (
            self.min + bin_width * start_bin as f32,
            self.min + bin_width * (end_bin + 1) as f32,
        )
    }

    /// `_compute_quantization_error`: the L2 error of mapping the source bins onto 256 uniform
    /// destination bins spanning [start, end], each source bin's mass taken as uniform.
    fn quantization_error(&self, start: usize, end: usize) -> f64 {
        let bin_width = (f64::from(self.max) - f64::from(self.min)) / BINS as f64;
        let dst_bin_width = bin_width * (end - start + 1) as f64 / DST_BINS;
        if dst_bin_width == 0.0 {
            return 0.0;
        }
        let (bw, dbw) = (bin_width as f32, dst_bin_width as f32);
        let half = (dst_bin_width / 2.0) as f32;
        let neg_half = (-dst_bin_width / 2.0) as f32;
        let cube_diff = |e: f32, b: f32| (e * e * e - b * b * b) / 3.0;
        let whole = cube_diff(half, neg_half);
        let last = (DST_BINS - 1.0) as f32;
        let norms: Vec<f32> = (0..BINS)
            .map(|i| {
                let begin = (i as i64 - start as i64) as f32 * bw;
                let end_ = begin + bw;
                let of_begin = div_floor(begin, dbw).clamp(0.0, last);
                let begin_center = (of_begin + 0.5) * dbw;
                let of_end = div_floor(end_, dbw).clamp(0.0, last);
                let density = self.counts[i] / bw;
                let mut norm = 0.0f32;
                norm += density * cube_diff(half, begin - begin_center);
                norm += (of_end - of_begin - 1.0) * (density * whole);
                let end_center = of_end * dbw + half;
                norm += density * cube_diff(end_ - end_center, neg_half);
                norm
            })
            .collect();
        f64::from(torch_sum(&norms))
    }
}

fn add_into(acc: &mut [f32], other: &[f32]) {
    acc.iter_mut().zip(other).for_each(|(a, b)| *a += b);
}

/// `torch.histc(x, 2048, min, max)` on CPU: bin `⌊(x − min)·2048 / (max − min)⌋` in f32, the last
/// edge in the last bin, values outside skipped; min == max widens to ±1. Counts are exact while
/// a batch holds fewer than 2²⁴ values in a bin (ours hold at most 2.5 M).
pub(crate) fn histc(x: &[f32], min: f32, max: f32) -> Vec<f32> {
    let bins = Bins::new(min, max);
    // Bins eight values at a time (the divisions as one vector, each still IEEE's f32 division).
    const L: usize = 8;
    let mut counts = Tables::new();
    let chunks = x.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        let pos: [u32; L] = std::array::from_fn(|l| bins.of(c[l]));
        for (l, &p) in pos.iter().enumerate() {
            counts.add(l, p, 1);
        }
    }
    for &v in tail {
        counts.add(0, bins.of(v), 1);
    }
    counts.total()
}

/// [`histc`] of the rows of `values` (`[rows, width]`), row `r` counted `weight[r]` times, over
/// `(min, max)`.
pub(crate) fn histc_weighted(values: &[f32], weight: &[u32], (min, max): (f32, f32)) -> Vec<f32> {
    let bins = Bins::new(min, max);
    let width = values.len() / weight.len().max(1);
    let mut counts = Tables::new();
    for (r, (row, &w)) in values.chunks_exact(width).zip(weight).enumerate() {
        for &v in row {
            counts.add(r, bins.of(v), w);
        }
    }
    counts.total()
}

/// `histc`'s bin of a value: `⌊(x − min)·2048 / (max − min)⌋` in f32, the last edge in the last
/// bin, min == max widened to ±1; [`BINS`] (a dropped entry) outside.
struct Bins {
    lo: f32,
    hi: f32,
    span: f32,
}

impl Bins {
    fn new(min: f32, max: f32) -> Self {
        let (lo, hi) = if min == max {
            ((f64::from(min) - 1.0) as f32, (f64::from(max) + 1.0) as f32)
        } else {
            (min, max)
        };
        Bins {
            lo,
            hi,
            span: hi - lo,
        }
    }

    #[inline(always)]
    fn of(&self, v: f32) -> u32 {
        let q = ((v - self.lo) * BINS as f32) / self.span;
        let p = (q as u32).min(BINS as u32 - 1);
        if v >= self.lo && v <= self.hi {
            p
        } else {
            BINS as u32
        }
    }
}

/// Counts in four interleaved tables: ReLU's zeros all fall in one bin, and one table would make
/// every increment wait for the one before.
struct Tables(Vec<u32>);

impl Tables {
    const WAYS: usize = 4;

    fn new() -> Self {
        Tables(vec![0; Self::WAYS * (BINS + 1)])
    }

    #[inline(always)]
    fn add(&mut self, way: usize, bin: u32, n: u32) {
        self.0[(way % Self::WAYS) * (BINS + 1) + bin as usize] += n;
    }

    fn total(&self) -> Vec<f32> {
        (0..BINS)
            .map(|b| {
                (0..Self::WAYS)
                    .map(|w| self.0[w * (BINS + 1) + b])
                    .sum::<u32>() as f32
            })
            .collect()
    }
}

/// `torch.linspace(start, end, steps)` (f32) at index `i`: the first half counts up from `start`,
/// the second down from `end`, `step = (end − start)/(steps − 1)` in f32, and the multiply-add
/// rounded once (the compiled kernel fuses it; f64 holds the product exactly).
fn linspace_at(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    let step = (end - start) / (steps - 1) as f32;
    if i < steps / 2 {
        (f64::from(start) + f64::from(step) * i as f64) as f32
    } else {
        (f64::from(end) - f64::from(step) * (steps - 1 - i) as f64) as f32
    }
}

fn linspace(start: f32, end: f32, steps: usize) -> Vec<f32> {
    (0..steps)
        .map(|i| linspace_at(start, end, steps, i))
        .collect()
}

/// `torch.cumsum` on CPU: accumulated in f64, each prefix stored as f32.
fn cumsum(x: &[f32]) -> Vec<f32> {
    let mut acc = 0.0f64;
    x.iter()
        .map(|&v| {
            acc += f64::from(v);
            acc as f32
        })
        .collect()
}

/// `div(a, b, rounding_mode="floor")` for floats, as c10's `div_floor_floating`.
fn div_floor(a: f32, b: f32) -> f32 {
    if b == 0.0 {
        return a / b;
    }
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && (b < 0.0) != (m < 0.0) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f32.copysign(a / b)
    }
}

/// `torch.sum` of a contiguous f32 vector on an AVX2 CPU, in its order: 8-lane vectors summed
/// four rows at a time in a 4-level cascade (`multi_row_sum`), the four partial vectors added,
/// then the scalar tail and the 8 lanes in order. The histogram search compares sums of 2,048
/// f32 terms, so the order decides ties in the last bit. (An AVX-512 build has 16 lanes and can
/// differ in the last bit; our goldens come from an AVX2 machine.)
pub fn torch_sum(x: &[f32]) -> f32 {
    const LANES: usize = 8;
    const ILP: usize = 4;
    let vecs = x.len() / LANES;
    if vecs == 0 {
        return x.iter().fold(0.0, |a, &v| a + v);
    }
    let vec_at = |i: usize| -> [f32; LANES] {
        let mut v = [0.0; LANES];
        v.copy_from_slice(&x[i * LANES..(i + 1) * LANES]);
        v
    };
    let add = |a: &mut [f32; LANES], b: &[f32; LANES]| {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    };
    let rows = vecs / ILP;
    let mut parts = [[0.0f32; LANES]; ILP];
    if rows > 0 {
        const LEVELS: usize = 4;
        let ceil_log2 = usize::BITS - (rows - 1).leading_zeros();
        let power = (ceil_log2 as usize / LEVELS).max(4);
        let step = 1usize << power;
        let mask = step - 1;
        let mut acc = [[[0.0f32; LANES]; ILP]; LEVELS];
        let mut i = 0;
        while i + step <= rows {
            for _ in 0..step {
                for (k, a) in acc[0].iter_mut().enumerate() {
                    add(a, &vec_at(i * ILP + k));
                }
                i += 1;
            }
            for j in 1..LEVELS {
                let (below, above) = acc.split_at_mut(j);
                for (upper, lower) in above[0].iter_mut().zip(below[j - 1].iter_mut()) {
                    add(upper, lower);
                    *lower = [0.0; LANES];
                }
                if i & (mask << (j * power)) != 0 {
                    break;
                }
            }
        }
        while i < rows {
            for (k, a) in acc[0].iter_mut().enumerate() {
                add(a, &vec_at(i * ILP + k));
            }
            i += 1;
        }
        let (first, rest) = acc.split_at_mut(1);
        for level in rest.iter() {
            for (a, upper) in first[0].iter_mut().zip(level) {
                add(a, upper);
            }
        }
        parts = acc[0];
    }
    let mut p0 = parts[0];
    for i in rows * ILP..vecs {
        add(&mut p0, &vec_at(i));
    }
    for p in &parts[1..] {
        add(&mut p0, p);
    }
    let mut total = 0.0f32;
    for &v in &x[vecs * LANES..] {
        total += v;
    }
    for v in p0 {
        total += v;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_counts_follow_the_nearest_rank() {
        // 99.9th percentile of 10,000 values: rank 9,990, so the top 11 values are kept.
        assert_eq!(tail_count(99_900, 10_000), 11);
        assert_eq!(tail_count(99_000, 1), 1);
    }

    #[test]
    fn percentile_observer_picks_the_nearest_rank() {
        let mut o = Observer::new(ObserverKind::Percentile(99_000), 200);
        let a: Vec<f32> = (0..100).map(|v| v as f32).collect();
        let b: Vec<f32> = (100..200).map(|v| v as f32).collect();
        o.observe(&b).unwrap();
        o.observe(&a).unwrap();
        // Rank ⌈0.99·200⌉ = 198 → value 197; from the bottom, rank 3 → value 2.
        assert_eq!(o.chosen(), Some((2.0, 197.0)));
        assert_eq!(o.recorded(), Some((0.0, 199.0)));
    }

    #[test]
    fn moving_average_takes_the_first_batch_then_one_percent() {
        let mut o = Observer::new(ObserverKind::MovingAverage, 0);
        o.observe(&[0.0, 1.0]).unwrap();
        o.observe(&[0.0, 2.0]).unwrap();
        assert_eq!(o.recorded(), Some((0.0, 1.0 + 0.01 * 1.0)));
    }

    #[test]
    fn observing_twice_at_once_is_observing_twice() {
        // A first batch, one inside its range, one that widens it (the histogram upsamples).
        let batches: [Vec<f32>; 3] = [
            (0..500).map(|v| (v as f32 * 0.37).sin()).collect(),
            (0..300).map(|v| (v as f32 * 0.11).cos() * 0.5).collect(),
            (0..400).map(|v| (v as f32 * 0.23).sin() * 3.0).collect(),
        ];
        for kind in [ObserverKind::MovingAverage, ObserverKind::Histogram] {
            let (mut one, mut two) = (Observer::new(kind, 0), Observer::new(kind, 0));
            for b in &batches {
                one.observe(b).unwrap();
                one.observe(b).unwrap();
                two.observe_times(b, 2).unwrap();
            }
            assert_eq!(one.recorded(), two.recorded(), "{kind:?}");
            assert_eq!(one.qparams(0, 255).unwrap(), two.qparams(0, 255).unwrap());
            if let (Observer::Histogram(a), Observer::Histogram(b)) = (&one, &two) {
                assert_eq!(a.counts, b.counts);
            }
        }
    }

    #[test]
    fn observers_refuse_nan() {
        let mut o = Observer::new(ObserverKind::Histogram, 0);
        assert!(o.observe(&[1.0, f32::NAN]).is_err());
        assert!(o.qparams(0, 255).is_err());
    }
}
