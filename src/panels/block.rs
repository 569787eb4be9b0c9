//! The picker of which channel or group the histogram and the staircase show, when the recipe
//! gives a layer more than one scale: a slider over the blocks, keyboard operable.

use crate::app::Settings;
use crate::panels::staircase::block_noun;
use leptos::prelude::*;
use quant_core::fmt::{sig, thousands};
use quant_core::view::LayerView;
use quant_core::Error;

#[component]
pub fn BlockPicker(
    /// The selected layer at the current recipe.
    layer_view: Memo<Result<LayerView, Error>>,
    /// The reader's choices (the block is written here).
    settings: Settings,
    /// Distinguishes the panels' inputs.
    id: &'static str,
) -> impl IntoView {
    let blocks = move || layer_view.with(|v| v.as_ref().map_or(1, |v| v.blocks));
    let shown = move || layer_view.with(|v| v.as_ref().map_or(0, |v| v.block_index));
    let text = move || {
        layer_view.with(|v| match v {
            Ok(v) => {
                // A format's block, or the integer grid's channel or group.
                let (n, alpha, beta) = match &v.format {
                    Some(f) => (f.span.len(), v.histogram.alpha, v.histogram.beta),
                    None => (v.block.span.len(), v.block.alpha, v.block.beta),
                };
                format!(
                    "{} {} of 0–{} · {} weights in [{}, {}]",
                    block_noun(v),
                    v.block_index,
                    thousands(v.blocks - 1),
                    thousands(n),
                    sig(f64::from(alpha)),
                    sig(f64::from(beta)),
                )
            }
            Err(_) => String::new(),
        })
    };
    let on_input = move |ev: leptos::ev::Event| {
        if let Ok(b) = event_target_value(&ev).parse::<usize>() {
            settings.block.set(b);
        }
    };
    view! {
        <div class="block-picker" hidden=move || blocks() <= 1>
            <label for=id>{text}</label>
            <input id=id type="range" min="0" max=move || (blocks().max(1) - 1).to_string() step="1"
                prop:value=move || shown().to_string()
                aria-valuetext=text
                on:input=on_input />
        </div>
    }
}
