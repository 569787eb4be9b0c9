//! Your own tensor: open or drop a `.safetensors` or `.npy` file; it is read here, in the page,
//! and never leaves it. The header is read first and alone (`File.slice`, bounded by
//! quant_core::tensor_file), the tensors are listed, and only the chosen tensor's bytes are
//! read: a checkpoint of gigabytes opens at once and is never whole in memory. The chosen tensor
//! gets the essay's printout under the reader's recipe and the other scheme (what `qp inspect`
//! prints), and its histogram on the grid.

use crate::app::Settings;
use crate::canvas::ChartCanvas;
use leptos::prelude::*;
use quant_core::fmt::thousands;
use quant_core::model::Layer;
use quant_core::report::tensor_printout;
use quant_core::tensor_file::{self, Entry};
use quant_core::url::{ModelChoice, UrlState};
use quant_core::view::histogram_view;
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

#[component]
pub fn TensorPanel(settings: Settings) -> impl IntoView {
    let file = StoredValue::new_local(None::<web_sys::File>);
    let file_name = RwSignal::new(None::<(String, f64)>);
    let entries = RwSignal::new(Vec::<Entry>::new());
    let chosen = RwSignal::new(None::<Chosen>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let header_ms = RwSignal::new(None::<f64>);

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
    let printout = Memo::new(move |_| {
        let c = chosen.get()?;
        let recipe = settings.recipe.with(|r| r.default);
        Some(tensor_printout(&c.values, &c.shape, recipe).map_err(|e| e.to_string()))
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
        let c = chosen.get()?;
        let q = printout.get()?.ok()?.quant;
        q.recipe.is_int().then(|| histogram_view(&q, &c.values, 0))
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
            l.iter()
                .any(|e| names.contains(&e.name))
                .then(|| weights::mnistnet_entries(l).map_err(|e| e.to_string()))
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
            {rows}
            {move || histogram.get().is_some().then(|| view! {
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
                    aspect=0.45
                />
            })}
        </section>
    }
}
