//! The top component and the viewer's state: which artifacts are open, the
//! code bytes, the verification report, the selected tensor.

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use pgq_verifier::Report;
use web_sys::File;

use crate::browser;
use crate::components::{
    checks::Checks, compare::Compare, detail::Detail, gauge::Gauge, layers::Layers,
    table::TensorTable,
};
use crate::model::{self, Artifact, CodeBytes};

/// Where the main artifact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Empty,
    Decoding,
    Ready,
    Error,
}

impl Phase {
    /// `document.body.dataset.state`.
    pub fn state(self) -> &'static str {
        match self {
            Phase::Empty => "empty",
            Phase::Decoding => "decoding",
            Phase::Ready => "ready",
            Phase::Error => "error",
        }
    }

    /// The text of `#status`.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Empty => "no file open",
            Phase::Decoding => "decoding…",
            Phase::Ready => "ready",
            Phase::Error => "error",
        }
    }
}

/// Which input a file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Main,
    Compare,
}

/// The viewer's state, shared with every component through the context.
#[derive(Clone, Copy)]
pub struct State {
    pub phase: RwSignal<Phase>,
    /// The file being decoded.
    pub loading: RwSignal<Option<String>>,
    pub error: RwSignal<Option<String>>,
    pub main: RwSignal<Option<Arc<Artifact>>>,
    pub other: RwSignal<Option<Arc<Artifact>>>,
    pub other_loading: RwSignal<Option<String>>,
    pub other_error: RwSignal<Option<String>>,
    pub code: RwSignal<CodeBytes>,
    pub report: RwSignal<Option<Result<Report, String>>>,
    pub verifying: RwSignal<bool>,
    /// Bumped by every new verification; a stale one is dropped.
    verify_generation: RwSignal<u64>,
    /// Index (file order) of the tensor whose detail is shown.
    pub selected: RwSignal<Option<usize>>,
    /// The tensor table's filter box.
    pub filter: RwSignal<String>,
    /// A tensor to select once the preloaded artifact is open (`?tensor=`).
    preselect: RwSignal<Option<String>>,
    /// How long the last decode of the main artifact took.
    pub decode_ms: RwSignal<Option<f64>>,
}

impl State {
    fn new() -> State {
        State {
            phase: RwSignal::new(Phase::Empty),
            loading: RwSignal::new(None),
            error: RwSignal::new(None),
            main: RwSignal::new(None),
            other: RwSignal::new(None),
            other_loading: RwSignal::new(None),
            other_error: RwSignal::new(None),
            code: RwSignal::new(CodeBytes::default()),
            report: RwSignal::new(None),
            verifying: RwSignal::new(false),
            verify_generation: RwSignal::new(0),
            selected: RwSignal::new(None),
            filter: RwSignal::new(String::new()),
            preselect: RwSignal::new(None),
            decode_ms: RwSignal::new(None),
        }
    }

    /// Opens a picked or dropped file.
    pub fn open_file(self, file: File, target: Target) {
        let name = file.name();
        if let Err(message) = model::check_size(&name, file.size() as u64) {
            self.fail(target, message);
            return;
        }
        self.begin(target, &name);
        spawn_local(async move {
            match browser::read_file(&file).await {
                Ok(bytes) => self.decode(target, name, bytes).await,
                Err(message) => self.fail(target, message),
            }
        });
    }

    /// Fetches `url` and opens it as `name` (the `?artifact=` preload).
    pub fn open_url(self, url: String, name: String, target: Target) {
        self.begin(target, &name);
        spawn_local(async move {
            match browser::fetch_bytes(&url).await {
                Ok(bytes) => self.decode(target, name, bytes).await,
                Err(message) => self.fail(target, message),
            }
        });
    }

    fn begin(self, target: Target, name: &str) {
        match target {
            Target::Main => {
                self.phase.set(Phase::Decoding);
                browser::clear_marks(&["readyMs", "checkedMs"]);
                self.loading.set(Some(name.to_string()));
                self.error.set(None);
            }
            Target::Compare => {
                self.other_loading.set(Some(name.to_string()));
                self.other_error.set(None);
            }
        }
    }

    fn fail(self, target: Target, message: String) {
        match target {
            Target::Main => {
                self.main.set(None);
                self.report.set(None);
                self.selected.set(None);
                self.loading.set(None);
                self.error.set(Some(message));
                self.phase.set(Phase::Error);
            }
            Target::Compare => {
                self.other.set(None);
                self.other_loading.set(None);
                self.other_error.set(Some(message));
            }
        }
    }

    async fn decode(self, target: Target, name: String, bytes: Vec<u8>) {
        // Let the browser paint "decoding…" before the synchronous decode.
        browser::sleep(30).await;
        let started = browser::now_ms();
        match Artifact::open(&name, bytes) {
            Ok(artifact) => {
                let artifact = Arc::new(artifact);
                match target {
                    Target::Main => {
                        self.decode_ms.set(Some(browser::now_ms() - started));
                        let preselect = self
                            .preselect
                            .get_untracked()
                            .and_then(|name| artifact.rows.iter().position(|r| r.name == name));
                        self.preselect.set(None);
                        self.selected.set(preselect);
                        // A filter such as layer:NAME may name nothing in
                        // the new file: start from all its tensors.
                        self.filter.set(String::new());
                        self.report.set(None);
                        self.main.set(Some(artifact));
                        self.loading.set(None);
                        self.error.set(None);
                        self.phase.set(Phase::Ready);
                        browser::mark_after_paint("readyMs");
                        self.verify_later(60);
                    }
                    Target::Compare => {
                        self.other.set(Some(artifact));
                        self.other_loading.set(None);
                    }
                }
            }
            Err(message) => self.fail(target, message),
        }
    }

    /// Sets the code bytes and re-runs the verification after `delay_ms`
    /// (typing in the number box does not verify at every keystroke).
    pub fn set_code(self, code: CodeBytes, delay_ms: i32) {
        if self.code.get_untracked() != code {
            self.code.set(code);
            self.verify_later(delay_ms);
        }
    }

    /// Runs `pgq verify` on the main artifact after `delay_ms`, unless a
    /// newer request came in meanwhile.
    fn verify_later(self, delay_ms: i32) {
        if self.main.get_untracked().is_none() {
            return;
        }
        let generation = self.verify_generation.get_untracked() + 1;
        self.verify_generation.set(generation);
        self.verifying.set(true);
        spawn_local(async move {
            browser::sleep(delay_ms).await;
            if self.verify_generation.get_untracked() != generation {
                return;
            }
            let Some(artifact) = self.main.get_untracked() else {
                self.verifying.set(false);
                return;
            };
            let report = artifact.verify(&self.code.get_untracked());
            if self.verify_generation.get_untracked() == generation {
                self.report.set(Some(report));
                self.verifying.set(false);
                browser::mark_after_paint("checkedMs");
            }
        });
    }
}

/// The state of the enclosing [`App`].
pub fn use_state() -> State {
    expect_context::<State>()
}

/// Opens what the page's address names, if anything:
/// `?artifact=URL&name=NAME` (the artifact and its file name), `code=N`
/// (code bytes), `compare=URL&compare_name=NAME` (a second artifact),
/// `tensor=NAME` (the tensor whose detail to show).
fn preload(state: State) {
    if let Some(code) = browser::query_param("code").and_then(|c| model::parse_code_bytes(&c)) {
        state.set_code(CodeBytes::typed(code), 0);
    }
    let open = |url_key: &str, name_key: &str, target: Target| {
        if let Some(url) = browser::query_param(url_key).filter(|u| !u.is_empty()) {
            let name = browser::query_param(name_key)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| model::file_name_of(&url));
            state.open_url(url, name, target);
        }
    };
    state.preselect.set(browser::query_param("tensor"));
    open("artifact", "name", Target::Main);
    open("compare", "compare_name", Target::Compare);
}

/// A file input's chosen files, then clears it (so that choosing the same
/// file again fires `change` again).
fn take_files(ev: &leptos::ev::Event) -> Vec<File> {
    let input: web_sys::HtmlInputElement = event_target(ev);
    let files = browser::files(input.files());
    input.set_value("");
    files
}

fn dropped_files(ev: &leptos::ev::DragEvent) -> Vec<File> {
    ev.prevent_default();
    ev.stop_propagation();
    browser::files(ev.data_transfer().and_then(|d| d.files()))
}

/// A drop on the compare or code-bytes box is that box's alone (it does
/// not reach the page's handler, which would open the file as the main
/// artifact), so the page's drop highlight is cleared here.
fn claim_drop(ev: &leptos::ev::DragEvent, dragging: RwSignal<bool>) -> Vec<File> {
    dragging.set(false);
    dropped_files(ev)
}

/// Code files: their sizes count against the cap.
fn code_files(state: State, files: Vec<File>) {
    if files.is_empty() {
        return;
    }
    let files = files
        .iter()
        .map(|f| (f.name(), f.size() as u64))
        .collect::<Vec<_>>();
    state.set_code(CodeBytes { files }, 0);
}

#[component]
pub fn App() -> impl IntoView {
    let state = State::new();
    provide_context(state);

    Effect::new(move |_| browser::set_body_state(state.phase.get().state()));
    #[cfg(target_arch = "wasm32")]
    preload(state);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = preload;

    let dragging = RwSignal::new(false);
    let code_text = move || {
        let n = state.code.get().bytes();
        if n == 0 {
            String::new()
        } else {
            n.to_string()
        }
    };
    let code_files_label = move || {
        let code = state.code.get();
        code.file_names()
            .map(|names| format!("{names}: {} bytes", model::thousands(code.bytes())))
    };

    view! {
        <div
            class="app"
            class:dragging=move || dragging.get()
            on:dragover=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |ev: leptos::ev::DragEvent| {
                if ev.related_target().is_none() {
                    dragging.set(false);
                }
            }
            on:drop=move |ev: leptos::ev::DragEvent| {
                dragging.set(false);
                if let Some(f) = dropped_files(&ev).into_iter().next() {
                    state.open_file(f, Target::Main);
                }
            }
        >
            <header class="top">
                <div class="brand">
                    <h1>"pgq viewer"</h1>
                    <p class="tagline">
                        "Where the bytes of a parameter-golf artifact go, against the 16,000,000-byte cap. Everything runs in this page: nothing is uploaded."
                    </p>
                </div>
                <div class="status-box">
                <p
                    id="status"
                    class=move || format!("status status-{}", state.phase.get().state())
                    role="status"
                    aria-live="polite"
                >
                    {move || state.phase.get().label()}
                </p>
                <p class="timing muted">{move || (state.phase.get() == Phase::Ready).then(|| state.decode_ms.get()).flatten().filter(|&ms| ms >= 1.0).map(|ms| {
                    format!("decoded and validated in {:.2} s", ms / 1000.0)
                })}</p>
                </div>
            </header>

            <section class="inputs" aria-label="Files">
                <div class="input-group primary-input">
                    <label for="file-input">"Artifact (.pgq)"</label>
                    <input id="file-input" type="file" accept=".pgq,application/octet-stream"
                        on:change=move |ev| {
                            if let Some(f) = take_files(&ev).into_iter().next() {
                                state.open_file(f, Target::Main);
                            }
                        }
                    />
                    <span class="hint">"or drop it anywhere on the page"</span>
                </div>
                <div class="input-group"
                    on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
                    on:drop=move |ev: leptos::ev::DragEvent| {
                        if let Some(f) = claim_drop(&ev, dragging).into_iter().next() {
                            state.open_file(f, Target::Compare);
                        }
                    }
                >
                    <label for="compare-input">"Compare with"</label>
                    <input id="compare-input" type="file" accept=".pgq,application/octet-stream"
                        on:change=move |ev| {
                            if let Some(f) = take_files(&ev).into_iter().next() {
                                state.open_file(f, Target::Compare);
                            }
                        }
                    />
                    <span class="hint">"a second .pgq: per-layer byte deltas"</span>
                </div>
                <div class="input-group"
                    on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
                    on:drop=move |ev: leptos::ev::DragEvent| code_files(state, claim_drop(&ev, dragging))
                >
                    <label for="code-bytes">"Code bytes"</label>
                    <div class="code-row">
                        <input id="code-bytes" type="number" min="0" step="1" inputmode="numeric"
                            placeholder="e.g. 47642"
                            prop:value=code_text
                            on:input=move |ev| {
                                if let Some(n) = model::parse_code_bytes(&event_target_value(&ev)) {
                                    state.set_code(CodeBytes::typed(n), 400);
                                }
                            }
                        />
                        <label class="or" for="code-input">"or the code file(s):"</label>
                        <input id="code-input" type="file" multiple
                            on:change=move |ev| code_files(state, take_files(&ev))
                        />
                    </div>
                    <span class="hint">
                        {move || code_files_label().unwrap_or_else(|| "train_gpt.py etc.: their bytes count against the cap too".into())}
                    </span>
                </div>
            </section>

            <div id="error" role="alert" class:shown=move || state.error.get().is_some()>
                {move || state.error.get()}
            </div>

            {move || match state.phase.get() {
                Phase::Decoding => view! {
                    <div class="decoding" aria-busy="true">
                        <span class="spinner" aria-hidden="true"></span>
                        {move || format!("decoding {}…", state.loading.get().unwrap_or_default())}
                    </div>
                }.into_any(),
                Phase::Empty => view! {
                    <div class="empty">
                        <p class="big">"Open a .pgq artifact"</p>
                        <p>"Choose it above, or drop it here. The file is decoded and checked in this page (WebAssembly): every CRC, code and scale, the decode digest, the cap."</p>
                        <p class="small">"Make one with "<code>"pgq quantize model.safetensors -o model.pgq"</code>" or "<code>"pgq demo"</code>"."</p>
                    </div>
                }.into_any(),
                _ => ().into_any(),
            }}

            <Show when=move || state.main.get().is_some() && state.phase.get() == Phase::Ready>
                <main class="report">
                    <Gauge/>
                    <Layers/>
                    <div class="two-col">
                        <TensorTable/>
                        <Detail/>
                    </div>
                    <Checks/>
                    <Compare/>
                </main>
            </Show>
            <footer>
                "pgq "{env!("CARGO_PKG_VERSION")}" · decoding and checks by pgq-format and pgq-verifier compiled to WebAssembly · works offline"
            </footer>
        </div>
    }
}
