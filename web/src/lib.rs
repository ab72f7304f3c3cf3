//! pgq-web: the browser viewer of `.pgq` artifacts.
//!
//! - [`model`]: pure functions from bytes to view data (decoding, budgets,
//!   verification, formatting), over pgq-format and pgq-verifier; tested
//!   natively.
//! - [`app`]: the top component and its state.
//! - [`components`]: the cap gauge, the per-layer chart, the tensor table,
//!   a tensor's detail, the verification checks and the comparison.
//! - [`browser`]: the few calls into the browser (files, fetch, timers).
//!
//! Everything compiles natively too (leptos renders nothing there), so the
//! workspace's `cargo clippy` and `cargo test` cover it; `cargo xtask web`
//! builds the wasm bundle into web/dist.

pub mod app;
pub mod browser;
pub mod components;
pub mod model;

/// Mounts the viewer on `<body>` (in the browser).
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
