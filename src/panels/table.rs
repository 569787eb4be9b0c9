//! Panel 5: the essay's per-layer table at the current setting, and the model's size.

use crate::app::Settings;
use crate::browser;
use leptos::prelude::*;
use quant_core::fmt::{csv, sig, table, thousands};
use quant_core::report::{blocks_label, essay_table, model_size_bytes, LayerRow};
use quant_core::Error;

#[component]
pub fn TablePanel(
    /// Every layer's row at the current setting.
    rows: Memo<Result<Vec<LayerRow>, Error>>,
    /// The reader's choices.
    settings: Settings,
) -> impl IntoView {
    let body = move || {
        match rows.get() {
        Ok(rows) => rows
            .into_iter()
            .map(|r| {
                let selected = r.layer == settings.layer.get();
                view! {
                    <tr class:selected=selected>
                        <th scope="row">{r.layer.name()}</th>
                        <td class="shape">{format!("{:?}", r.shape)}</td>
                        <td class="num">{sig(f64::from(r.min))}</td>
                        <td class="num">{sig(f64::from(r.max))}</td>
                        <td class="num">{match r.qparams {
                            Some(qp) => sig(f64::from(qp.scale)),
                            None if !r.recipe.is_int() => "—".into(),
                            None => format!("{} – {}", sig(f64::from(r.scale_min)), sig(f64::from(r.scale_max))),
                        }}</td>
                        <td class="num">{r.zero_point_text()}</td>
                        <td class="num">{blocks_label(&r)}</td>
                        <td class="num">{sig(r.error.mean_abs_error)}</td>
                    </tr>
                }
            })
            .collect_view()
            .into_any(),
        Err(e) => view! { <tr><td colspan="8" role="alert">{e.to_string()}</td></tr> }.into_any(),
    }
    };
    let size = move || {
        let fp32 = model_size_bytes(None);
        let recipe = settings.recipe.get();
        let q = model_size_bytes(Some(&recipe));
        if !recipe.default.is_int() {
            return format!(
                "Model size in {}: {} bytes, against {} bytes in FP32 ({:.1}× smaller): {:.2} bits per weight with the format's own scales counted, and FP32 biases.",
                recipe.default.format.label(),
                thousands(q),
                thousands(fp32),
                fp32 as f64 / q as f64,
                quant_core::report::bits_per_weight(&recipe),
            );
        }
        format!(
            "Model size at {} bits: {} bytes, against {} bytes in FP32 ({:.1}× smaller). Counted as packed weights, FP32 biases, and one f32 scale and i32 zero_point per {}.",
            settings.bits(),
            thousands(q),
            thousands(fp32),
            fp32 as f64 / q as f64,
            match recipe.default.granularity {
                quant_core::recipe::Granularity::PerTensor => "layer",
                quant_core::recipe::Granularity::PerChannel => "output channel",
                quant_core::recipe::Granularity::PerGroup(_) => "group",
            }
        )
    };
    let export = move |markdown: bool| {
        let Ok(rows) = rows.get() else { return };
        let (headers, cells) = essay_table(&rows);
        let stem = format!(
            "quant-playground-{}bit-{}",
            settings.bits(),
            settings.scheme().short()
        ) + &settings.recipe.with(|r| match r.default.granularity {
            quant_core::recipe::Granularity::PerTensor => String::new(),
            g => format!("-{}", g.to_string().replace(':', "")),
        });
        if markdown {
            browser::download_text(
                &format!("{stem}.md"),
                "text/markdown",
                &table(true, &headers, &cells),
            );
        } else {
            browser::download_text(&format!("{stem}.csv"), "text/csv", &csv(&headers, &cells));
        }
    };
    view! {
        <section class="panel wide" aria-labelledby="table-title">
            <h2 id="table-title">"The essay's table"</h2>
            <p class="explain">
                "What a quantization library prints for each layer: the range it observed, the "
                "scale and zero_point it chose, and the mean absolute error that choice costs. "
                "fc1 holds 95% of the weights, so its row decides the model's size."
            </p>
            <div class="table-scroll">
                <table class="essay">
                    <thead>
                        <tr>
                            <th scope="col">"layer"</th>
                            <th scope="col">"shape"</th>
                            <th scope="col">"min"</th>
                            <th scope="col">"max"</th>
                            <th scope="col">"scale"</th>
                            <th scope="col">"zero_point"</th>
                            <th scope="col">"parameters"</th>
                            <th scope="col">"mean abs error"</th>
                        </tr>
                    </thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
            <p class="caption" id="model-size">{size}</p>
            <div class="chart-tools">
                <button type="button" class="export" on:click=move |_| export(false)>"Download CSV"</button>
                <button type="button" class="export" on:click=move |_| export(true)>"Download Markdown"</button>
            </div>
        </section>
    }
}
