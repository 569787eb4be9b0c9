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
        // Every input and change below bubbles here after it has set its signal.
        <section
            class="controls"
            aria-label="Quantization settings"
            on:input=move |_| settings.evaluate_first()
            on:change=move |_| settings.evaluate_first()
        >
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
            <Segmented
                legend="Scheme"
                name="scheme"
                value=settings.scheme
                options=Scheme::ALL.map(|s| Choice { value: s, key: s.short(), label: s.to_string(), title: String::new() }).into()
            />
            <Segmented
                legend="Layer"
                name="layer"
                value=settings.layer
                options=Layer::ALL
                    .map(|l| {
                        let weights: usize = l.weight_shape().iter().product();
                        Choice { value: l, key: l.name(), label: l.name().to_string(), title: format!("{} weights", thousands(weights)) }
                    })
                    .into()
            />
        </section>
    }
}

/// One option of a [`Segmented`] control.
pub struct Choice<T> {
    pub value: T,
    /// The radio input's value (what tests and forms see).
    pub key: &'static str,
    pub label: String,
    /// A tooltip; empty for none.
    pub title: String,
}

/// A row of radio buttons styled as a segmented control: native inputs, so arrow keys, touch
/// and screen readers all work.
#[component]
pub fn Segmented<T: Copy + PartialEq + Send + Sync + 'static>(
    /// The group's visible label.
    legend: &'static str,
    /// The radio group's name.
    name: &'static str,
    /// The chosen value, read and written.
    value: RwSignal<T>,
    /// The options, in order.
    options: Vec<Choice<T>>,
    /// Extra classes for the fieldset.
    #[prop(default = "control")]
    class: &'static str,
) -> impl IntoView {
    view! {
        <fieldset class=format!("{class} segmented")>
            <legend>{legend}</legend>
            {options
                .into_iter()
                .map(|c| {
                    let v = c.value;
                    view! {
                        <label title=(!c.title.is_empty()).then_some(c.title)>
                            <input
                                type="radio"
                                name=name
                                value=c.key
                                prop:checked=move || value.get() == v
                                on:change=move |_| value.set(v)
                            />
                            <span>{c.label}</span>
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
    }
}
