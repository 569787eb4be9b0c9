//! A reader's own tensors: the header of a `.safetensors` or `.npy` file, read first and alone
//! (bounded), listed, and then one chosen tensor decoded from its own bytes. A page reads the
//! header with `File.slice` and then only the chosen tensor's byte range, so a checkpoint of
//! gigabytes is never whole in memory; the CLI does the same with a file.
//!
//! Every file is hostile until checked: the header's length, its UTF-8 and JSON, each tensor's
//! dtype, shape (a product that overflows), byte length and offsets (inside the file, no two
//! tensors overlapping) are checked before any tensor is read, and each failure says what is
//! wrong in words. Nothing here panics on any input (fuzzed: `core/tests/tensor_files.rs`).

use crate::error::{Error, Result};
use serde::Serialize;

/// A header longer than this is refused unread: real checkpoints' headers are kilobytes to a
/// few megabytes (one entry per tensor, ~100 bytes each).
pub const MAX_HEADER: u64 = 16 << 20;
/// At most this many tensors are listed.
pub const MAX_TENSORS: usize = 100_000;
/// A tensor larger than this (in values) is refused: 256 M values, 1 GiB as f32.
pub const MAX_VALUES: u64 = 1 << 28;
/// `.npy` headers: a dictionary of three keys is far shorter.
const MAX_NPY_HEADER: usize = 1 << 16;

/// The element types a file may name; only the float ones are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    /// Any other (F64, I8, U8, BOOL, F8_E4M3, …), listed by name but not read.
    Other(&'static str),
}

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "F64" => Dtype::Other("F64"),
            "I64" => Dtype::Other("I64"),
            "I32" => Dtype::Other("I32"),
            "I16" => Dtype::Other("I16"),
            "I8" => Dtype::Other("I8"),
            "U64" => Dtype::Other("U64"),
            "U32" => Dtype::Other("U32"),
            "U16" => Dtype::Other("U16"),
            "U8" => Dtype::Other("U8"),
            "BOOL" => Dtype::Other("BOOL"),
            "F8_E4M3" => Dtype::Other("F8_E4M3"),
            "F8_E5M2" => Dtype::Other("F8_E5M2"),
            _ => return None,
        })
    }

    /// Bytes per element, where known.
    fn size(self) -> Option<u64> {
        Some(match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::Other("F64" | "I64" | "U64") => 8,
            Dtype::Other("I32" | "U32") => 4,
            Dtype::Other("I16" | "U16") => 2,
            Dtype::Other(_) => 1,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::Other(n) => n,
        }
    }

    pub fn readable(self) -> bool {
        !matches!(self, Dtype::Other(_))
    }
}

/// One tensor of a file: where its bytes lie (from the file's start) and what they hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range in the file.
    pub start: u64,
    pub end: u64,
    /// `.npy` only: big-endian values.
    #[serde(skip)]
    pub big_endian: bool,
}

impl Entry {
    pub fn values(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// How many bytes of the file's start the header needs, from its first bytes (at least 12):
/// the caller reads that much, then calls [`list`].
pub fn header_len(first: &[u8], file_len: u64) -> Result<u64> {
    if first.starts_with(b"\x93NUMPY") {
        if first.len() < 12 {
            return Err(bad("a .npy file shorter than its preamble"));
        }
        let (len, at) = match first[6] {
            1 => (u64::from(u16::from_le_bytes([first[8], first[9]])), 10),
            2 | 3 => (
                u64::from(u32::from_le_bytes([
                    first[8], first[9], first[10], first[11],
                ])),
                12,
            ),
            v => {
                return Err(bad(&format!(
                    ".npy format version {v} is not supported (1, 2 or 3 are)"
                )))
            }
        };
        if len as usize > MAX_NPY_HEADER {
            return Err(bad(&format!(
                "a .npy header of {len} bytes: more than the {MAX_NPY_HEADER} allowed"
            )));
        }
        return fits(at + len, file_len);
    }
    if first.len() < 8 {
        return Err(bad(
            "the file is shorter than a safetensors header's 8-byte length",
        ));
    }
    let n = u64::from_le_bytes(first[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER {
        return Err(bad(&format!(
            "the header says it is {n} bytes: more than the {} MB allowed (is this a safetensors file?)",
            MAX_HEADER >> 20
        )));
    }
    fits(8 + n, file_len)
}

fn fits(need: u64, file_len: u64) -> Result<u64> {
    if need > file_len {
        Err(bad(&format!(
            "the header needs {need} bytes but the file has {file_len}: truncated?"
        )))
    } else {
        Ok(need)
    }
}

fn bad(why: &str) -> Error {
    Error::File(why.to_string())
}

/// The tensors of a file whose first bytes (at least [`header_len`] of them) are `head`, and
/// whose length is `file_len`. Entries are checked against the file and one another.
pub fn list(head: &[u8], file_len: u64) -> Result<Vec<Entry>> {
    let need = header_len(head, file_len)?;
    if (head.len() as u64) < need {
        return Err(bad("the header was not read whole"));
    }
    let entries = if head.starts_with(b"\x93NUMPY") {
        vec![npy_entry(head, need, file_len)?]
    } else {
        safetensors_entries(&head[8..need as usize], need, file_len)?
    };
    check_layout(&entries)?;
    Ok(entries)
}

fn safetensors_entries(header: &[u8], data_start: u64, file_len: u64) -> Result<Vec<Entry>> {
    let text = std::str::from_utf8(header).map_err(|e| {
        bad(&format!(
            "the header is not UTF-8 text (byte {})",
            e.valid_up_to()
        ))
    })?;
    let json: serde_json::Value = serde_json::from_str(text.trim_end_matches(' '))
        .map_err(|e| bad(&format!("the header is not valid JSON: {e}")))?;
    let map = json
        .as_object()
        .ok_or_else(|| bad("the header is not a JSON object of tensors"))?;
    if map.len() > MAX_TENSORS + 1 {
        return Err(bad(&format!(
            "{} tensors: more than the {MAX_TENSORS} listed",
            map.len()
        )));
    }
    let data_len = file_len - data_start;
    let mut out = Vec::with_capacity(map.len());
    for (name, v) in map {
        if name == "__metadata__" {
            continue;
        }
        let shown: String = name.chars().take(80).collect();
        let field = |k: &str| {
            v.get(k)
                .ok_or_else(|| bad(&format!("tensor {shown:?} has no {k}")))
        };
        let dtype = field("dtype")?
            .as_str()
            .and_then(Dtype::parse)
            .ok_or_else(|| bad(&format!("tensor {shown:?} has an unknown dtype")))?;
        let shape = field("shape")?
            .as_array()
            .ok_or_else(|| bad(&format!("tensor {shown:?}: its shape is not a list")))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| {
                bad(&format!(
                    "tensor {shown:?}: its shape holds something other than sizes"
                ))
            })?;
        let offsets = field("data_offsets")?
            .as_array()
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
            .ok_or_else(|| {
                bad(&format!(
                    "tensor {shown:?}: data_offsets is not [start, end]"
                ))
            })?;
        let (a, b) = offsets;
        if a > b || b > data_len {
            return Err(bad(&format!(
                "tensor {shown:?}: bytes {a}..{b} lie outside the file's {data_len} bytes of data"
            )));
        }
        let values = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| bad(&format!("tensor {shown:?}: its shape {shape:?} overflows")))?;
        let bytes = values
            .checked_mul(dtype.size().unwrap_or(1))
            .ok_or_else(|| bad(&format!("tensor {shown:?}: its size overflows")))?;
        if bytes != b - a {
            return Err(bad(&format!(
                "tensor {shown:?}: shape {shape:?} of {} needs {bytes} bytes, its offsets give {}",
                dtype.name(),
                b - a
            )));
        }
        out.push(Entry {
            name: name.clone(),
            dtype,
            shape,
            start: data_start + a,
            end: data_start + b,
            big_endian: false,
        });
    }
    Ok(out)
}

/// No two tensors share a byte, and none is larger than [`MAX_VALUES`] is left for the reader
/// to find out: that one is listed and refused when read.
fn check_layout(entries: &[Entry]) -> Result<()> {
    let mut spans: Vec<(u64, u64, &str)> = entries
        .iter()
        .filter(|e| e.end > e.start)
        .map(|e| (e.start, e.end, e.name.as_str()))
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(bad(&format!(
                "tensors {:?} and {:?} overlap",
                w[0].2.chars().take(80).collect::<String>(),
                w[1].2.chars().take(80).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// The one array of a `.npy` file: `{'descr': '<f4', 'fortran_order': False, 'shape': (64, 3,
/// 7, 7), }`.
fn npy_entry(head: &[u8], data_start: u64, file_len: u64) -> Result<Entry> {
    let at = if head[6] == 1 { 10 } else { 12 };
    let text = std::str::from_utf8(&head[at..data_start as usize])
        .map_err(|_| bad("the .npy header is not text"))?;
    let value = |key: &str| -> Result<&str> {
        let k = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(&format!("the .npy header has no '{key}'")))?;
        let rest = text[k + key.len() + 2..].trim_start();
        rest.strip_prefix(':')
            .map(str::trim_start)
            .ok_or_else(|| bad(&format!("the .npy header's '{key}' has no value")))
    };
    let descr = value("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| bad("the .npy dtype is not a string"))?;
    let (dtype, big_endian) = match descr {
        "<f4" | "=f4" => (Dtype::F32, false),
        ">f4" => (Dtype::F32, true),
        "<f2" | "=f2" => (Dtype::F16, false),
        ">f2" => (Dtype::F16, true),
        other => {
            return Err(bad(&format!(
                "the .npy dtype {:?} is not read: save the array as float32 or float16",
                other.chars().take(20).collect::<String>()
            )))
        }
    };
    if value("fortran_order")?.starts_with("True") {
        return Err(bad(
            "the .npy array is in Fortran order: save np.ascontiguousarray(a) instead",
        ));
    }
    let shape_text = value("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("the .npy shape is not a tuple"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().ok())
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| bad("the .npy shape holds something other than sizes"))?;
    let values = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| bad(&format!("the .npy shape {shape:?} overflows")))?;
    let bytes = values
        .checked_mul(dtype.size().expect("a float"))
        .ok_or_else(|| bad("the .npy array's size overflows"))?;
    let end = data_start
        .checked_add(bytes)
        .filter(|&e| e <= file_len)
        .ok_or_else(|| {
            bad(&format!(
                "the .npy array needs {bytes} bytes after its header; the file has {}",
                file_len - data_start
            ))
        })?;
    Ok(Entry {
        name: "array".into(),
        dtype,
        shape,
        start: data_start,
        end,
        big_endian,
    })
}

/// The values of `entry`, from exactly its bytes (`end − start` of them), as f32. Refuses
/// the dtypes not read, an empty tensor, one past [`MAX_VALUES`], and values that are not
/// finite (named by index and count: a quantizer's range needs finite values).
pub fn read(entry: &Entry, bytes: &[u8]) -> Result<Vec<f32>> {
    let name: String = entry.name.chars().take(80).collect();
    if !entry.dtype.readable() {
        return Err(bad(&format!(
            "tensor {name:?} is {}: only F32, F16 and BF16 tensors are read",
            entry.dtype.name()
        )));
    }
    let n = entry.values();
    if n == 0 {
        return Err(bad(&format!(
            "tensor {name:?} is empty: nothing to quantize"
        )));
    }
    if n > MAX_VALUES {
        return Err(bad(&format!(
            "tensor {name:?} has {n} values: more than the {MAX_VALUES} read at once"
        )));
    }
    if bytes.len() as u64 != entry.end - entry.start {
        return Err(bad(&format!(
            "tensor {name:?}: {} bytes read, {} expected",
            bytes.len(),
            entry.end - entry.start
        )));
    }
    let word = |c: &[u8]| -> u32 {
        match (c.len(), entry.big_endian) {
            (4, false) => u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            (4, true) => u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            (_, false) => u32::from(u16::from_le_bytes([c[0], c[1]])),
            (_, true) => u32::from(u16::from_be_bytes([c[0], c[1]])),
        }
    };
    let values: Vec<f32> = match entry.dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_bits(word(c)))
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| f32::from_bits(word(c) << 16))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16_to_f32(word(c) as u16))
            .collect(),
        Dtype::Other(_) => unreachable!("refused above"),
    };
    let bad_values = values.iter().filter(|v| !v.is_finite()).count();
    if bad_values > 0 {
        let first = values.iter().position(|v| !v.is_finite()).expect("counted");
        return Err(bad(&format!(
            "tensor {name:?} has {bad_values} values that are NaN or infinite (the first at index {first}): a range needs finite values"
        )));
    }
    Ok(values)
}

/// IEEE half to f32, exactly (subnormals, infinities and NaN included).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: m · 2^−24, exact in f32.
            let v = m as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// A safetensors file holding `tensors` (name, dtype name, shape, little-endian bytes), with
/// optional string metadata: what the CLI's `--emit-codes` and the tests write.
pub fn write_safetensors(
    tensors: &[(String, &str, Vec<usize>, Vec<u8>)],
    metadata: &[(String, String)],
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::Value::Object(
                metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    let mut at = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [at, at + bytes.len()]}),
        );
        at += bytes.len();
    }
    let mut text = serde_json::Value::Object(header).to_string();
    // Data aligned to 8 bytes, as the reference writer pads with spaces.
    while !(8 + text.len()).is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + at);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    for (_, _, _, bytes) in tensors {
        out.extend_from_slice(bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn a_written_file_lists_and_reads_back() {
        let file = write_safetensors(
            &[
                (
                    "conv1.weight".into(),
                    "F32",
                    vec![2, 3],
                    f32_bytes(&[1.0, -2.0, 3.5, 0.0, 4.0, -1.0]),
                ),
                ("b".into(), "BF16", vec![2], vec![0x80, 0x3f, 0x00, 0xc0]),
                ("ids".into(), "I64", vec![1], vec![0; 8]),
            ],
            &[("format".into(), "pt".into())],
        );
        let n = header_len(&file[..12], file.len() as u64).unwrap();
        let list = list(&file[..n as usize], file.len() as u64).unwrap();
        assert_eq!(list.len(), 3);
        let e = list.iter().find(|e| e.name == "conv1.weight").unwrap();
        let v = read(e, &file[e.start as usize..e.end as usize]).unwrap();
        assert_eq!(v, [1.0, -2.0, 3.5, 0.0, 4.0, -1.0]);
        let b = list.iter().find(|e| e.name == "b").unwrap();
        assert_eq!(
            read(b, &file[b.start as usize..b.end as usize]).unwrap(),
            [1.0, -2.0]
        );
        let ids = list.iter().find(|e| e.name == "ids").unwrap();
        assert!(read(ids, &file[ids.start as usize..ids.end as usize])
            .unwrap_err()
            .to_string()
            .contains("only F32, F16 and BF16"));
    }

    #[test]
    fn half_floats_decode_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        // Every half round-trips through f32 and the formats' own f16 rounding.
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_finite() {
                assert_eq!(crate::formats::fp16_round(x), x, "{h:#06x}");
            }
        }
    }

    #[test]
    fn npy_headers_of_each_version() {
        let body = f32_bytes(&[1.5, -0.5, 2.0, 8.0]);
        let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }".to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut file = b"\x93NUMPY\x01\x00".to_vec();
        file.extend_from_slice(&(header.len() as u16).to_le_bytes());
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&body);
        let l = list(&file, file.len() as u64).unwrap();
        assert_eq!(l[0].shape, [2, 2]);
        assert_eq!(
            read(&l[0], &file[l[0].start as usize..]).unwrap(),
            [1.5, -0.5, 2.0, 8.0]
        );
        // Fortran order, another dtype and a short file are refused in words.
        let fortran = String::from_utf8(file.clone())
            .unwrap_or_default()
            .replace("False", "True ");
        assert!(list(fortran.as_bytes(), fortran.len() as u64).is_err());
        let short = &file[..file.len() - 1];
        assert!(list(short, short.len() as u64)
            .unwrap_err()
            .to_string()
            .contains("needs 16 bytes"));
    }

    #[test]
    fn hostile_headers_get_clear_messages() {
        let msg = |file: &[u8]| list(file, file.len() as u64).unwrap_err().to_string();
        // A 100 MB header, refused from its length alone.
        let mut huge = (100u64 << 20).to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(msg(&huge).contains("more than the 16 MB allowed"));
        let with = |json: &str| {
            let mut f = (json.len() as u64).to_le_bytes().to_vec();
            f.extend_from_slice(json.as_bytes());
            f.extend_from_slice(&[0u8; 16]);
            f
        };
        assert!(msg(&with("{\"a\":")).contains("not valid JSON"));
        let mut not_utf8 = 4u64.to_le_bytes().to_vec();
        not_utf8.extend_from_slice(&[0xff, 0xfe, 0x7b, 0x7d]);
        assert!(msg(&not_utf8).contains("not UTF-8"));
        assert!(msg(&with(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,64]}}"#
        ))
        .contains("outside the file"));
        assert!(msg(&with(
            r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        ))
        .contains("needs 12 bytes"));
        assert!(msg(&with(
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#
        ))
        .contains("overflows"));
        assert!(msg(&with(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#)).contains("overlap"));
        assert!(msg(&with(
            r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#
        ))
        .contains("unknown dtype"));
        assert!(msg(&[1, 2, 3]).contains("shorter"));
        // Empty and non-finite tensors are listed, and refused when read.
        let empty = with(r#"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}"#);
        let l = list(&empty, empty.len() as u64).unwrap();
        assert!(read(&l[0], &[]).unwrap_err().to_string().contains("empty"));
        let mut nan = with(r#"{"n":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#);
        let at = nan.len() - 16;
        nan[at..at + 8].copy_from_slice(&f32_bytes(&[1.0, f32::NAN]));
        let l = list(&nan, nan.len() as u64).unwrap();
        let e = &l[0];
        assert!(read(e, &nan[e.start as usize..e.end as usize])
            .unwrap_err()
            .to_string()
            .contains("NaN or infinite"));
    }
}
