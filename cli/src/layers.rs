//! `qp sensitivity` and `qp allocate`: how each layer alone bears fewer bits, and the most
//! accurate per-layer widths under a size budget.

use crate::format::Format;
use crate::{json, load, Inputs, RecipeArgs};
use quant_core::fmt::{table, thousands};
use quant_core::quant::Bits;
use quant_core::study::{self, Allocation, Measured};
use std::time::Instant;

#[derive(clap::Args)]
pub struct AllocateArgs {
    /// The largest model, in bytes (weights packed at their widths, scales, zero points and the
    /// FP32 biases counted, as the app's size column). Without it, the whole front is printed.
    #[arg(long)]
    budget_bytes: Option<usize>,
}

fn bits_text(bits: &[Bits; 4]) -> String {
    bits.iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join("/")
}

pub fn sensitivity(recipe: &RecipeArgs, inputs: &Inputs) -> Result<String, String> {
    let base = recipe.recipe()?.default;
    let (net, test) = load(inputs)?;
    let start = Instant::now();
    let rows = study::sensitivity(&net, &test, base, &Bits::ALL).map_err(|e| e.to_string())?;
    let images = test.images_f32();
    let fp32 =
        quant_core::eval::evaluate(&net, images.view(), &test.labels).map_err(|e| e.to_string())?;
    eprintln!(
        "{} settings × {} digits in {:.2} s",
        rows.len(),
        test.len(),
        start.elapsed().as_secs_f64()
    );
    if inputs.format == Format::Json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            fp32: quant_core::eval::Evaluation,
            sensitivity: &'a [study::Sensitivity],
        }
        return Ok(json(&Out {
            fp32,
            sensitivity: &rows,
        }));
    }
    // One row per layer, one column per width: the accuracy drop from FP32 in points.
    let mut headers = vec!["layer (alone)".to_string()];
    headers.extend(Bits::ALL.iter().map(|b| format!("{b}-bit")));
    let cells: Vec<Vec<String>> = quant_core::model::Layer::ALL
        .iter()
        .map(|&l| {
            std::iter::once(l.name().to_string())
                .chain(rows.iter().filter(|r| r.layer == l).map(|r| {
                    format!(
                        "{:.2}% ({:+.2})",
                        r.evaluation.accuracy,
                        r.evaluation.accuracy - fp32.accuracy
                    )
                }))
                .collect()
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let sqnr_cells: Vec<Vec<String>> = quant_core::model::Layer::ALL
        .iter()
        .map(|&l| {
            std::iter::once(l.name().to_string())
                .chain(
                    rows.iter()
                        .filter(|r| r.layer == l)
                        .map(|r| r.error.sqnr_db.map_or("∞".into(), |d| format!("{d:.1}"))),
                )
                .collect()
        })
        .collect();
    let md = inputs.format.markdown();
    let how = format!(
        "{}, {}",
        base.scheme,
        quant_core::report::granularity_words(base.granularity)
    );
    Ok(format!(
        "Sensitivity: each layer quantized alone ({how}), the others FP32; test accuracy on {} \
         digits (change from FP32's {:.2}%)\n\n{}\nThe same layer's weight SQNR (dB)\n\n{}",
        test.len(),
        fp32.accuracy,
        table(md, &headers, &cells),
        table(md, &headers, &sqnr_cells)
    ))
}

pub fn allocate(
    args: &AllocateArgs,
    recipe: &RecipeArgs,
    inputs: &Inputs,
) -> Result<String, String> {
    let base = recipe.recipe()?.default;
    let (net, test) = load(inputs)?;
    let start = Instant::now();
    let found: Allocation =
        study::allocate(&net, &test, base, &Bits::ALL).map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "searched {} assignments by prediction, measured {} on {} digits, in {secs:.2} s",
        Bits::ALL.len().pow(4),
        found.measured.len(),
        test.len()
    );
    let front = study::front_by(&found.measured, |m| {
        (m.candidate.size_bytes as f64, m.evaluation.accuracy)
    });
    let best = args
        .budget_bytes
        .map(|b| (b, study::best_under(&found.measured, b)));
    if inputs.format == Format::Json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            fp32: quant_core::eval::Evaluation,
            measured: &'a [Measured],
            front: &'a [Measured],
            budget_bytes: Option<usize>,
            best: Option<Measured>,
        }
        return Ok(json(&Out {
            fp32: found.fp32,
            measured: &found.measured,
            front: &front,
            budget_bytes: args.budget_bytes,
            best: best.and_then(|(_, b)| b),
        }));
    }
    let md = inputs.format.markdown();
    let row = |m: &Measured| {
        vec![
            bits_text(&m.candidate.bits),
            thousands(m.candidate.size_bytes),
            format!("{:.2}%", m.evaluation.accuracy),
            format!("{:.4}", m.evaluation.loss),
            m.candidate.recipe.to_string(),
        ]
    };
    let headers = [
        "bits conv1/conv2/fc1/fc2",
        "size (bytes)",
        "accuracy",
        "loss",
        "recipe",
    ];
    let mut out = format!(
        "Per-layer bit widths: {} assignments ranked by predicted loss (FP32's plus each layer's \
         increase alone), {} on the two predicted fronts measured on {} digits; the measured \
         Pareto front of size against accuracy (FP32: {:.2}%, {} bytes)\n\n",
        Bits::ALL.len().pow(4),
        found.measured.len(),
        test.len(),
        found.fp32.accuracy,
        thousands(quant_core::report::model_size_bytes(None))
    );
    out += &table(md, &headers, &front.iter().map(row).collect::<Vec<_>>());
    if let Some((budget, best)) = best {
        out += &match best {
            Some(m) => format!(
                "\nBest under {} bytes: {} — {:.2}% in {} bytes\n",
                thousands(budget),
                m.candidate.recipe,
                m.evaluation.accuracy,
                thousands(m.candidate.size_bytes)
            ),
            None => format!(
                "\nNothing fits in {} bytes: the smallest is {} bytes\n",
                thousands(budget),
                thousands(front.first().map_or(0, |m| m.candidate.size_bytes))
            ),
        };
    }
    Ok(out)
}

#[derive(clap::Args)]
pub struct FlipsArgs {
    /// Also print this test digit's class probabilities under both networks.
    #[arg(long)]
    digit: Option<usize>,
}

/// The test digits whose answer the recipe changes, as the app's flips panel lists them.
pub fn flips(args: &FlipsArgs, recipe: &RecipeArgs, inputs: &Inputs) -> Result<String, String> {
    let recipe = recipe.recipe()?;
    let (net, test) = load(inputs)?;
    let q = net.fake_quantized(&recipe).map_err(|e| e.to_string())?;
    let (f, s) = (study::scores(&net, &test), study::scores(&q, &test));
    let list = study::flips(&f, &s, &test.labels);
    let digit = match args.digit {
        Some(i) if i >= test.len() => {
            return Err(format!("--digit {i}: there are {} test digits", test.len()))
        }
        Some(i) => {
            let row = |x: &[f32]| study::softmax(&x[i * 10..(i + 1) * 10]);
            Some((i, row(&f), row(&s)))
        }
        None => None,
    };
    if inputs.format == Format::Json {
        #[derive(serde::Serialize)]
        struct Digit {
            index: usize,
            label: u8,
            fp32: [f32; 10],
            quantized: [f32; 10],
        }
        #[derive(serde::Serialize)]
        struct Out<'a> {
            recipe: String,
            flips: &'a [study::Flip],
            digit: Option<Digit>,
        }
        return Ok(json(&Out {
            recipe: recipe.to_string(),
            flips: &list,
            digit: digit.map(|(index, fp32, quantized)| Digit {
                index,
                label: test.labels[index],
                fp32,
                quantized,
            }),
        }));
    }
    let cells: Vec<Vec<String>> = list
        .iter()
        .map(|x| {
            vec![
                x.index.to_string(),
                x.label.to_string(),
                format!("{} ({:.0}%)", x.fp32, 100.0 * x.fp32_confidence),
                format!("{} ({:.0}%)", x.quantized, 100.0 * x.quantized_confidence),
            ]
        })
        .collect();
    let mut out = format!(
        "{} of {} test digits change their answer under {recipe}\n\n",
        list.len(),
        test.len()
    );
    out += &table(
        inputs.format.markdown(),
        &["digit", "label", "FP32", "quantized"],
        &cells,
    );
    if let Some((i, fp32, quant)) = digit {
        let rows: Vec<Vec<String>> = (0..10)
            .map(|c| {
                vec![
                    c.to_string(),
                    format!("{:.4}", fp32[c]),
                    format!("{:.4}", quant[c]),
                ]
            })
            .collect();
        out += &format!("\nTest digit {i} (label {}):\n\n", test.labels[i]);
        out += &table(
            inputs.format.markdown(),
            &["class", "FP32", "quantized"],
            &rows,
        );
    }
    Ok(out)
}
