//! Hostile files: 100,000 generated `.safetensors` and `.npy` files — valid ones mutated
//! (bytes flipped, truncated, lengths and offsets rewritten), headers of random JSON, random
//! bytes — each listed and each of its tensors read. None may panic; each failure is an error
//! with a message. `QP_FUZZ_FILES=1000000 cargo test -p quant-core --test tensor_files` runs
//! more.

use quant_core::rng::Rng;
use quant_core::tensor_file::{header_len, list, read, write_safetensors};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn valid_safetensors(rng: &mut Rng) -> Vec<u8> {
    let tensors: Vec<(String, &str, Vec<usize>, Vec<u8>)> = (0..1 + rng.below(4))
        .map(|i| {
            let shape: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(5)).collect();
            let n: usize = shape.iter().product();
            let (dtype, bytes) = match rng.below(4) {
                0 => ("F16", (0..2 * n).map(|_| rng.below(256) as u8).collect()),
                1 => ("BF16", (0..2 * n).map(|_| rng.below(256) as u8).collect()),
                2 => ("I8", (0..n).map(|_| rng.below(256) as u8).collect()),
                _ => (
                    "F32",
                    f32_bytes(&(0..n).map(|_| rng.uniform(-2.0, 2.0)).collect::<Vec<_>>()),
                ),
            };
            (format!("t{i}.weight"), dtype, shape, bytes)
        })
        .collect();
    write_safetensors(&tensors, &[("format".into(), "pt".into())])
}

fn valid_npy(rng: &mut Rng) -> Vec<u8> {
    let shape: Vec<usize> = (0..rng.below(4)).map(|_| 1 + rng.below(4)).collect();
    let n: usize = shape.iter().product();
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let descr = ["<f4", "<f2", ">f4", "<f8", "|u1"][rng.below(5)];
    let header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}\n");
    let version = [1u8, 2, 3][rng.below(3)];
    let mut f = b"\x93NUMPY".to_vec();
    f.extend_from_slice(&[version, 0]);
    if version == 1 {
        f.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        f.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    f.extend_from_slice(header.as_bytes());
    f.extend((0..4 * n).map(|_| rng.below(256) as u8));
    f
}

/// A header of random JSON shaped like a safetensors one: wrong types, huge or negative
/// numbers, missing fields.
fn random_header(rng: &mut Rng) -> Vec<u8> {
    let num = |rng: &mut Rng| -> String {
        match rng.below(6) {
            0 => "-1".into(),
            1 => u64::MAX.to_string(),
            2 => "1e300".into(),
            3 => "\"4\"".into(),
            4 => (1u64 << rng.below(63)).to_string(),
            _ => rng.below(64).to_string(),
        }
    };
    let entries: Vec<String> = (0..rng.below(4))
        .map(|i| {
            let dtype = ["\"F32\"", "\"BF16\"", "\"X\"", "3", "null"][rng.below(5)];
            let shape: Vec<String> = (0..rng.below(5)).map(|_| num(rng)).collect();
            format!(
                "\"t{i}\":{{\"dtype\":{dtype},\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                shape.join(","),
                num(rng),
                num(rng)
            )
        })
        .collect();
    let json = format!("{{{}}}", entries.join(","));
    let mut f = (json.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(json.as_bytes());
    f.extend((0..rng.below(128)).map(|_| rng.below(256) as u8));
    f
}

fn mutate(mut f: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    match rng.below(5) {
        0 if !f.is_empty() => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(f.len());
                f[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let keep = rng.below(f.len() + 1);
            f.truncate(keep);
        }
        2 if f.len() >= 8 => {
            // A header length that lies.
            let n = [0u64, 1, u64::MAX, 1 << 40, rng.below(1 << 20) as u64][rng.below(5)];
            f[..8].copy_from_slice(&n.to_le_bytes());
        }
        3 => f.extend((0..rng.below(64)).map(|_| rng.below(256) as u8)),
        _ => {}
    }
    f
}

/// Lists `file` as a page does (its first bytes, then the header, then each tensor's bytes).
/// Returns whether it listed.
fn open(file: &[u8]) -> bool {
    let len = file.len() as u64;
    let first = &file[..file.len().min(12)];
    let Ok(n) = header_len(first, len) else {
        return false;
    };
    let Ok(entries) = list(&file[..n as usize], len) else {
        return false;
    };
    for e in &entries {
        // The range was checked against the file: slicing it cannot go out of bounds.
        let bytes = &file[e.start as usize..e.end as usize];
        let _ = read(e, bytes);
    }
    true
}

#[test]
fn a_hundred_thousand_hostile_files_never_panic() {
    let count: usize = std::env::var("QP_FUZZ_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let mut rng = Rng::new(20261207);
    let (mut listed, mut refused) = (0usize, 0usize);
    for i in 0..count {
        let file = match i % 4 {
            0 => mutate(valid_safetensors(&mut rng), &mut rng),
            1 => mutate(valid_npy(&mut rng), &mut rng),
            2 => mutate(random_header(&mut rng), &mut rng),
            _ => (0..rng.below(96)).map(|_| rng.below(256) as u8).collect(),
        };
        match catch_unwind(AssertUnwindSafe(|| open(&file))) {
            Ok(true) => listed += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("file {i} panicked: {file:?}"),
        }
    }
    eprintln!("{count} files: {listed} listed, {refused} refused with a message, 0 panics");
    assert_eq!(listed + refused, count);
    // Both kinds occur: the generator makes valid files as well as broken ones.
    assert!(
        listed > count / 10 && refused > count / 10,
        "{listed} listed, {refused} refused"
    );
}

mod common;

fn sha256(v: &[f32]) -> String {
    use sha2::{Digest, Sha256};
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads `tensor` of a golden file as a page does: header first, then the tensor's bytes.
fn read_golden(path: &str, tensor: &str) -> (Vec<usize>, Vec<f32>) {
    let file = common::file(path);
    let n = header_len(&file[..12], file.len() as u64).unwrap();
    let entries = list(&file[..n as usize], file.len() as u64).unwrap();
    let e = entries.iter().find(|e| e.name == tensor).unwrap();
    (
        e.shape.clone(),
        read(e, &file[e.start as usize..e.end as usize]).unwrap(),
    )
}

#[test]
fn pytorch_and_numpy_files_read_as_pytorch_reads_them() {
    // Written by PyTorch (F32, and its own F16 and BF16 casts) and numpy (scripts/inspect_goldens.py);
    // the values must be what PyTorch's `.float()` gives, bit for bit.
    let golden = common::json("core/tests/goldens/inspect.json");
    for name in ["conv1.weight", "conv1.weight.f16", "conv1.weight.bf16"] {
        let (shape, v) = read_golden("core/tests/goldens/inspect.safetensors", name);
        assert_eq!(shape, [64, 3, 7, 7]);
        assert_eq!(sha256(&v), golden["values"][name], "{name}");
    }
    let (shape, v) = read_golden("core/tests/goldens/inspect.npy", "array");
    assert_eq!(shape, [64, 3, 7, 7]);
    assert_eq!(sha256(&v), golden["values"]["conv1.weight"]);
}
