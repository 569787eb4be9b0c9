//! A panic must never leave a dead page: besides logging to the console, show the message in a
//! visible banner so the reader knows to reload and can report what happened.

use wasm_bindgen::JsCast;

pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        show_banner(&info.to_string());
    }));
}

fn show_banner(message: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(banner) = document.create_element("div") else {
        return;
    };
    banner.set_class_name("panic-banner");
    banner.set_attribute("role", "alert").ok();
    banner.set_text_content(Some(&format!(
        "Something went wrong and the playground stopped: {message}. Reload the page to start again."
    )));
    if let Some(body) = document.body() {
        let first = body.first_child();
        body.insert_before(banner.unchecked_ref(), first.as_ref())
            .ok();
    }
}
