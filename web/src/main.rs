//! The viewer's entry point: `wasm-bindgen --target web` makes `init()` in
//! pgq_web.js call this `main`, which mounts the app on `<body>`.

fn main() {
    #[cfg(target_arch = "wasm32")]
    pgq_web::start();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("pgq-web runs in a browser: `cargo xtask web` builds it into web/dist");
}
