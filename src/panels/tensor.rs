//! Your own tensor: open or drop a `.safetensors` or `.npy` file; it is read here, in the page,
//! and never leaves it. The header is read first and alone (`File.slice`, bounded by
//! quant_core::tensor_file), the tensors are listed, and only the chosen tensor's bytes are
//! read: a checkpoint of gigabytes opens at once and is never whole in memory. The chosen tensor
//! gets the essay's printout under the reader's recipe and the other scheme (what `qp inspect`
//! prints), and its histogram on the grid.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use crate::panels::staircase::{formulas, Filled};
use leptos::prelude::*;
use quant_core::fmt::sig;
use quant_core::fmt::thousands;
use quant_core::model::Layer;
use quant_core::quantizer::ClipSweep;
use quant_core::report::tensor_printout;
use quant_core::tensor_file::{self, Entry};
use quant_core::url::{ModelChoice, UrlState};
use quant_core::view::{axis_first, block_schemes, channel_ranges, error_curve_of, histogram_view};
use quant_core::weights;
use std::sync::Arc;
use wasm_bindgen_futures::JsFuture;

/// The bytes `start..end` of `file`, as the browser reads them.
async fn slice(file: &web_sys::File, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let blob = file
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|_| "the file could not be sliced".to_string())?;
    let buffer = JsFuture::from(blob.array_buffer())
        .await
        .map_err(|_| "the file could not be read".to_string())?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// A tensor chosen and read.
#[derive(Clone)]
struct Chosen {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    values: Arc<[f32]>,
    /// How long the read took (slice → f32 values), ms.
    read_ms: f64,
}

/// Above this many values a reader's tensor gets its printout, histogram, staircase and channel
/// ranges, but not the curves: 14 calibrations for the error curve and 100 passes for the
/// clipping trade-off would hold the page for seconds (fc1's 401,536 take ~60 ms for the latter).
const CURVES_UP_TO: usize = 1_000_000;

#[component]
pub fn TensorPanel(settings: Settings) -> impl IntoView {
    let file = StoredValue::new_local(None::<web_sys::File>);
    let file_name = RwSignal::new(None::<(String, f64)>);
    let entries = RwSignal::new(Vec::<Entry>::new());
    let chosen = RwSignal::new(None::<Chosen>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let header_ms = RwSignal::new(None::<f64>);
    // The channel axis (PyTorch's `ch_axis`): per-channel blocks and the channel ranges run
    // along it. 0 for a weight `[out, …]`; a reader picks another for their own layouts.
    let axis = RwSignal::new(0usize);

    let open = move |f: web_sys::File| {
        let (name, size) = (f.name(), f.size());
        file.set_value(Some(f.clone()));
        file_name.set(Some((name, size)));
        entries.set(Vec::new());
        chosen.set(None);
        error.set(None);
        busy.set(true);
        leptos::task::spawn_local(async move {
            let start = crate::browser::now();
            let len = f.size() as u64;
            let result = async {
                let first = slice(&f, 0, len.min(12)).await?;
                let need = tensor_file::header_len(&first, len).map_err(|e| e.to_string())?;
                let head = slice(&f, 0, need).await?;
                tensor_file::list(&head, len).map_err(|e| e.to_string())
            }
            .await;
            busy.set(false);
            match result {
                Ok(list) if list.is_empty() => error.set(Some("The file holds no tensors.".into())),
                Ok(list) => {
                    header_ms.set(Some(crate::browser::now() - start));
                    entries.set(list);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let choose = move |e: Entry| {
        let Some(f) = file.get_value() else { return };
        error.set(None);
        busy.set(true);
        leptos::task::spawn_local(async move {
            let start = crate::browser::now();
            let result = async {
                let bytes = slice(&f, e.start, e.end).await?;
                tensor_file::read(&e, &bytes).map_err(|err| err.to_string())
            }
            .await;
            busy.set(false);
            axis.set(0);
            match result {
                Ok(values) => chosen.set(Some(Chosen {
                    name: e.name.clone(),
                    dtype: e.dtype.name(),
                    shape: e.shape.clone(),
                    values: values.into(),
                    read_ms: crate::browser::now() - start,
                })),
                Err(err) => error.set(Some(err)),
            }
        });
    };
    let on_input = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(f) = input.files().and_then(|l| l.get(0)) {
            open(f);
        }
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        if let Some(f) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|l| l.get(0))
        {
            open(f);
        }
    };

    // The chosen tensor under the reader's recipe (its default: a tensor is no layer), and
    // under the other scheme: `qp inspect`'s printout.
    // The tensor with the channel axis first (as read when the axis is 0).
    let tensor = Memo::new(move |_| {
        let c = chosen.get()?;
        let a = axis.get();
        Some(if a == 0 || a >= c.shape.len() {
            (c.values.clone(), c.shape.clone())
        } else {
            let (w, shape) = axis_first(&c.values, &c.shape, a);
            (Arc::from(w), shape)
        })
    });
    let printout = Memo::new(move |_| {
        let (values, shape) = tensor.get()?;
        let recipe = settings.recipe.with(|r| r.default);
        Some(tensor_printout(&values, &shape, recipe).map_err(|e| e.to_string()))
    });
    // The recipe's quantizer when it is the integer grid: what the staircase, its formulas and
    // the histogram show (block 0: the tensor, the first channel or the first group).
    let int_quant = Memo::new(move |_| {
        printout
            .get()?
            .ok()
            .map(|p| p.quant)
            .filter(|q| q.recipe.is_int())
    });
    let stair = Memo::new(move |_| {
        let q = int_quant.get()?;
        let (values, _) = tensor.get()?;
        let schemes = block_schemes(&q, &values, 0);
        Some((
            q.blocks[0].clone(),
            schemes,
            q.recipe.rounding,
            q.blocks.len(),
        ))
    });
    let filled = Memo::new(move |_| {
        stair
            .get()
            .map(|(b, schemes, _, _)| Filled::of_block(&b, &schemes))
            .unwrap_or_default()
    });
    let stair_scheme = Memo::new(move |_| int_quant.get().map(|q| q.recipe.scheme));
    // Whether there is a staircase: its section (MathML laid out once) is built when this
    // changes, not on every move.
    let has_stair = Memo::new(move |_| stair.with(Option::is_some));
    // The curves, for tensors small enough to compute them at once.
    let small = move || tensor.with(|t| t.as_ref().is_some_and(|(v, _)| v.len() <= CURVES_UP_TO));
    let curve = Memo::new(move |_| {
        let (values, shape) = tensor.get()?;
        if values.len() > CURVES_UP_TO {
            return None;
        }
        let recipe = settings.recipe.with(|r| r.default);
        Some(error_curve_of(&values, &shape, 0, recipe).map_err(|e| e.to_string()))
    });
    let clipping = Memo::new(move |_| {
        let (values, shape) = tensor.get()?;
        if values.len() > CURVES_UP_TO {
            return None;
        }
        let recipe = settings.recipe.with(|r| r.default);
        Some(
            ClipSweep::of_tensor(values, &shape, 0, recipe)
                .and_then(|s| s.run())
                .map_err(|e| e.to_string()),
        )
    });
    let ranges = Memo::new(move |_| {
        let (values, shape) = tensor.get()?;
        let channels = shape
            .first()
            .copied()
            .filter(|&n| n > 0 && shape.len() > 1)?;
        let ranges = channel_ranges(&values, channels);
        let all = ranges
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &(lo, hi)| {
                (a.min(lo), b.max(hi))
            });
        Some((ranges, all))
    });
    let rows = move || {
        let (Some(c), Some(p)) = (chosen.get(), printout.get()) else {
            return None;
        };
        let (body, range) = match p {
            Ok(p) => (
                p.rows
                    .into_iter()
                    .map(|r| {
                        view! {
                            <tr>
                                <th scope="row">{r.recipe}</th>
                                <td class="num scale">{r.scale.map_or(format!("{} blocks", r.blocks), |s| format!("{s:.7}"))}</td>
                                <td class="num zp">{r.zero_point.map_or("—".to_string(), |z| z.to_string())}</td>
                                <td class="num">{format!("{:.6}", r.mean_abs_error)}</td>
                                <td class="num">{r.sqnr_db.map_or("∞".into(), |d| format!("{d:.2}"))}</td>
                            </tr>
                        }
                        .into_any()
                    })
                    .collect_view()
                    .into_any(),
                format!(", min {:.6}, max {:.6}", p.min, p.max),
            ),
            Err(e) => (
                view! { <tr><td colspan="5" class="error" role="alert">{e}</td></tr> }.into_any(),
                String::new(),
            ),
        };
        Some(view! {
            <p class="status" id="tensor-summary">
                {format!(
                    "{}: shape {:?}, {}, {} values{range} (read in {:.0} ms).",
                    c.name, c.shape, c.dtype, thousands(c.values.len()), c.read_ms
                )}
            </p>
            <div class="table-scroll">
                <table class="tensor-printout">
                    <thead><tr>
                        <th scope="col">"recipe"</th><th scope="col">"scale"</th>
                        <th scope="col">"zero_point"</th><th scope="col">"mean abs error"</th>
                        <th scope="col">"SQNR (dB)"</th>
                    </tr></thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
            {(c.shape == [64, 3, 7, 7]).then(|| view! {
                <p class="caption" id="tensor-essay">
                    "A ResNet18 conv1 shape. The essay prints, for torchvision's trained ResNet18 "
                    "conv1 at 8 bits: asymmetric scale 0.0072935…, zero_point −12; symmetric "
                    "scale 0.0079723…. Yours match when the weights are those."
                </p>
            })}
        })
    };
    let histogram = Memo::new(move |_| {
        let (values, _) = tensor.get()?;
        let q = int_quant.get()?;
        Some(histogram_view(&q, &values, 0))
    });
    let hist_numbers = Signal::derive(move || {
        histogram
            .get()
            .map(|h| {
                h.quantized
                    .iter()
                    .map(|(v, n)| vec![format!("{v:.6}"), n.to_string()])
                    .collect()
            })
            .unwrap_or_default()
    });
    let list = move || {
        let l = entries.get();
        (!l.is_empty()).then(|| {
            let body = l
                .into_iter()
                .map(|e| {
                    let readable = e.dtype.readable() && e.values() > 0;
                    let pick = e.clone();
                    view! {
                        <tr data-tensor=e.name.clone()>
                            <th scope="row">{e.name.chars().take(80).collect::<String>()}</th>
                            <td>{e.dtype.name()}</td>
                            <td>{format!("{:?}", e.shape)}</td>
                            <td class="num">{thousands(e.values() as usize)}</td>
                            <td>
                                <button type="button" class="link" disabled=!readable
                                    on:click=move |_| choose(pick.clone())>
                                    {if readable { "Quantize" } else { "not read" }}
                                </button>
                            </td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <div class="table-scroll">
                    <table class="tensor-list">
                        <thead><tr>
                            <th scope="col">"tensor"</th><th scope="col">"dtype"</th>
                            <th scope="col">"shape"</th><th scope="col">"values"</th><th scope="col"></th>
                        </tr></thead>
                        <tbody>{body}</tbody>
                    </table>
                </div>
            }
        })
    };

    // A file with MNISTNet's eight tensors (the essay's training script's, or our own QAT or
    // quantized download) is a network the whole page can run on: read those tensors, keep them
    // for this tab as F32 safetensors, and load the page again on them (`model=file`), every
    // result keyed by the network's own hash. Files with none of its names are not offered.
    let as_model = Memo::new(move |_| {
        entries.with(|l| {
            let names: Vec<String> = Layer::ALL
                .iter()
                .flat_map(|l| [format!("{}.weight", l.name()), format!("{}.bias", l.name())])
                .collect();
            l.iter().any(|e| names.contains(&e.name)).then(|| {
                // The message follows "Not an MNISTNet the page can run:", which already
                // says what kind of file: the error's own "weights file:" would repeat it.
                weights::mnistnet_entries(l).map_err(|e| match e {
                    quant_core::Error::Weights(why) => why,
                    e => e.to_string(),
                })
            })
        })
    });
    let use_model = move |_| {
        let (Some(f), Some(Ok(wanted))) = (file.get_value(), as_model.get_untracked()) else {
            return;
        };
        error.set(None);
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = async {
                let mut values = Vec::with_capacity(wanted.len());
                for e in &wanted {
                    let bytes = slice(&f, e.start, e.end).await?;
                    values.push(tensor_file::read(e, &bytes).map_err(|err| err.to_string())?);
                }
                let net = weights::from_values(&values).map_err(|e| e.to_string())?;
                let meta = std::collections::HashMap::from([("source".to_string(), f.name())]);
                let bytes = weights::to_safetensors(&net, meta).map_err(|e| e.to_string())?;
                crate::browser::keep_weights(ModelChoice::File, &bytes)
            }
            .await;
            busy.set(false);
            match result {
                Ok(()) => {
                    let state = UrlState {
                        model: ModelChoice::File,
                        embed: None,
                        ..settings.url_state()
                    };
                    crate::browser::navigate(&state.to_query());
                }
                Err(e) => error.set(Some(format!("This file's network could not be used: {e}"))),
            }
        });
    };
    let axis_picker = move || {
        chosen.get().filter(|c| c.shape.len() > 1).map(|c| {
            let options = c
                .shape
                .iter()
                .enumerate()
                .map(|(i, d)| view! { <option value=i.to_string() selected=move || axis.get() == i>{format!("axis {i} ({d})")}</option> })
                .collect_view();
            view! {
                <label class="axis-pick">
                    "Channel axis (per-channel blocks and ranges run along it) "
                    <select id="tensor-axis" on:change=move |ev| {
                        if let Ok(a) = event_target_value(&ev).parse() {
                            axis.set(a);
                        }
                    }>{options}</select>
                </label>
            }
        })
    };
    let model_offer = move || {
        as_model.get().map(|found| match found {
            Ok(_) => view! {
                <div class="model-offer">
                    <p>
                        "This file holds MNISTNet's eight tensors, with PyTorch's names and shapes: "
                        "the whole page can run on this network — the accuracy, every chart, PTQ, QAT "
                        "and the flips — its results kept apart from the bundled network's."
                    </p>
                    <button type="button" id="tensor-use-model" on:click=use_model disabled=move || busy.get()>
                        "Run the whole page on this network"
                    </button>
                </div>
            }
            .into_any(),
            Err(e) => view! {
                <p class="caption" id="tensor-not-model">{format!("Not an MNISTNet the page can run: {e}.")}</p>
            }
            .into_any(),
        })
    };

    view! {
        <section class="panel wide tensor" aria-labelledby="tensor-title" id="tensor"
            on:dragover=|ev: web_sys::DragEvent| ev.prevent_default()
            on:drop=on_drop>
            <h2 id="tensor-title">"Your own tensor"</h2>
            <p class="explain">
                "Open or drop a .safetensors (F32, F16, BF16) or .npy file, such as a checkpoint "
                "of your own model. It is read here, in this page, and never uploaded: only its "
                "header first, then only the tensor you choose, so even a checkpoint of gigabytes "
                "opens at once. The chosen tensor is quantized with the recipe above, and with "
                "the other scheme beside it, as the essay prints ResNet18's conv1."
            </p>
            <label class="file-pick">
                "Choose a file "
                <input type="file" accept=".safetensors,.npy" on:change=on_input id="tensor-file" />
            </label>
            <p class="caption" id="tensor-file-status" data-header-ms=move || header_ms.get().map_or(String::new(), |m| format!("{m:.1}"))>
                {move || match (file_name.get(), busy.get()) {
                    (None, _) => "No file yet: drop one anywhere on this panel.".to_string(),
                    (Some((n, _)), true) => format!("Reading {n}…"),
                    (Some((n, size)), false) => format!(
                        "{n}: {} bytes, {} tensors{}",
                        thousands(size as usize),
                        entries.with(Vec::len),
                        header_ms.get().map_or(String::new(), |m| format!(", header read in {m:.0} ms"))
                    ),
                }}
            </p>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {model_offer}
            {list}
            {axis_picker}
            {rows}
            <div class="tensor-views" hidden=move || chosen.with(Option::is_none)>
                {move || histogram.get().is_some().then(|| view! {
                    <div class="tensor-view">
                        <h3>"On the grid"</h3>
                        <ChartCanvas
                            draw=move |area, theme| {
                                if let Some(h) = histogram.get() {
                                    let _ = quant_charts::histogram::draw(area, &h, theme);
                                }
                            }
                            label=Signal::derive(|| "Histogram of the chosen tensor's values, with the grid's levels and the values piled onto them.".to_string())
                            name="tensor-histogram"
                            columns=&["level", "values"]
                            numbers=hist_numbers
                            aspect=0.55
                        />
                    </div>
                })}
                {move || has_stair.get().then(|| view! {
                <div class="tensor-view staircase">
                        <h3>{move || stair.get().map_or(String::new(), |(_, _, _, n)| if n > 1 {
                            format!("The staircase of block 0 (of {n})")
                        } else {
                            "The staircase".to_string()
                        })}</h3>
                        <ChartCanvas
                            draw=move |area, theme| {
                                if let Some((b, _, rounding, _)) = stair.get() {
                                    let _ = quant_charts::staircase::draw(
                                        area,
                                        &b.qparams,
                                        &|x| b.staircase_code(rounding, x),
                                        b.alpha,
                                        b.beta,
                                        theme,
                                    );
                                }
                            }
                            label=Signal::derive(move || stair.get().map_or(String::new(), |(b, ..)| format!(
                                "Staircase of the chosen tensor: scale {}, zero point {}.",
                                sig(f64::from(b.qparams.scale)), b.qparams.zero_point)))
                            name="tensor-staircase"
                            columns=&["q", "ŵ = s·(q − z)"]
                            numbers=Signal::derive(move || stair.get().map(|(b, ..)| {
                                let qp = b.qparams;
                                let row = |q: i32| vec![q.to_string(), sig(f64::from(qp.dequantize(q)))];
                                if qp.qmax - qp.qmin <= 255 {
                                    (qp.qmin..=qp.qmax).map(row).collect()
                                } else {
                                    [qp.qmin, qp.zero_point, qp.qmax].into_iter().map(row).collect()
                                }
                            }).unwrap_or_default())
                            aspect=0.62
                        />
                        <div class="formulas tensor-formulas">{formulas(stair_scheme, filled)}</div>
                </div>
                })}
                {move || ranges.get().map(|(r, all)| {
                    let n = r.len();
                    view! {
                        <div class="tensor-view">
                            <h3>{format!("Each of the {n} channels' range (axis {})", axis.get())}</h3>
                            <ChartCanvas
                                draw=move |area, theme| {
                                    if let Some((r, all)) = ranges.get() {
                                        let _ = quant_charts::channel_ranges::draw(area, &r, all, None, theme);
                                    }
                                }
                                label=Signal::derive(move || format!("Minimum and maximum of each of the {n} channels along axis {}, against the whole tensor's [{}, {}].", axis.get(), sig(f64::from(all.0)), sig(f64::from(all.1))))
                                name="tensor-channels"
                                columns=&["channel", "min", "max"]
                                numbers=Signal::derive(move || ranges.get().map(|(r, _)| r.iter().enumerate().map(|(i, (lo, hi))| vec![i.to_string(), sig(f64::from(*lo)), sig(f64::from(*hi))]).collect()).unwrap_or_default())
                                aspect=0.55
                            />
                        </div>
                    }
                })}
                {move || curve.get().map(|c| match c {
                    Ok(points) => {
                        let metric = settings.metric;
                        let current = settings.recipe.with_untracked(|r| (r.default.bits, r.default.scheme));
                        let numbers = points.iter().map(|p| vec![
                            p.bits.to_string(), p.scheme.short().to_string(),
                            format!("{:.6}", p.mean_abs_error),
                            p.sqnr_db.map_or("—".into(), |d| format!("{d:.1}")),
                        ]).collect::<Vec<_>>();
                        view! {
                            <div class="tensor-view">
                                <h3>"Error against bit width"</h3>
                                <ChartCanvas
                                    draw=move |area, theme| {
                                        let _ = quant_charts::error_curve::draw(area, &points, metric.get(), current, theme);
                                    }
                                    label=Signal::derive(|| "Quantization error of the chosen tensor against bit width 2 to 8, symmetric and asymmetric.".to_string())
                                    name="tensor-error"
                                    columns=&["bits", "scheme", "mean |error|", "SQNR (dB)"]
                                    numbers=Signal::derive(move || numbers.clone())
                                    aspect=0.55
                                />
                            </div>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                })}
                {move || clipping.get().map(|c| match c {
                    Ok(curve) => {
                        let numbers = curve.points.iter().map(|p| vec![
                            format!("{:.2}", p.fraction),
                            format!("{:.3e}", p.mse),
                            format!("{:.3e}", p.clipping_mse),
                        ]).collect::<Vec<_>>();
                        view! {
                            <div class="tensor-view">
                                <h3>"The clipping trade-off"</h3>
                                <ChartCanvas
                                    draw=move |area, theme| {
                                        let _ = quant_charts::clipping::draw(area, &curve, theme);
                                    }
                                    label=Signal::derive(|| "Clipping error and rounding error of the chosen tensor as its range shrinks, with the min-max, percentile and MSE choices marked.".to_string())
                                    name="tensor-clipping"
                                    columns=&["range fraction c", "MSE", "of which clipping"]
                                    numbers=Signal::derive(move || numbers.clone())
                                    aspect=0.55
                                />
                            </div>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                })}
            </div>
            <p class="caption" hidden=move || small() || chosen.with(Option::is_none)>
                {format!("The error curve and the clipping trade-off are computed for tensors of up to {} values, so the page never stalls.", thousands(CURVES_UP_TO))}
            </p>
        </section>
    }
}
