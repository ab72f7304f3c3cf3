//! The viewer's calls into the browser: reading a picked or dropped file,
//! fetching a URL, waiting, the page's query string and `<body data-state>`.
//! Natively these compile (web-sys has stubs) but are never called.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, FileList};

/// The files of a `FileList` (an input's or a drop's).
pub fn files(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// The bytes of a file; the CLI's "cannot read NAME" when the browser
/// refuses.
pub async fn read_file(file: &File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("cannot read {}: {}", file.name(), js_error(&e)))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The bytes at `url` (same origin, or anything the page may fetch).
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let cannot = |e: JsValue| format!("cannot fetch {url}: {}", js_error(&e));
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(cannot)?
        .dyn_into()
        .map_err(cannot)?;
    if !response.ok() {
        return Err(format!(
            "cannot fetch {url}: HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(cannot)?)
        .await
        .map_err(cannot)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Resolves after `ms` milliseconds, letting the browser paint (the
/// "decoding…" state) before a long synchronous decode.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Milliseconds since the epoch (for timing a decode).
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Records, as `<body data-KEY>`, the milliseconds from the start of the
/// page's navigation to the first frame painted after this call: what a
/// person waits for. The benchmark (web/e2e/bench.py) reads these marks,
/// so its figures do not depend on how often the driver polls.
pub fn mark_after_paint(key: &'static str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    // A frame callback runs before the paint; a zero timeout set there runs
    // after it.
    let after_paint = Closure::once_into_js(move || {
        let Some(window) = web_sys::window() else {
            return;
        };
        let record = Closure::once_into_js(move || {
            let Some(window) = web_sys::window() else {
                return;
            };
            let at = window.performance().map_or(0.0, |p| p.now());
            if let Some(body) = window.document().and_then(|d| d.body()) {
                let _ = body.dataset().set(key, &format!("{at:.0}"));
            }
        });
        let _ =
            window.set_timeout_with_callback_and_timeout_and_arguments_0(record.unchecked_ref(), 0);
    });
    let _ = window.request_animation_frame(after_paint.unchecked_ref());
}

/// Removes the marks of [`mark_after_paint`] (a new file is being opened).
pub fn clear_marks(keys: &[&str]) {
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        for key in keys {
            body.dataset().delete(key);
        }
    }
}

/// Scrolls the element with this id into view.
pub fn scroll_to(id: &str) {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
    {
        el.scroll_into_view();
    }
}

/// A query parameter of the page's URL.
pub fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// Sets `document.body.dataset.state`.
pub fn set_body_state(state: &str) {
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.dataset().set("state", state);
    }
}

fn js_error(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}
