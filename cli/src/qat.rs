//! `qp qat`: fine-tune the network with the recipe's fake quantization (STE, Adam) and print the
//! curve — the fake-quantized network's test accuracy and loss every `--every` steps.

use crate::format::Format;
use quant_core::data::Digits;
use quant_core::eval::evaluate;
use quant_core::fmt::table;
use quant_core::model::MnistNet;
use quant_core::qat::{part_gradient, Curve, Qat, QatConfig, WeightObserver};
use quant_core::recipe::Recipe;
use quant_core::weights;
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
    /// Learn each layer's scale (LSQ, PyTorch's gradients) instead of recomputing it each step.
    #[arg(long)]
    lsq: bool,
    /// Average each block's weight range over the steps (PyTorch's MovingAverageMinMaxObserver,
    /// 0.01) instead of taking it from the current weights each step.
    #[arg(long)]
    moving_average: bool,
    /// Fake-quantize the activations too (quint8 affine over 0..2^N−1, moving-average observers).
    #[arg(long)]
    activation_bits: Option<u8>,
    /// Write the fine-tuned FP32 weights here (safetensors, PyTorch's names).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One step of `qat`, its batch's parts' gradients each on a thread of its own, as the browser
/// computes them in its workers: the same parts, combined in the same order, so the weights are
/// those of [`Qat::step`] bit for bit. With activation fake quantization a step is one part
/// (its observers see the batch whole), computed here.
fn step_on_threads(qat: &mut Qat, train: &Digits) -> quant_core::Result<f32> {
    let plan = qat.plan()?;
    if plan.parts.len() == 1 {
        let part = qat.gradient(&plan, 0)?;
        return qat.apply(plan, &[part]);
    }
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .parts
            .iter()
            .map(|digits| s.spawn(|| part_gradient(&plan.fake, train, digits)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(quant_core::Error::Qat("a gradient thread panicked".into()))
                })
            })
            .collect::<quant_core::Result<Vec<_>>>()
    })?;
    qat.apply(plan, &parts)
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
    // The batch's parts each run on a thread of their own (step_on_threads); matrixmultiply's
    // own threads inside every part's products would only contend with them on this machine's
    // cores: 2,750–2,820 img/s with its threads, 3,370–3,510 with the parts' (200 steps, 2
    // cores; with AVX-512 products and vectorized rounding and pooling since, ~5,500). Read
    // once, at the first product: none has run before this.
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
    let config = QatConfig {
        recipe,
        steps: args.steps,
        learning_rate: args.lr,
        batch_size: args.batch_size,
        seed: args.seed,
        lsq: args.lsq,
        weight_observer: if args.moving_average {
            WeightObserver::MovingAverage
        } else {
            WeightObserver::Current
        },
        activation_bits: args.activation_bits,
    };
    let images = test.images_f32();
    let fp32 = evaluate(net, images.view(), &test.labels).map_err(|e| e.to_string())?;
    let mut qat = Qat::new(net, train, config).map_err(|e| e.to_string())?;
    let mut curve = Curve::default();
    let point = |qat: &Qat, curve: &mut Curve| -> Result<(), String> {
        let e = qat
            .evaluate(images.view(), &test.labels)
            .map_err(|e| e.to_string())?;
        curve.point(qat.steps_done(), e, qat.scales());
        Ok(())
    };
    let started = std::time::Instant::now();
    let mut training = std::time::Duration::ZERO;
    point(&qat, &mut curve)?;
    while !qat.finished() {
        let t = std::time::Instant::now();
        let loss = step_on_threads(&mut qat, train).map_err(|e| e.to_string())?;
        training += t.elapsed();
        curve.add_loss(loss);
        if qat.steps_done() % args.every == 0 || qat.finished() {
            point(&qat, &mut curve)?;
        }
    }
    let curve = curve.points;
    let seconds = started.elapsed().as_secs_f64();
    let images = (args.steps * args.batch_size) as f64;
    let train_rate = images / training.as_secs_f64().max(1e-9);
    eprintln!(
        "{} steps of {} digits in {seconds:.1} s with the evaluations ({:.0} img/s overall, {train_rate:.0} img/s in the steps)",
        args.steps,
        args.batch_size,
        images / seconds
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
            // The training steps' own time (the evaluations not counted), for scripts/bench.sh.
            "train_images_per_second": train_rate,
        })),
        _ => {
            let rows: Vec<Vec<String>> = curve
                .iter()
                .map(|p| {
                    vec![
                        p.step.to_string(),
                        p.train_loss.map_or("–".into(), |l| format!("{l:.4}")),
                        format!("{:.2}", p.test.accuracy),
                        format!("{:.4}", p.test.loss),
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
