//! `qp inspect`: the essay's printout for any tensor of a reader's `.safetensors` or `.npy`
//! file — shape, dtype, range, scale, zero_point and error under the recipe and under the other
//! scheme — reading only the header and that tensor's bytes.

use crate::format::Format;
use crate::{json, RecipeArgs};
use quant_core::fmt::{table, thousands};
use quant_core::report::{tensor_printout, TensorPrintout, TensorRow};
use quant_core::tensor_file::{self, Entry};
use quant_core::view::axis_first;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A `.safetensors` or `.npy` file.
    file: PathBuf,
    /// The tensor to quantize (without it, a file of several tensors is listed).
    #[arg(long)]
    tensor: Option<String>,
    /// Writes the tensor's integer codes, with its scale and zero_point per block, as
    /// safetensors (`codes` I8, or I32 past 8 bits; `scale` F32; `zero_point` I32).
    #[arg(long)]
    emit_codes: Option<PathBuf>,
    /// The channel axis (PyTorch's `ch_axis`) per-channel blocks run along; 0 by default. The
    /// tensor is laid out with that axis first, and `--emit-codes` writes it so.
    #[arg(long, default_value_t = 0)]
    axis: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn read_range(file: &mut File, start: u64, end: u64, path: &Path) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; (end - start) as usize];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(buf)
}

/// The file's tensors, from its header alone.
fn entries(path: &Path) -> Result<(File, Vec<Entry>), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let first = read_range(&mut file, 0, len.min(12), path)?;
    let need =
        tensor_file::header_len(&first, len).map_err(|e| format!("{}: {e}", path.display()))?;
    let head = read_range(&mut file, 0, need, path)?;
    let list = tensor_file::list(&head, len).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((file, list))
}

pub fn inspect(args: &InspectArgs, recipe: &RecipeArgs) -> Result<String, String> {
    let recipe = recipe.recipe()?.default;
    let (mut file, list) = entries(&args.file)?;
    let md = args.format.markdown();
    let chosen = match &args.tensor {
        Some(name) => Some(
            list.iter()
                .find(|e| &e.name == name)
                .ok_or_else(|| format!("--tensor {name:?}: the file has no such tensor (run without --tensor to list them)"))?,
        ),
        None => {
            let readable: Vec<&Entry> = list.iter().filter(|e| e.dtype.readable()).collect();
            (readable.len() == 1).then(|| readable[0])
        }
    };
    let Some(entry) = chosen else {
        if args.format == Format::Json {
            return Ok(json(&list));
        }
        let cells: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                vec![
                    e.name.clone(),
                    e.dtype.name().to_string(),
                    format!("{:?}", e.shape),
                    thousands(e.values() as usize),
                ]
            })
            .collect();
        return Ok(format!(
            "{} tensors in {} (choose one with --tensor)\n\n{}",
            list.len(),
            args.file.display(),
            table(md, &["tensor", "dtype", "shape", "values"], &cells)
        ));
    };
    let bytes = read_range(&mut file, entry.start, entry.end, &args.file)?;
    let w =
        tensor_file::read(entry, &bytes).map_err(|e| format!("{}: {e}", args.file.display()))?;
    if args.axis > 0 && args.axis >= entry.shape.len() {
        return Err(format!(
            "--axis {}: the tensor has {} dimensions",
            args.axis,
            entry.shape.len()
        ));
    }
    let (w, shape) = axis_first(&w, &entry.shape, args.axis);
    let TensorPrintout {
        min,
        max,
        rows,
        quant,
    } = tensor_printout(&w, &shape, recipe).map_err(|e| e.to_string())?;
    if let Some(out) = &args.emit_codes {
        if !recipe.is_int() {
            return Err(
                "--emit-codes needs the integer grid (dtype int): a format's codes are its own"
                    .into(),
            );
        }
        let narrow = recipe.bits.get() <= 8;
        let mut codes = Vec::with_capacity(w.len() * if narrow { 1 } else { 4 });
        for b in 0..quant.blocks.len() {
            for c in quant.block_codes(&w, b) {
                if narrow {
                    codes.push(c as i8 as u8);
                } else {
                    codes.extend_from_slice(&c.to_le_bytes());
                }
            }
        }
        let scales: Vec<u8> = quant
            .blocks
            .iter()
            .flat_map(|b| b.qparams.scale.to_le_bytes())
            .collect();
        let zps: Vec<u8> = quant
            .blocks
            .iter()
            .flat_map(|b| b.qparams.zero_point.to_le_bytes())
            .collect();
        let n = quant.blocks.len();
        let bytes = tensor_file::write_safetensors(
            &[
                (
                    "codes".into(),
                    if narrow { "I8" } else { "I32" },
                    shape.clone(),
                    codes,
                ),
                ("scale".into(), "F32", vec![n], scales),
                ("zero_point".into(), "I32", vec![n], zps),
            ],
            &[
                ("tensor".into(), entry.name.clone()),
                ("recipe".into(), rows[0].recipe.clone()),
                ("axis".into(), args.axis.to_string()),
            ],
        );
        std::fs::write(out, bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    if args.format == Format::Json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            tensor: &'a str,
            dtype: &'static str,
            shape: &'a [usize],
            min: f32,
            max: f32,
            rows: &'a [TensorRow],
        }
        return Ok(json(&Out {
            tensor: &entry.name,
            dtype: entry.dtype.name(),
            shape: &entry.shape,
            min,
            max,
            rows: &rows,
        }));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.recipe.clone(),
                r.scale
                    .map_or(format!("{} blocks", r.blocks), |s| format!("{s:.7}")),
                r.zero_point.map_or("—".into(), |z| z.to_string()),
                format!("{:.6}", r.mean_abs_error),
                r.sqnr_db.map_or("∞".into(), |d| format!("{d:.2}")),
            ]
        })
        .collect();
    Ok(format!(
        "{}: shape {:?}, {}, {} values, min {min:.6}, max {max:.6}\n\n{}",
        entry.name,
        entry.shape,
        entry.dtype.name(),
        thousands(w.len()),
        table(
            md,
            &[
                "recipe",
                "scale",
                "zero_point",
                "mean abs error",
                "SQNR (dB)"
            ],
            &cells
        )
    ))
}
