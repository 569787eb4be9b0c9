//! Take it home: the network quantized under the reader's recipe as a safetensors file PyTorch
//! loads unchanged (quant_core::export: the fake-quantized weights under PyTorch's names, the
//! integer codes with each block's scale and zero_point, the 2,000 test digits), and the Python
//! that rebuilds the weights from the codes and prints the same accuracy. The file is built in
//! the page when asked for (the recipe's network evaluated once more, ~0.2 s) and nothing is
//! sent anywhere.

use crate::app::Settings;
use leptos::prelude::*;
use quant_core::data::Digits;
use quant_core::export::{file_name, quantized_model, SNIPPET};
use quant_core::fmt::thousands;
use quant_core::model::MnistNet;
use quant_core::report::format_label;
use std::sync::Arc;
use std::time::Duration;
use wasm_bindgen::JsCast;

/// What the last download held, for the line under the button.
#[derive(Clone)]
struct Made {
    name: String,
    bytes: usize,
    correct: usize,
    count: usize,
}

/// Copies `text` to the clipboard through `navigator.clipboard.writeText` (looked up rather
/// than bound: one call does not need web-sys's clipboard feature). False where it is missing.
fn copy_to_clipboard(text: &str) -> bool {
    let call = || -> Option<()> {
        let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
        let clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into()).ok()?;
        let write: js_sys::Function = js_sys::Reflect::get(&clipboard, &"writeText".into())
            .ok()?
            .dyn_into()
            .ok()?;
        write.call1(&clipboard, &text.into()).ok().map(|_| ())
    };
    call().is_some()
}

#[component]
pub fn ExportPanel(settings: Settings, net: Arc<MnistNet>, test: Arc<Digits>) -> impl IntoView {
    let made = RwSignal::new(None::<Made>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let copied = RwSignal::new(None::<bool>);
    let download = move |_| {
        let recipe = settings.recipe.get_untracked();
        let (net, test) = (net.clone(), test.clone());
        busy.set(true);
        error.set(None);
        // After a frame, so "Preparing…" shows while the network is quantized and measured.
        set_timeout(
            move || {
                match quantized_model(&net, &recipe, &test) {
                    Ok(export) => {
                        let name = file_name(&recipe);
                        crate::browser::download_bytes(
                            &name,
                            "application/octet-stream",
                            &export.bytes,
                        );
                        made.set(Some(Made {
                            name,
                            bytes: export.bytes.len(),
                            correct: export.evaluation.correct,
                            count: export.evaluation.count,
                        }));
                    }
                    Err(e) => error.set(Some(format!("The file could not be made: {e}."))),
                }
                busy.set(false);
            },
            Duration::from_millis(30),
        );
    };
    let copy = move |_| copied.set(Some(copy_to_clipboard(SNIPPET)));
    let save_script = move |_| {
        crate::browser::download_text("load_quantized.py", "text/x-python", SNIPPET);
    };
    view! {
        <section class="panel export" aria-labelledby="export-title" id="export">
            <h2 id="export-title">"Take it home: the quantized network, for PyTorch"</h2>
            <p class="explain">
                "Download the network as quantized here — "
                <strong>{move || format_label(&settings.recipe.get())}</strong>
                " — as one safetensors file PyTorch loads unchanged. The script below rebuilds "
                "every weight from its integer codes and prints the accuracy on the same 2,000 "
                "digits, which the file carries too."
            </p>
            <details class="export-contents">
                <summary>"What the file holds"</summary>
                <ul>
                    <li><code>"conv1.weight"</code>" … "<code>"fc2.bias"</code>
                        ": the fake-quantized weights under PyTorch's names, so "
                        <code>"load_state_dict"</code>" gives the dequantized network directly."</li>
                    <li>"For each layer on the integer grid: "<code>"weight_int"</code>
                        " (the codes q: int8 up to 8 bits, int16 at 16), "<code>"weight_scale"</code>
                        " and "<code>"weight_zero_point"</code>" (one per block: the tensor, a row "
                        "or a group; each block's length is in the metadata). "
                        <code>"(q − zero_point) · scale"</code>" gives each weight back bit for bit."</li>
                    <li>"A layer under FP8, NF4, GGUF or MX keeps only its dequantized weights; the "
                        "metadata names its format."</li>
                    <li><code>"test.images"</code>" and "<code>"test.labels"</code>
                        ": the 2,000 test digits (uint8); the metadata holds the recipe and the count right."</li>
                </ul>
            </details>
            <div class="export-actions">
                <button type="button" id="export-download" on:click=download disabled=move || busy.get()>
                    {move || if busy.get() { "Preparing…" } else { "Download this quantized model" }}
                </button>
                <button type="button" id="export-script" on:click=save_script>
                    "Download load_quantized.py"
                </button>
            </div>
            <p class="export-made" role="status" aria-live="polite">
                {move || made.get().map(|m| format!(
                    "{} ({:.1} MB): {} of {} test digits right ({:.2} %).",
                    m.name,
                    m.bytes as f64 / 1e6,
                    thousands(m.correct),
                    thousands(m.count),
                    100.0 * m.correct as f64 / m.count as f64,
                ))}
            </p>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <div class="snippet">
                <div class="snippet-head">
                    <span>
                        "Run it: "<code>"pip install torch safetensors"</code>", then "
                        <code>"python load_quantized.py FILE.safetensors"</code>
                    </span>
                    <button type="button" id="export-copy" on:click=copy>"Copy"</button>
                    <span class="copied" role="status" aria-live="polite">
                        {move || copied.get().map(|ok| if ok { "Copied." } else { "Select the text and copy it: this browser gives no clipboard here." })}
                    </span>
                </div>
                <pre tabindex="0"><code id="export-snippet">{SNIPPET}</code></pre>
            </div>
        </section>
    }
}
