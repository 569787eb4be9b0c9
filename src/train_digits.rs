//! The training split (8,000 digits, 6.3 MB), fetched from the same origin only when a section
//! needs it (PTQ's calibration, QAT), never at load.

use quant_core::data::Digits;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The split's files, copied into the build by Trunk (index.html).
pub const IMAGES: &str = "mnist-train-images.idx3-ubyte";
pub const LABELS: &str = "mnist-train-labels.idx1-ubyte";

/// `file`'s URL against the page's base (a worker resolves nothing relative to the page).
pub fn url(file: &str) -> String {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.base_uri().ok().flatten())
        .and_then(|base| web_sys::Url::new_with_base(file, &base).ok())
        .map(|u| u.href())
        .unwrap_or_else(|| file.to_string())
}

/// Fetches and parses the training split (images, then labels), then calls `then`; `progress`
/// hears the images' bytes loaded and expected (0 when the server does not say).
pub fn fetch(
    images_url: &str,
    labels_url: &str,
    progress: impl Fn(f64, f64) + 'static,
    then: impl FnOnce(Result<Digits, String>) + 'static,
) {
    let get = |url: &str,
               progress: Option<Box<dyn Fn(f64, f64)>>,
               then: Box<dyn FnOnce(Result<Vec<u8>, String>)>| {
        let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
            return then(Err("no XMLHttpRequest here".into()));
        };
        xhr.set_response_type(web_sys::XmlHttpRequestResponseType::Arraybuffer);
        if xhr.open("GET", url).is_err() {
            return then(Err(format!("cannot request {url}")));
        }
        let x = xhr.clone();
        let url2 = url.to_string();
        let then = RefCell::new(Some(then));
        let done = Closure::<dyn FnMut()>::new(move || {
            let Some(then) = then.borrow_mut().take() else {
                return;
            };
            let status = x.status().unwrap_or(0);
            if status != 200 && status != 0 {
                return then(Err(format!("{url2}: HTTP {status}")));
            }
            match x.response() {
                Ok(buf) if buf.is_instance_of::<js_sys::ArrayBuffer>() => {
                    then(Ok(js_sys::Uint8Array::new(&buf).to_vec()))
                }
                _ => then(Err(format!("{url2}: no data (offline, or blocked)"))),
            }
        });
        xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
        done.forget();
        if let Some(progress) = progress {
            let on = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(
                move |e: web_sys::ProgressEvent| {
                    let total = if e.length_computable() {
                        e.total()
                    } else {
                        0.0
                    };
                    progress(e.loaded(), total)
                },
            );
            xhr.set_onprogress(Some(on.as_ref().unchecked_ref()));
            on.forget();
        }
        if xhr.send().is_err() {
            // onloadend still fires with status 0 and no response.
        }
    };
    let labels_url = labels_url.to_string();
    get(
        images_url,
        Some(Box::new(progress)),
        Box::new(move |images| {
            let images = match images {
                Ok(b) => b,
                Err(e) => return then(Err(format!("the training digits did not load: {e}"))),
            };
            get(
                &labels_url,
                None,
                Box::new(move |labels| {
                    let train = match labels {
                        Ok(labels) => Digits::from_idx(&images, &labels)
                            .map_err(|e| format!("the training digits are damaged: {e}")),
                        Err(e) => Err(format!("the training labels did not load: {e}")),
                    };
                    then(train)
                }),
            );
        }),
    );
}
