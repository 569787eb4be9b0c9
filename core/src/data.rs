//! MNIST digits in the IDX format (big-endian header: magic, then one u32 per dimension; u8 data).

use crate::error::{Error, Result};
use crate::rng::Rng;
use ndarray::{Array2, Axis};

/// Side of an MNIST digit, in pixels.
pub const SIDE: usize = 28;
/// Pixels in one digit.
pub const PIXELS: usize = SIDE * SIDE;
/// Refuse headers that declare more than this many items: a corrupt count must not make us
/// allocate gigabytes before noticing the file is short.
const MAX_ITEMS: usize = 1_000_000;

const IMAGES_MAGIC: u32 = 0x0000_0803; // u8 data, 3 dimensions
const LABELS_MAGIC: u32 = 0x0000_0801; // u8 data, 1 dimension

fn read_u32(bytes: &[u8], at: usize) -> Result<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| Error::Idx(format!("truncated header ({} bytes)", bytes.len())))
}

/// Validates the magic number and that the data after the header is exactly the declared size.
fn read_idx<'a>(bytes: &'a [u8], magic: u32, what: &str) -> Result<(Vec<usize>, &'a [u8])> {
    let found = read_u32(bytes, 0)?;
    if found != magic {
        return Err(Error::Idx(format!(
            "not an IDX {what} file: magic number {found:#010x}, expected {magic:#010x}"
        )));
    }
    let ndim = (magic & 0xff) as usize;
    let dims: Vec<usize> = (0..ndim)
        .map(|i| read_u32(bytes, 4 + 4 * i).map(|d| d as usize))
        .collect::<Result<_>>()?;
    if dims[0] > MAX_ITEMS {
        return Err(Error::Idx(format!(
            "{what} file declares {} items, more than the {MAX_ITEMS} allowed",
            dims[0]
        )));
    }
    let expected = dims.iter().product::<usize>();
    let body = &bytes[4 + 4 * ndim..];
    if body.len() != expected {
        return Err(Error::Idx(format!(
            "{what} file holds {} data bytes but its header {dims:?} declares {expected}{}",
            body.len(),
            if body.len() < expected {
                " (truncated)"
            } else {
                ""
            }
        )));
    }
    Ok((dims, body))
}

/// A set of labelled digits: `images` row i is digit i's 784 pixels (0..=255, row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Digits {
    pub images: Array2<u8>,
    pub labels: Vec<u8>,
}

impl Digits {
    /// Parses an IDX images file and an IDX labels file, checking they describe the same digits.
    pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Self> {
        let (dims, pixels) = read_idx(images, IMAGES_MAGIC, "images")?;
        if dims[1] != SIDE || dims[2] != SIDE {
            return Err(Error::Idx(format!(
                "images are {}×{}, expected {SIDE}×{SIDE}",
                dims[1], dims[2]
            )));
        }
        let (ldims, labels) = read_idx(labels, LABELS_MAGIC, "labels")?;
        if ldims[0] != dims[0] {
            return Err(Error::Idx(format!(
                "{} images but {} labels",
                dims[0], ldims[0]
            )));
        }
        if let Some(i) = labels.iter().position(|&l| l > 9) {
            return Err(Error::Idx(format!(
                "label {} at index {i} is not a digit",
                labels[i]
            )));
        }
        let images = Array2::from_shape_vec((dims[0], PIXELS), pixels.to_vec())
            .map_err(|e| Error::Idx(e.to_string()))?;
        Ok(Digits {
            images,
            labels: labels.to_vec(),
        })
    }

    /// Digits from their pixels (`labels.len()` images of 28×28, row-major) and labels, as
    /// another worker holds them, checked as [`Self::from_idx`] checks a file.
    pub fn from_pixels(pixels: Vec<u8>, labels: Vec<u8>) -> Result<Self> {
        if let Some(i) = labels.iter().position(|&l| l > 9) {
            return Err(Error::Idx(format!(
                "label {} at index {i} is not a digit",
                labels[i]
            )));
        }
        let images = Array2::from_shape_vec((labels.len(), PIXELS), pixels)
            .map_err(|_| Error::Idx(format!("pixels for {} digits expected", labels.len())))?;
        Ok(Digits { images, labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images file, IDX-encoded.
    pub fn images_idx(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.images.len());
        for word in [IMAGES_MAGIC, self.len() as u32, SIDE as u32, SIDE as u32] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend(self.images.iter());
        out
    }

    /// The labels file, IDX-encoded.
    pub fn labels_idx(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.len());
        for word in [LABELS_MAGIC, self.len() as u32] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.labels);
        out
    }

    /// Pixels scaled to `[0, 1]` (pixel / 255, no mean/std normalisation), shape `[n, 784]`.
    pub fn images_f32(&self) -> Array2<f32> {
        self.images_f32_rows(0..self.len())
    }

    /// [`Self::images_f32`] of the digits in `rows` only.
    pub fn images_f32_rows(&self, rows: std::ops::Range<usize>) -> Array2<f32> {
        self.images
            .slice(ndarray::s![rows, ..])
            .mapv(|p| f32::from(p) / 255.0)
    }
}

impl Digits {
    /// The digits at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Digits {
        Digits {
            images: self.images.select(Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// Splits into (train, test) with `test_count` test digits, stratified: each class gives the
    /// test split its share, rounded by largest remainder so the total is exact. Both splits are
    /// shuffled so that any prefix of the test split is a fair sample (the web app's running
    /// accuracy estimate relies on it). Deterministic from `seed`.
    pub fn stratified_split(&self, test_count: usize, seed: u64) -> Result<(Digits, Digits)> {
        let n = self.len();
        if test_count > n {
            return Err(Error::Data(format!(
                "cannot take {test_count} test digits from {n}"
            )));
        }
        let mut rng = Rng::new(seed);
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 10];
        for (i, &l) in self.labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        // Each class's exact share, then hand out the leftover to the largest remainders.
        let share = |c: &Vec<usize>| c.len() * test_count;
        let mut take: Vec<usize> = by_class.iter().map(|c| share(c) / n.max(1)).collect();
        let mut order: Vec<usize> = (0..10).collect();
        order.sort_by_key(|&c| (std::cmp::Reverse(share(&by_class[c]) % n.max(1)), c));
        let missing = test_count - take.iter().sum::<usize>();
        for &c in order.iter().take(missing) {
            take[c] += 1;
        }
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (class, t) in by_class.iter_mut().zip(take) {
            rng.shuffle(class);
            test.extend_from_slice(&class[..t]);
            train.extend_from_slice(&class[t..]);
        }
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        Ok((self.select(&train), self.select(&test)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_is_exact_deterministic_and_disjoint() {
        let labels: Vec<u8> = (0..1000)
            .map(|i| if i < 130 { 1 } else { (i % 10) as u8 })
            .collect();
        let images = Array2::from_shape_fn((1000, PIXELS), |(i, j)| match j {
            0 => (i / 256) as u8,
            1 => (i % 256) as u8,
            _ => 0,
        });
        let all = Digits { images, labels };
        let (train, test) = all.stratified_split(200, 7).unwrap();
        assert_eq!((train.len(), test.len()), (800, 200));
        for class in 0..10u8 {
            let total = all.labels.iter().filter(|&&l| l == class).count() as f64;
            let got = test.labels.iter().filter(|&&l| l == class).count() as f64;
            assert!(
                (got - total * 0.2).abs() < 1.0,
                "class {class}: {got} of {total}"
            );
        }
        assert_eq!(all.stratified_split(200, 7).unwrap().1, test);
        // Every original digit lands in exactly one split (pixel rows are distinct here).
        let mut rows: Vec<Vec<u8>> = train
            .images
            .outer_iter()
            .chain(test.images.outer_iter())
            .map(|r| r.to_vec())
            .collect();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), 1000);
        assert!(all.stratified_split(1001, 7).is_err());
    }

    fn sample() -> Digits {
        let images = Array2::from_shape_fn((3, PIXELS), |(i, j)| ((i * 7 + j) % 256) as u8);
        Digits {
            images,
            labels: vec![3, 0, 9],
        }
    }

    #[test]
    fn round_trip() {
        let d = sample();
        assert_eq!(
            Digits::from_idx(&d.images_idx(), &d.labels_idx()).unwrap(),
            d
        );
    }

    #[test]
    fn corrupt_files_are_refused_with_a_reason() {
        let d = sample();
        let (img, lab) = (d.images_idx(), d.labels_idx());
        let err = |i: &[u8], l: &[u8]| Digits::from_idx(i, l).unwrap_err().to_string();

        assert!(err(&img[..img.len() - 1], &lab).contains("truncated"));
        assert!(err(&img[..10], &lab).contains("truncated header"));
        assert!(err(&[], &lab).contains("truncated header"));
        assert!(err(&lab, &lab).contains("magic number"));
        assert!(err(&img, &img).contains("magic number"));
        let mut long = img.clone();
        long.push(0);
        assert!(err(&long, &lab).contains("declares"));
        let mut fewer = sample();
        fewer.labels.pop();
        assert!(err(&img, &fewer.labels_idx()).contains("3 images but 2 labels"));
        let mut bad_label = lab.clone();
        *bad_label.last_mut().unwrap() = 12;
        assert!(err(&img, &bad_label).contains("not a digit"));
        let mut huge = img.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(err(&huge, &lab).contains("allowed"));
        let mut wrong_side = img.clone();
        wrong_side[8..12].copy_from_slice(&56u32.to_be_bytes());
        wrong_side[12..16].copy_from_slice(&14u32.to_be_bytes());
        assert!(err(&wrong_side, &lab).contains("expected 28×28"));
    }
}
