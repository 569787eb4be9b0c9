//! What the URL asked for that could not be honoured, said plainly and dismissible.

use leptos::prelude::*;

#[component]
pub fn Notices(
    /// One sentence per ignored or adjusted URL parameter.
    notices: Vec<String>,
) -> impl IntoView {
    let shown = RwSignal::new(!notices.is_empty());
    view! {
        <Show when=move || shown.get()>
            <div class="notice" role="status">
                <p>"Some of this link's settings could not be used:"</p>
                <ul>{notices.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
                <button type="button" on:click=move |_| shown.set(false)>"Dismiss"</button>
            </div>
        </Show>
    }
}
