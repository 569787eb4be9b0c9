//! `qp qat`: fine-tune the network with the recipe's fake quantization (STE, Adam) and print the
//! curve — the fake-quantized network's test accuracy and loss every `--every` steps.

use crate::format::Format;
use quant_core::data::Digits;
use quant_core::eval::evaluate;
use quant_core::fmt::table;
use quant_core::model::MnistNet;
use quant_core::qat::{Qat, QatConfig};
use quant_core::recipe::Recipe;
use quant_core::weights;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct QatArgs {
    /// Training steps (batches).
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// Adam's learning rate (constant).
    #[arg(long, default_value_t = 1e-4)]
    lr: f32,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// Evaluate the 2,000 test digits every this many steps.
    #[arg(long, default_value_t = 25)]
    every: usize,
    /// Write the fine-tuned FP32 weights here (safetensors, PyTorch's names).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Point {
    step: usize,
    /// Mean training loss over the steps since the previous point (none at step 0).
    train_loss: Option<f64>,
    test_accuracy: f64,
    test_loss: f64,
}

pub fn run(
    args: &QatArgs,
    recipe: Recipe,
    net: &MnistNet,
    train: &Digits,
    test: &Digits,
    format: Format,
) -> Result<String, String> {
    if args.every == 0 {
        return Err("--every must be at least 1".into());
    }
    let config = QatConfig {
        recipe,
        steps: args.steps,
        learning_rate: args.lr,
        batch_size: args.batch_size,
        seed: args.seed,
    };
    let images = test.images_f32();
    let fp32 = evaluate(net, images.view(), &test.labels).map_err(|e| e.to_string())?;
    let mut qat = Qat::new(net, train, config).map_err(|e| e.to_string())?;
    let point = |qat: &Qat, train_loss: Option<f64>| -> Result<Point, String> {
        let q = qat.quantized().map_err(|e| e.to_string())?;
        let e = evaluate(&q, images.view(), &test.labels).map_err(|e| e.to_string())?;
        Ok(Point {
            step: qat.steps_done(),
            train_loss,
            test_accuracy: e.accuracy,
            test_loss: e.loss,
        })
    };
    let started = std::time::Instant::now();
    let mut curve = vec![point(&qat, None)?];
    let (mut sum, mut n) = (0.0f64, 0usize);
    while !qat.finished() {
        sum += f64::from(qat.step().map_err(|e| e.to_string())?);
        n += 1;
        if qat.steps_done() % args.every == 0 || qat.finished() {
            curve.push(point(&qat, Some(sum / n as f64))?);
            (sum, n) = (0.0, 0);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} steps of {} digits in {seconds:.1} s with the evaluations ({:.0} img/s overall)",
        args.steps,
        args.batch_size,
        (args.steps * args.batch_size) as f64 / seconds
    );
    if let Some(path) = &args.out {
        let meta = HashMap::from([
            ("qat.recipe".to_string(), recipe.to_string()),
            ("qat.steps".to_string(), args.steps.to_string()),
            ("qat.lr".to_string(), args.lr.to_string()),
            ("qat.seed".to_string(), args.seed.to_string()),
        ]);
        let bytes = weights::to_safetensors(qat.weights(), meta).map_err(|e| e.to_string())?;
        crate::write(path, &bytes)?;
    }
    Ok(match format {
        Format::Json => crate::json(&serde_json::json!({
            "recipe": recipe.to_string(),
            "fp32": { "accuracy": fp32.accuracy, "loss": fp32.loss },
            "curve": curve,
        })),
        _ => {
            let rows: Vec<Vec<String>> = curve
                .iter()
                .map(|p| {
                    vec![
                        p.step.to_string(),
                        p.train_loss.map_or("–".into(), |l| format!("{l:.4}")),
                        format!("{:.2}", p.test_accuracy),
                        format!("{:.4}", p.test_loss),
                    ]
                })
                .collect();
            format!(
                "QAT, recipe {recipe}; FP32 {:.2} % (loss {:.4}); test accuracy of the fake-quantized network on {} digits:\n\n{}",
                fp32.accuracy,
                fp32.loss,
                test.len(),
                table(
                    format.markdown(),
                    &["step", "train loss", "test acc %", "test loss"],
                    &rows
                )
            )
        }
    })
}
