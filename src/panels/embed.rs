//! "Embed this view": the iframe snippet for the current settings, ready to copy into a post.

use crate::app::Settings;
use leptos::prelude::*;
use quant_core::url::Panel;
use wasm_bindgen::JsCast;

#[component]
pub fn EmbedPanel(
    /// The reader's choices, baked into the snippet.
    settings: Settings,
) -> impl IntoView {
    let panel = RwSignal::new(Panel::Histogram);
    let controls = RwSignal::new(true);
    let snippet = move || {
        let mut state = settings.url_state();
        state.embed = Some(panel.get());
        state.controls = controls.get();
        let location = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .unwrap_or_default();
        let base = location
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string();
        format!(
            "<iframe src=\"{base}?{}\" title=\"Quantization Playground: {}\" width=\"100%\" height=\"560\" style=\"border:0\" loading=\"lazy\" sandbox=\"allow-scripts\"></iframe>",
            state.to_query(),
            panel.get().name()
        )
    };
    let textarea = NodeRef::<leptos::html::Textarea>::new();
    let copied = RwSignal::new(false);
    let copy = move |_| {
        if let Some(t) = textarea.get() {
            t.select();
            // execCommand is deprecated but needs no permission, works over plain http, and
            // leaves the text selected for a manual copy if it fails.
            let ok = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| js_sys::Reflect::get(&d, &"execCommand".into()).ok())
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .and_then(|f| {
                    f.call1(&web_sys::window()?.document()?.into(), &"copy".into())
                        .ok()
                })
                .is_some_and(|r| r.is_truthy());
            copied.set(ok);
        }
    };
    view! {
        <section class="panel wide" aria-labelledby="embed-title">
            <h2 id="embed-title">"Embed this view"</h2>
            <p class="explain">
                "Paste this into a blog post to show one panel, live, at exactly these settings. "
                "The widget reports its height to the page (see the README for the three lines of "
                "script that size the iframe) and needs no cookies, storage or network."
            </p>
            <div class="embed-options">
                <label>
                    "Panel "
                    <select on:change=move |ev| {
                        let v = event_target_value(&ev);
                        if let Some(p) = Panel::ALL.into_iter().find(|p| p.name() == v) {
                            panel.set(p);
                        }
                    }>
                        {Panel::ALL.iter().map(|p| view! { <option value=p.name() selected=*p == Panel::Histogram>{p.name()}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    <input type="checkbox" prop:checked=move || controls.get() on:change=move |ev| controls.set(event_target_checked(&ev)) />
                    " with controls"
                </label>
            </div>
            <textarea node_ref=textarea readonly rows="3" aria-label="iframe snippet" prop:value=snippet></textarea>
            <button type="button" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy snippet" }}</button>
        </section>
    }
}
