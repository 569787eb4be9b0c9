//! The bit width slider, the scheme switch and the layer picker: native inputs, so mouse, touch
//! and keyboard all work, each with a visible label and value.

use crate::app::Settings;
use leptos::prelude::*;
use quant_core::fmt::thousands;
use quant_core::model::Layer;
use quant_core::quant::{Bits, Scheme};

#[component]
pub fn Controls(
    /// The reader's choices, written by these controls.
    settings: Settings,
) -> impl IntoView {
    // The slider moves over the index into Bits::ALL, so 16 sits one stop after 8.
    let index = move || {
        Bits::ALL
            .iter()
            .position(|&b| b == settings.bits.get())
            .unwrap_or(6)
    };
    let on_bits = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev)
            .parse::<usize>()
            .ok()
            .and_then(|i| Bits::ALL.get(i).copied());
        if let Some(b) = chosen {
            settings.bits.set(b);
        }
    };
    view! {
        <section class="controls" aria-label="Quantization settings">
            <div class="control bits">
                <label for="bits">
                    "Bit width " <output id="bits-value" for="bits">{move || settings.bits.get().to_string()}</output>
                    <span class="sub">
                        {move || {
                            let b = settings.bits.get();
                            format!(" · {} levels, q ∈ [{}, {}]", thousands(b.levels() as usize), b.qmin(), b.qmax())
                        }}
                    </span>
                </label>
                <input
                    id="bits"
                    type="range"
                    min="0"
                    max="7"
                    step="1"
                    prop:value=move || index().to_string()
                    aria-valuetext=move || format!("{} bits", settings.bits.get())
                    on:input=on_bits
                />
                <div class="ticks" aria-hidden="true">
                    {Bits::ALL.iter().map(|b| view! { <span>{b.to_string()}</span> }).collect_view()}
                </div>
            </div>
            <fieldset class="control segmented">
                <legend>"Scheme"</legend>
                {Scheme::ALL
                    .iter()
                    .map(|&s| {
                        view! {
                            <label>
                                <input
                                    type="radio"
                                    name="scheme"
                                    value=s.short()
                                    prop:checked=move || settings.scheme.get() == s
                                    on:change=move |_| settings.scheme.set(s)
                                />
                                <span>{s.to_string()}</span>
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <fieldset class="control segmented">
                <legend>"Layer"</legend>
                {Layer::ALL
                    .iter()
                    .map(|&l| {
                        let weights: usize = l.weight_shape().iter().product();
                        view! {
                            <label title=format!("{} weights", thousands(weights))>
                                <input
                                    type="radio"
                                    name="layer"
                                    value=l.name()
                                    prop:checked=move || settings.layer.get() == l
                                    on:change=move |_| settings.layer.set(l)
                                />
                                <span>{l.name()}</span>
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
        </section>
    }
}
