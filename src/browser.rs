//! The few places the app talks to the browser directly: the URL, downloads, and telling a host
//! page how tall the widget is.

use js_sys::{Object, Reflect};
use quant_core::url::{ModelChoice, UrlState};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

/// The page's clock in milliseconds (0 where there is none).
pub fn now() -> f64 {
    // Looked up once per thread: the scheduler reads the clock on every worker report, and the
    // lookup and its type check were ~2 ms of main-thread time per slider move.
    thread_local! {
        // The global's `performance`, not the window's: workers have one too.
        static PERFORMANCE: Option<web_sys::Performance> =
            Reflect::get(&js_sys::global(), &"performance".into())
                .ok()
                .and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
    }
    PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()))
}

/// Removes index.html's "Loading…" note (`#boot`), shown from the first paint until now.
pub fn remove_boot_note() {
    if let Some(note) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("boot"))
    {
        note.remove();
    }
}

/// The state the page's URL asks for, and what in it was ignored.
pub fn read_url() -> (UrlState, Vec<String>) {
    let search = window().location().search().unwrap_or_default();
    UrlState::parse(&search)
}

/// Runs only the last of a burst of calls: each [`Debounce::call`] supersedes those before it,
/// and its function runs `delay` after it if no other call came meanwhile.
#[derive(Clone, Default)]
pub struct Debounce(Rc<Cell<u64>>);

impl Debounce {
    pub fn call(&self, delay: Duration, f: impl FnOnce() + 'static) {
        let generation = self.0.get() + 1;
        self.0.set(generation);
        let latest = self.0.clone();
        leptos::prelude::set_timeout(
            move || {
                if latest.get() == generation {
                    f();
                }
            },
            delay,
        );
    }
}

/// Mirrors the state into the address bar without a reload. In a sandboxed iframe (opaque
/// origin) the browser refuses; the widget works the same without it.
pub fn write_url(state: &UrlState) {
    // replaceState costs 3-6 ms in Chromium, a third of a frame: the address is written once
    // the reader has paused for URL_DELAY_MS, not while they drag (written every 150 ms, it
    // landed inside the next move's frame).
    thread_local! {
        static URL_WRITE: Debounce = Debounce::default();
    }
    let url = format!("?{}", state.to_query());
    URL_WRITE.with(|d| {
        d.call(Duration::from_millis(URL_DELAY_MS), move || {
            let _ = window()
                .history()
                .and_then(|h| h.replace_state_with_url(&JsValue::NULL, "", Some(&url)));
        })
    });
}

const URL_DELAY_MS: u64 = 300;

/// Offers `href` (a data: or blob: URL) as a file download named `name`.
pub fn download(name: &str, href: &str) {
    let Some(document) = window().document() else {
        return;
    };
    let Ok(a) = document.create_element("a") else {
        return;
    };
    let a: web_sys::HtmlAnchorElement = a.unchecked_into();
    a.set_href(href);
    a.set_download(name);
    a.click();
}

/// Offers `text` as a file download.
pub fn download_text(name: &str, mime: &str, text: &str) {
    let encoded = js_sys::encode_uri_component(text);
    download(name, &format!("data:{mime};charset=utf-8,{encoded}"));
}

/// Offers `bytes` as a file download, through a Blob URL (a data: URL of megabytes is slow).
pub fn download_bytes(name: &str, mime: &str, bytes: &[u8]) {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &bag) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    download(name, &url);
    // The click has started the download; the URL can go once this task ends.
    let revoke = url.clone();
    leptos::prelude::set_timeout(
        move || {
            let _ = web_sys::Url::revoke_object_url(&revoke);
        },
        Duration::from_secs(10),
    );
}

/// The session-storage key holding the weights a page runs on instead of the bundled ones:
/// a QAT run's (`model=qat`) or a reader's file's (`model=file`), base64.
fn weights_item(model: ModelChoice) -> &'static str {
    match model {
        ModelChoice::File => "quant-playground:file-weights",
        _ => "quant-playground:qat-weights",
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for b in text.bytes().filter(|&b| b != b'=') {
        let v = B64.iter().position(|&c| c == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn session() -> Result<web_sys::Storage, String> {
    window()
        .session_storage()
        .ok()
        .flatten()
        .ok_or_else(|| "this page has no session storage (an embedded widget has none)".into())
}

/// Keeps weights for this tab (`model=qat` or `model=file` links read them).
pub fn keep_weights(model: ModelChoice, bytes: &[u8]) -> Result<(), String> {
    session()?
        .set_item(weights_item(model), &base64(bytes))
        .map_err(|_| "the browser refused to keep the weights (storage full?)".to_string())
}

/// The weights kept for this tab under `model`, if any.
pub fn kept_weights(model: ModelChoice) -> Result<Vec<u8>, String> {
    let text = session()?
        .get_item(weights_item(model))
        .ok()
        .flatten()
        .ok_or(match model {
            ModelChoice::File => {
                "no network from a file is kept in this tab (it lasts as long as the tab does)"
            }
            _ => "no fine-tuned weights are kept in this tab (they last as long as it does)",
        })?;
    unbase64(&text).ok_or_else(|| "the kept weights are damaged".into())
}

/// Goes to `query` in this tab (a new page: every worker starts again on its network).
pub fn navigate(query: &str) {
    let _ = window().location().set_href(&format!("./?{query}"));
}

/// The message a host page listens for to size the iframe (see README.md).
pub const RESIZE_MESSAGE: &str = "quant-playground:resize";

/// In an iframe, posts the document's height to the parent whenever it changes.
pub fn report_height_to_parent() {
    let w = window();
    let Ok(Some(parent)) = w.parent() else { return };
    if parent == w {
        return;
    }
    let Some(root) = w.document().and_then(|d| d.document_element()) else {
        return;
    };
    let observed = root.clone();
    let post = Closure::<dyn FnMut()>::new(move || {
        let height = observed.get_bounding_client_rect().height().ceil();
        let msg = Object::new();
        let _ = Reflect::set(&msg, &"type".into(), &RESIZE_MESSAGE.into());
        let _ = Reflect::set(&msg, &"height".into(), &height.into());
        let _ = parent.post_message(&msg, "*");
    });
    if let Ok(observer) = web_sys::ResizeObserver::new(post.as_ref().unchecked_ref()) {
        observer.observe(&root);
    }
    // The observer calls back for as long as the page lives.
    post.forget();
}
