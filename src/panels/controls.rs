//! The recipe's controls — bit width, scheme, and under "More knobs" granularity, rounding and
//! range — and the layer picker: native inputs, so mouse, touch and keyboard all work, each with
//! a visible label and value. Every control writes the one recipe value (`Settings::recipe`).

use crate::app::Settings;
use leptos::prelude::*;
use quant_core::fmt::thousands;
use quant_core::formats::Format;
use quant_core::model::Layer;
use quant_core::quant::{Bits, Scheme};
use quant_core::recipe::{Granularity, RangeMethod, Rounding, Thousandths};
use quant_core::report::granularity_words;

/// The range methods offered, each with its parameter's default when the reader picks it.
const RANGES: [(&str, &str, RangeMethod); 4] = [
    ("minmax", "min–max", RangeMethod::MinMax),
    ("percentile", "percentile", RangeMethod::Percentile(99_900)),
    ("mse", "least squared error", RangeMethod::Mse),
    ("clip", "clip", RangeMethod::Clip(800)),
];

fn range_key(r: RangeMethod) -> &'static str {
    match r {
        RangeMethod::MinMax => "minmax",
        RangeMethod::Percentile(_) => "percentile",
        RangeMethod::Mse => "mse",
        RangeMethod::Clip(_) => "clip",
    }
}

fn rounding_key(r: Rounding) -> &'static str {
    match r {
        Rounding::HalfEven => "even",
        Rounding::TowardZero => "zero",
        Rounding::Floor => "floor",
        Rounding::Stochastic(_) => "stochastic",
    }
}

/// The stops of the percentile slider, in thousandths of a percent: 99 to 99.99, where the
/// choice matters for weights (below 99 a layer loses its informative tails).
const PERCENTILES: [u32; 7] = [99_000, 99_500, 99_800, 99_900, 99_950, 99_990, 100_000];

#[component]
pub fn Controls(
    /// The reader's choices, written by these controls.
    settings: Settings,
) -> impl IntoView {
    // The slider moves over the index into Bits::ALL, so 16 sits one stop after 8.
    let index = move || {
        Bits::ALL
            .iter()
            .position(|&b| b == settings.bits())
            .unwrap_or(6)
    };
    let on_bits = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev)
            .parse::<usize>()
            .ok()
            .and_then(|i| Bits::ALL.get(i).copied());
        if let Some(b) = chosen {
            settings.change(|r| r.bits = b);
        }
    };
    let format = move || settings.recipe.with(|r| r.default.format);
    let on_format = move |ev: leptos::ev::Event| {
        if let Ok(f) = event_target_value(&ev).parse::<Format>() {
            settings.block.set(0);
            settings.change(|r| r.format = f);
        }
    };
    let knob = move |pick: fn(&quant_core::recipe::LayerRecipe) -> String| {
        move || settings.recipe.with(|r| pick(&r.default))
    };
    let on_granularity = move |ev: leptos::ev::Event| {
        if let Ok(g) = event_target_value(&ev).parse::<Granularity>() {
            settings.block.set(0);
            settings.change(|r| r.granularity = g);
        }
    };
    let on_rounding = move |ev: leptos::ev::Event| {
        let rounding = match event_target_value(&ev).as_str() {
            "zero" => Rounding::TowardZero,
            "floor" => Rounding::Floor,
            // A fixed seed, so the view is reproducible; the seed is in the link.
            "stochastic" => Rounding::Stochastic(0),
            _ => Rounding::HalfEven,
        };
        settings.change(|r| r.rounding = rounding);
    };
    let on_range = move |ev: leptos::ev::Event| {
        let key = event_target_value(&ev);
        if let Some(&(_, _, method)) = RANGES.iter().find(|(k, _, _)| *k == key) {
            settings.change(|r| r.range = method);
        }
    };
    let range = move || settings.recipe.with(|r| r.default.range);
    let percentile_index = move || match range() {
        RangeMethod::Percentile(p) => PERCENTILES.iter().position(|&x| x >= p).unwrap_or(3),
        _ => 3,
    };
    let on_percentile = move |ev: leptos::ev::Event| {
        let chosen = event_target_value(&ev)
            .parse::<usize>()
            .ok()
            .and_then(|i| PERCENTILES.get(i).copied());
        if let Some(p) = chosen {
            settings.change(|r| r.range = RangeMethod::Percentile(p));
        }
    };
    let clip = move || match range() {
        RangeMethod::Clip(c) => c,
        _ => 800,
    };
    let on_clip = move |ev: leptos::ev::Event| {
        if let Ok(c) = event_target_value(&ev).parse::<u32>() {
            if let Ok(m) = RangeMethod::clip(c * 10) {
                settings.change(|r| r.range = m);
            }
        }
    };
    let summary = move || {
        settings.recipe.with(|r| {
            let d = r.default;
            if !d.is_int() {
                return format!("not used by {}", d.format.label());
            }
            let mut parts = vec![granularity_words(d.granularity)];
            if d.rounding != Rounding::HalfEven {
                parts.push(format!("{} rounding", rounding_key(d.rounding)));
            }
            if d.range != RangeMethod::MinMax {
                parts.push(d.range.to_string());
            }
            parts.join(", ")
        })
    };
    view! {
        // Every input and change below bubbles here after it has set its signal.
        <section
            class="controls"
            aria-label="Quantization settings"
            on:input=move |_| settings.evaluate_first()
            on:change=move |_| settings.evaluate_first()
        >
            <div class="control format">
                <label for="dtype">"Number format"</label>
                <select id="dtype" on:change=on_format prop:value=move || format().key().to_string()>
                    {Format::ALL
                        .map(|f| {
                            let label = match f.bits_per_weight() {
                                None => "integer grid (the knobs here)".to_string(),
                                Some(b) => format!("{} · {b} bits/weight", f.label()),
                            };
                            view! { <option value=f.key()>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <div class="control bits" class:inactive=move || format() != Format::Int>
                <label for="bits">
                    "Bit width " <output id="bits-value" for="bits">{move || settings.bits().to_string()}</output>
                    <span class="sub">
                        {move || {
                            let b = settings.bits();
                            if format() != Format::Int {
                                format!(" · not used: {} decides its own grid", format().label())
                            } else {
                                format!(" · {} levels, q ∈ [{}, {}]", thousands(b.levels() as usize), b.qmin(), b.qmax())
                            }
                        }}
                    </span>
                </label>
                <input
                    id="bits"
                    type="range"
                    prop:disabled=move || format() != Format::Int
                    min="0"
                    max=(Bits::ALL.len() - 1).to_string()
                    step="1"
                    prop:value=move || index().to_string()
                    aria-valuetext=move || format!("{} bits", settings.bits())
                    on:input=on_bits
                />
                <div class="ticks" aria-hidden="true">
                    {Bits::ALL.iter().map(|b| view! { <span>{b.to_string()}</span> }).collect_view()}
                </div>
            </div>
            // Dimmed, still usable, under a format of its own: the scheme waits for the integer grid.
            <div class="scheme-wrap" class:inactive=move || format() != Format::Int>
                <Segmented
                    legend="Scheme"
                    name="scheme"
                    value=Signal::derive(move || settings.scheme())
                    set=move |s| settings.change(|r| r.scheme = s)
                    options=Scheme::ALL.map(|s| Choice { value: s, key: s.short(), label: s.to_string(), title: String::new() }).into()
                />
            </div>
            <Segmented
                legend="Layer"
                name="layer"
                value=settings.layer
                set=move |l| {
                    settings.block.set(0);
                    settings.layer.set(l);
                }
                options=Layer::ALL
                    .map(|l| {
                        let weights: usize = l.weight_shape().iter().product();
                        Choice { value: l, key: l.name(), label: l.name().to_string(), title: format!("{} weights", thousands(weights)) }
                    })
                    .into()
            />
            <details class="control advanced">
                <summary>"More knobs " <span class="sub">{summary}</span></summary>
                <div class="knobs">
                    <label>
                        "Granularity"
                        <select id="granularity" on:change=on_granularity
                            prop:value=knob(|r| r.granularity.to_string())>
                            {Granularity::all()
                                .map(|g| {
                                    let label = match g {
                                        Granularity::PerTensor => "per tensor".to_string(),
                                        Granularity::PerChannel => "per output channel".to_string(),
                                        Granularity::PerGroup(n) => format!("groups of {n}"),
                                    };
                                    view! { <option value=g.to_string()>{label}</option> }
                                })
                                .collect_view()}
                        </select>
                    </label>
                    <label>
                        "Rounding"
                        <select id="rounding" on:change=on_rounding
                            prop:value=knob(|r| rounding_key(r.rounding).to_string())>
                            <option value="even">"nearest, ties to even"</option>
                            <option value="zero">"toward zero (truncate)"</option>
                            <option value="floor">"floor"</option>
                            <option value="stochastic">"stochastic"</option>
                        </select>
                    </label>
                    <label>
                        "Range"
                        <select id="range" on:change=on_range
                            prop:value=knob(|r| range_key(r.range).to_string())>
                            {RANGES
                                .map(|(key, label, _)| view! { <option value=key>{label}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <label hidden=move || !matches!(range(), RangeMethod::Percentile(_))>
                        // One line: in the label's column each bare text would be a row.
                        <span>
                            "Percentile "
                            <output id="percentile-value">
                                {move || match range() {
                                    RangeMethod::Percentile(p) => format!("{}", Thousandths(p)),
                                    _ => String::new(),
                                }}
                            </output>
                        </span>
                        <input id="percentile" type="range" min="0"
                            max=(PERCENTILES.len() - 1).to_string() step="1"
                            prop:value=move || percentile_index().to_string()
                            aria-valuetext=move || match range() {
                                RangeMethod::Percentile(p) => format!("percentile {}", Thousandths(p)),
                                _ => String::new(),
                            }
                            on:input=on_percentile />
                    </label>
                    <label hidden=move || !matches!(range(), RangeMethod::Clip(_))>
                        <span>
                            "Clip at "
                            <output id="clip-value">{move || format!("{}", Thousandths(clip()))}</output>
                            " × the range"
                        </span>
                        <input id="clip" type="range" min="5" max="100" step="1"
                            prop:value=move || (clip() / 10).to_string()
                            aria-valuetext=move || format!("clip at {} of the range", Thousandths(clip()))
                            on:input=on_clip />
                    </label>
                </div>
            </details>
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
pub fn Segmented<T, F>(
    /// The group's visible label.
    legend: &'static str,
    /// The radio group's name.
    name: &'static str,
    /// The chosen value.
    #[prop(into)]
    value: Signal<T>,
    /// Called with the option the reader picks.
    set: F,
    /// The options, in order.
    options: Vec<Choice<T>>,
    /// Extra classes for the fieldset.
    #[prop(default = "control")]
    class: &'static str,
) -> impl IntoView
where
    T: Copy + PartialEq + Send + Sync + 'static,
    F: Fn(T) + Copy + Send + Sync + 'static,
{
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
                                on:change=move |_| set(v)
                            />
                            <span>{c.label}</span>
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
    }
}
