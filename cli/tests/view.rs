//! `pgq view` end to end: the real binary serves the embedded viewer, and
//! headless Chromium loads it; the page's DOM is checked against `pgq
//! inspect --json` of the same file, and a malformed file's error against
//! the one `pgq inspect` prints.
//!
//! Needs the viewer bundle embedded in pgq (`cargo xtask web` before
//! building pgq) and Chromium (`/usr/bin/chromium`, or `PGQ_CHROMIUM`).
//! When either is missing these tests FAIL and say what to install, unless
//! `PGQ_E2E=skip` is set. `scripts/setup.sh` installs Chromium and
//! `scripts/test.sh` builds the bundle first.
//!
//! Environment:
//!   PGQ_E2E=skip          skip (and say so) when the bundle or Chromium is missing
//!   PGQ_CHROMIUM=PATH     the Chromium (or Chrome) binary
//!   PGQ_VIEW_ARTIFACT=F   check this artifact (relative to the repository root) instead
//!                         of the tiny demo
//!   PGQ_SCREENSHOT=1      write the screenshot to docs/viewer.png (the README's)

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod support;

use support::{code, json, pgq, quantize_minilm, scratch, stderr};

// ---------------------------------------------------------------------------
// Prerequisites

/// What `pgq view` says when it was built without the bundle.
const NO_BUNDLE: &str = "built without the browser viewer";

/// Whether this pgq binary embeds the viewer: without it `pgq view` exits 3
/// before looking at its arguments.
fn bundle_embedded() -> Result<(), String> {
    let o = pgq(&["view", "--no-open", "--port", "0", "/nonexistent/x.pgq"]);
    if code(&o) == 3 && stderr(&o).contains(NO_BUNDLE) {
        return Err(format!(
            "this pgq embeds no viewer bundle: run `cargo xtask web`, then rebuild and rerun \
             the tests (pgq view says: {})",
            stderr(&o).trim()
        ));
    }
    Ok(())
}

fn chromium() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PGQ_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("PGQ_CHROMIUM={} is not a file", p.display()))
        };
    }
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.is_file() {
        return Ok(fixed);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome-stable",
            "google-chrome",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(
        "no Chromium: install it (`apt-get install chromium`, as scripts/setup.sh does) \
         or set PGQ_CHROMIUM"
            .into(),
    )
}

/// The Chromium binary when the end-to-end prerequisites are there; `None`
/// (after saying so) when one is missing and PGQ_E2E=skip; a failure
/// otherwise.
fn prerequisites(test: &str, need_chromium: bool) -> Option<Option<PathBuf>> {
    let mut missing = Vec::new();
    if let Err(e) = bundle_embedded() {
        missing.push(e);
    }
    let chrome = if need_chromium {
        match chromium() {
            Ok(c) => Some(c),
            Err(e) => {
                missing.push(e);
                None
            }
        }
    } else {
        None
    };
    if missing.is_empty() {
        return Some(chrome);
    }
    if std::env::var("PGQ_E2E").as_deref() == Ok("skip") {
        // Straight to stderr, past the test harness's capture: a skip is
        // said out loud.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: SKIPPED (PGQ_E2E=skip): {}",
            missing.join("; ")
        );
        return None;
    }
    panic!(
        "{test}: the viewer end-to-end test cannot run: {}.\n\
         `bash scripts/setup.sh` installs Chromium and `bash scripts/test.sh` builds the \
         bundle before the tests; set PGQ_E2E=skip to skip this test explicitly.",
        missing.join("; ")
    );
}

// ---------------------------------------------------------------------------
// Artifacts

/// The artifact under test: PGQ_VIEW_ARTIFACT, or the tiny demo (built once).
fn artifact() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        if let Some(p) = std::env::var_os("PGQ_VIEW_ARTIFACT").filter(|p| !p.is_empty()) {
            // Relative to the repository root (tests run in cli/).
            let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(p);
            return std::fs::canonicalize(&p)
                .unwrap_or_else(|e| panic!("PGQ_VIEW_ARTIFACT={}: {e}", p.display()));
        }
        let dir = scratch("view-demo");
        let o = pgq(&["demo", "--tiny", "--out", dir.to_str().expect("utf-8 path")]);
        assert_eq!(code(&o), 0, "demo failed: {}", stderr(&o));
        dir.join("demo.pgq")
    })
    .clone()
}

/// A code file of `n` bytes.
fn code_file(dir: &Path, n: usize) -> PathBuf {
    let line = b"print('parameter golf')  # padding for the code-bytes total\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(n).collect();
    let path = dir.join("train_gpt.py");
    std::fs::write(&path, body).expect("write code file");
    path
}

// ---------------------------------------------------------------------------
// The server

/// A running `pgq view`, killed when dropped.
struct View {
    child: Child,
    url: String,
    stdout: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl View {
    /// Starts `pgq view --no-open ARGS` in `dir` and waits for its URL.
    fn start(dir: &Path, args: &[&str]) -> View {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgq"))
            .arg("view")
            .arg("--no-open")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pgq view");
        let err = Arc::new(Mutex::new(String::new()));
        {
            let err = Arc::clone(&err);
            let mut pipe = child.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut e) = err.lock() {
                        e.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut view = View {
            child,
            url: String::new(),
            stdout: String::new(),
            stderr: err,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    view.stdout += &line;
                    view.stdout.push('\n');
                    if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                        view.url = url.to_string();
                        return view;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Ok(Some(status)) = view.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "pgq view {args:?} exited ({status}) before printing a URL; stdout: {}; stderr: {}",
                    view.stdout,
                    view.stderr()
                );
            }
        }
        panic!(
            "pgq view {args:?} printed no URL within 60 s; stdout: {}; stderr: {}",
            view.stdout,
            view.stderr()
        );
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn port(&self) -> u16 {
        let rest = self
            .url
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("the URL is not on 127.0.0.1: {}", self.url));
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().expect("port in the URL")
    }
}

/// A raw HTTP/1.1 GET: (status code, head, body).
fn http_get(port: u16, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read response");
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4;
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, head, out[end..].to_vec())
}

// ---------------------------------------------------------------------------
// Chromium

/// Runs a command, killing it after `limit`; returns (exit ok, stdout,
/// stderr, wall time).
fn run_limited(mut cmd: Command, limit: Duration) -> (bool, String, String, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut ok = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                ok = status.success();
                break;
            }
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let wall = start.elapsed();
    let out = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    (ok, out, err, wall)
}

fn chromium_command(chrome: &Path, profile: &Path, budget_ms: u32) -> Command {
    let _ = std::fs::remove_dir_all(profile);
    std::fs::create_dir_all(profile).expect("profile folder");
    let mut cmd = Command::new(chrome);
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--virtual-time-budget={budget_ms}"));
    cmd
}

/// Chromium's serialized DOM of `url` once the page has settled
/// (`data-state` on body), with the wall time of the run that got there.
/// Virtual time lets the page run fetch and WebAssembly set-up; a run that
/// ends too early is retried with a larger budget.
fn dump_dom(chrome: &Path, scratch: &Path, url: &str) -> (String, Duration) {
    let mut last = String::new();
    for (attempt, budget) in [15_000u32, 30_000, 60_000].into_iter().enumerate() {
        let profile = scratch.join(format!("chromium-profile-{attempt}"));
        let mut cmd = chromium_command(chrome, &profile, budget);
        cmd.arg("--dump-dom").arg(url);
        let (ok, dom, err, wall) = run_limited(cmd, Duration::from_secs(120));
        let _ = std::fs::remove_dir_all(&profile);
        let state = Dom::new(&dom).body_attr("data-state");
        if matches!(state.as_deref(), Some("ready") | Some("error")) {
            return (dom, wall);
        }
        eprintln!(
            "dump-dom attempt {} (budget {budget} ms, {:.2} s, exit ok {ok}): body data-state \
             {state:?}; retrying",
            attempt + 1,
            wall.as_secs_f64()
        );
        last = format!(
            "DOM ({} bytes): {}\nChromium stderr (end): {}",
            dom.len(),
            head_chars(&dom, 3000),
            tail_chars(&err, 2000)
        );
    }
    panic!("the page never set body[data-state] to ready or error at {url}\n{last}");
}

fn head_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn tail_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

// ---------------------------------------------------------------------------
// A small reader for Chromium's serialized DOM: start tags with their
// attributes, matching end tags, comments, raw-text elements and entities.

#[derive(Debug, Clone)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
    /// Byte range of the whole start tag.
    start: usize,
    end: usize,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
enum Token {
    Start(Tag),
    End { name: String, start: usize },
}

struct Dom<'a> {
    html: &'a str,
    tokens: Vec<Token>,
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

impl<'a> Dom<'a> {
    fn new(html: &'a str) -> Self {
        Dom {
            html,
            tokens: tokenize(html),
        }
    }

    /// The element whose start tag satisfies `pred`: (its start tag, its
    /// inner HTML).
    fn find(&self, pred: impl Fn(&Tag) -> bool) -> Option<(Tag, &'a str)> {
        self.find_all_in(0, self.html.len(), pred)
            .into_iter()
            .next()
    }

    fn by_id(&self, id: &str) -> Option<(Tag, &'a str)> {
        self.find(|t| t.attr("id") == Some(id))
    }

    /// Every element within byte range `from..to` whose start tag satisfies
    /// `pred` (nested matches included), in document order.
    fn find_all_in(
        &self,
        from: usize,
        to: usize,
        pred: impl Fn(&Tag) -> bool,
    ) -> Vec<(Tag, &'a str)> {
        let mut found = Vec::new();
        for (i, tok) in self.tokens.iter().enumerate() {
            let Token::Start(tag) = tok else { continue };
            if tag.start < from || tag.end > to || !pred(tag) {
                continue;
            }
            if VOID.contains(&tag.name.as_str()) {
                found.push((tag.clone(), ""));
                continue;
            }
            let mut depth = 0usize;
            let mut inner_end = None;
            for later in &self.tokens[i + 1..] {
                match later {
                    Token::Start(t) if t.name == tag.name => depth += 1,
                    Token::End { name, start } if *name == tag.name => {
                        if depth == 0 {
                            inner_end = Some(*start);
                            break;
                        }
                        depth -= 1;
                    }
                    _ => {}
                }
            }
            let inner_end = inner_end.unwrap_or(self.html.len()).min(to);
            found.push((tag.clone(), &self.html[tag.end..inner_end]));
        }
        found
    }

    fn body_attr(&self, name: &str) -> Option<String> {
        self.find(|t| t.name == "body")
            .and_then(|(t, _)| t.attr(name).map(str::to_string))
    }

    /// The text of the element with this id.
    fn text_by_id(&self, id: &str) -> Option<String> {
        self.by_id(id).map(|(_, inner)| text_of(inner))
    }

    /// Byte range of an inner HTML slice within the document.
    fn range_of(&self, inner: &str) -> (usize, usize) {
        let start = inner.as_ptr() as usize - self.html.as_ptr() as usize;
        (start, start + inner.len())
    }
}

fn tokenize(html: &str) -> Vec<Token> {
    let bytes = html.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let lt = i + off;
        let rest = &html[lt..];
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |e| lt + e + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = rest.find('>').map_or(html.len(), |e| lt + e + 1);
            continue;
        }
        if let Some(after) = rest.strip_prefix("</") {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
                .to_ascii_lowercase();
            i = rest.find('>').map_or(html.len(), |e| lt + e + 1);
            if !name.is_empty() {
                tokens.push(Token::End { name, start: lt });
            }
            continue;
        }
        // A start tag: name, then attributes until '>'.
        let mut j = lt + 1;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-') {
            j += 1;
        }
        let name = html[lt + 1..j].to_ascii_lowercase();
        if name.is_empty() {
            // A bare '<' in text (the serializer escapes it, but be lenient).
            i = lt + 1;
            continue;
        }
        let mut attrs = Vec::new();
        loop {
            while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b'/') {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] == b'>' {
                break;
            }
            let k0 = j;
            while j < bytes.len()
                && !matches!(bytes[j], b'=' | b'>' | b'/')
                && !bytes[j].is_ascii_whitespace()
            {
                j += 1;
            }
            let key = html[k0..j].to_ascii_lowercase();
            let mut value = String::new();
            if j < bytes.len() && bytes[j] == b'=' {
                j += 1;
                if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
                    let q = bytes[j];
                    let v0 = j + 1;
                    j = v0;
                    while j < bytes.len() && bytes[j] != q {
                        j += 1;
                    }
                    value = unescape(&html[v0..j.min(bytes.len())]);
                    j = (j + 1).min(bytes.len());
                } else {
                    let v0 = j;
                    while j < bytes.len() && bytes[j] != b'>' && !bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    value = unescape(&html[v0..j]);
                }
            }
            if key.is_empty() {
                j += 1;
            } else {
                attrs.push((key, value));
            }
        }
        let end = (j + 1).min(html.len());
        tokens.push(Token::Start(Tag {
            name: name.clone(),
            attrs,
            start: lt,
            end,
        }));
        i = end;
        // Raw text: skip to the end tag without reading tags inside.
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            match html[i..].to_ascii_lowercase().find(&close) {
                Some(e) => i += e,
                None => break,
            }
        }
    }
    tokens
}

/// The text of an HTML fragment: tags and comments dropped, entities
/// decoded, whitespace runs collapsed and trimmed.
fn text_of(fragment: &str) -> String {
    let mut raw = String::new();
    let mut rest = fragment;
    while let Some(lt) = rest.find('<') {
        raw.push_str(&rest[..lt]);
        let after = &rest[lt..];
        let skip = if after.starts_with("<!--") {
            after.find("-->").map_or(after.len(), |e| e + 3)
        } else {
            after.find('>').map_or(after.len(), |e| e + 1)
        };
        rest = &after[skip..];
    }
    raw.push_str(rest);
    unescape(&raw)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes the entities Chromium's serializer writes (&amp; &lt; &gt;
/// &quot; &nbsp;), &#39;, and numeric references.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after[..after.len().min(12)].find(';') else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One row of the tensor table: its data-name, and data-key -> cell text.
type Row = (String, BTreeMap<String, String>);

/// The page's tensor rows, in document order.
fn tensor_rows(dom: &Dom) -> Result<Vec<Row>, String> {
    let (_, table) = dom
        .by_id("tensor-table")
        .ok_or("no element with id=\"tensor-table\"")?;
    let (t0, t1) = dom.range_of(table);
    let (_, tbody) = dom
        .find_all_in(t0, t1, |t| t.name == "tbody")
        .into_iter()
        .next()
        .ok_or("#tensor-table has no tbody")?;
    let (b0, b1) = dom.range_of(tbody);
    let mut rows = Vec::new();
    for (tr, inner) in dom.find_all_in(b0, b1, |t| t.name == "tr" && t.attr("data-name").is_some())
    {
        let name = tr.attr("data-name").unwrap_or_default().to_string();
        let (r0, r1) = dom.range_of(inner);
        let mut cells = BTreeMap::new();
        for (td, text) in
            dom.find_all_in(r0, r1, |t| t.name == "td" && t.attr("data-key").is_some())
        {
            let key = td.attr("data-key").unwrap_or_default().to_string();
            if cells.insert(key.clone(), text_of(text)).is_some() {
                return Err(format!("row {name:?} has two cells with data-key={key:?}"));
            }
        }
        rows.push((name, cells));
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn dom_reader_handles_what_chromium_writes() {
    let html = "<html><head><script type=\"module\">if (a < b && c > d) { x = '</td>'; }</script>\
        </head><body data-state=\"ready\" class=\"x\"><p id=\"status\">ready</p>\
        <div id=\"error\"><!-- a comment with <b>tags</b> --></div>\
        <span id=\"cap-total\"> 1234 </span><table id=\"tensor-table\"><thead><tr><th>name</th></tr>\
        </thead><tbody><!----><tr data-name=\"a&amp;b&lt;&quot;c&quot;&gt;'\">\
        <td data-key=\"name\">a&amp;b&lt;\"c\"&gt;'</td><td data-key=\"bits\"><span>6</span></td>\
        <td data-key=\"note\">x&nbsp;&#39;y&#x41;</td></tr>\
        <tr data-name=\"b\"><td data-key=\"name\"><table><tr><td>nested</td></tr></table>b</td></tr>\
        </tbody></table><img src=\"x.png\"><br></body></html>";
    let dom = Dom::new(html);
    assert_eq!(dom.body_attr("data-state").as_deref(), Some("ready"));
    assert_eq!(dom.text_by_id("status").as_deref(), Some("ready"));
    assert_eq!(dom.text_by_id("error").as_deref(), Some(""));
    assert_eq!(dom.text_by_id("cap-total").as_deref(), Some("1234"));
    let rows = tensor_rows(&dom).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "a&b<\"c\">'");
    assert_eq!(rows[0].1["name"], "a&b<\"c\">'");
    assert_eq!(rows[0].1["bits"], "6");
    // Whitespace (no-break spaces included) is collapsed in text.
    assert_eq!(rows[0].1["note"], "x 'yA");
    assert_eq!(unescape("&nbsp;&#39;&#x41;&quot;"), "\u{a0}'A\"");
    assert_eq!(rows[1].0, "b");
    assert_eq!(rows[1].1["name"], "nestedb");
    assert_eq!(unescape("&unknown; & &#xZZ; &amp;"), "&unknown; & &#xZZ; &");
}

#[test]
fn view_without_a_bundle_or_a_file_says_what_to_do() {
    let o = pgq(&["view", "--no-open", "--port", "0", "/nonexistent/x.pgq"]);
    let err = stderr(&o);
    match code(&o) {
        3 => {
            assert!(err.contains(NO_BUNDLE), "{err}");
            assert!(err.contains("cargo xtask web"), "{err}");
            assert!(err.contains("rebuild pgq"), "{err}");
        }
        2 => assert!(err.contains("cannot read /nonexistent/x.pgq"), "{err}"),
        other => panic!("exit {other}: {err}"),
    }
    let o = pgq(&["view", "--help"]);
    assert_eq!(code(&o), 0);
    for needle in [
        "127.0.0.1",
        "--port",
        "--code",
        "--no-open",
        "cargo xtask web",
    ] {
        assert!(
            support::stdout(&o).contains(needle),
            "view --help lacks {needle:?}"
        );
    }
}

/// The server alone, over raw HTTP: no browser needed (but the bundle).
/// Through the real `pgq view` (issue 12): 64 clients that, after their
/// response, keep sending a byte every 100 ms are all cut off, and another
/// request is then served rather than refused with 503.
#[test]
fn view_cuts_off_clients_that_trickle_after_their_response() {
    let Some(_) = prerequisites(
        "view_cuts_off_clients_that_trickle_after_their_response",
        false,
    ) else {
        return;
    };
    let dir = scratch("view-trickle");
    let artifact = artifact();
    let view = View::start(&dir, &["--port", "0", artifact.to_str().unwrap()]);
    let port = view.port();
    let trickle = move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let request = format!("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        s.write_all(request.as_bytes()).expect("send");
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if s.write_all(b"x").is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    let clients: Vec<_> = (0..64).map(|_| std::thread::spawn(trickle)).collect();
    for client in clients {
        assert!(
            client.join().unwrap(),
            "a trickling client held its connection for a minute"
        );
    }
    let (status, head, _) = http_get(port, "/artifact.pgq");
    assert_eq!(status, 200, "{head}");
}

#[test]
fn view_serves_the_bundle_and_the_artifact_on_loopback() {
    let Some(_) = prerequisites("view_serves_the_bundle_and_the_artifact_on_loopback", false)
    else {
        return;
    };
    let dir = scratch("view-http");
    let artifact = artifact();
    let code_path = code_file(&dir, 1234);
    let view = View::start(
        &dir,
        &[
            "--port",
            "0",
            "--code",
            code_path.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    let name = artifact.file_name().unwrap().to_str().unwrap();
    assert!(
        view.url.starts_with("http://127.0.0.1:")
            && view.url.contains("/?artifact=/artifact.pgq&name=")
            && view.url.ends_with("&code=1234"),
        "{}",
        view.url
    );
    assert!(view.url.contains(&format!("name={name}")), "{}", view.url);
    let port = view.port();
    let (status, head, body) = http_get(port, "/artifact.pgq");
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, std::fs::read(&artifact).unwrap(), "artifact bytes");
    assert!(head.contains("Cache-Control: no-store"), "{head}");
    let (status, head, body) = http_get(port, "/");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: text/html"), "{head}");
    let html = String::from_utf8_lossy(&body);
    assert!(
        html.to_ascii_lowercase().contains("<html") || html.contains("<!"),
        "{html}"
    );
    // Every script and wasm file the bundle has is served with its type.
    let (status, head, _) = http_get(port, "/pgq_web_bg.wasm");
    assert_eq!(status, 200, "the bundle has no pgq_web_bg.wasm: {head}");
    assert!(
        head.contains("Content-Type: application/wasm\r\n"),
        "{head}"
    );
    let (status, head, _) = http_get(port, "/pgq_web.js");
    assert_eq!(status, 200, "the bundle has no pgq_web.js: {head}");
    assert!(head.contains("Content-Type: text/javascript"), "{head}");
    assert_eq!(http_get(port, "/no-such-file.js").0, 404);
    assert_eq!(http_get(port, "/../Cargo.toml").0, 400);
    // Loopback only: the port is not open on another local address.
    if let Ok(addrs) = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
    {
        let ip = addrs.ip();
        if !ip.is_loopback() && !ip.is_unspecified() {
            let r = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2));
            assert!(r.is_err(), "pgq view answers on {ip}:{port}");
        }
    }
}

/// Serves `artifact` with `pgq view --code F` (F of `code_bytes` bytes),
/// loads the page in headless Chromium, and checks `#status`, `#cap-total`
/// and every cell of `#tensor-table` against `pgq inspect --json`. Returns
/// the running view and inspect's JSON.
fn page_agrees_with_inspect(
    chrome: &Path,
    dir: &Path,
    artifact: &Path,
    code_bytes: usize,
) -> (View, serde_json::Value) {
    let artifact_bytes = std::fs::metadata(artifact).unwrap().len();
    let code_path = code_file(dir, code_bytes);

    // The reference: pgq inspect --json of the same file.
    let o = pgq(&["inspect", "--json", artifact.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let inspect = json(&o);
    let tensors = inspect["tensors"].as_array().expect("tensors[]").clone();

    // 1. The good file.
    let view = View::start(
        dir,
        &[
            "--port",
            "0",
            "--code",
            code_path.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    let (html, wall) = dump_dom(chrome, dir, &view.url);
    std::fs::write(dir.join("good.dom.html"), &html).unwrap();
    let dom = Dom::new(&html);
    let state = dom.body_attr("data-state");
    let error = dom.text_by_id("error").unwrap_or_default();
    assert_eq!(
        state.as_deref(),
        Some("ready"),
        "the good file did not load; #status {:?}, #error {error:?}",
        dom.text_by_id("status")
    );
    assert_eq!(
        dom.text_by_id("status").as_deref(),
        Some("ready"),
        "#status"
    );
    let cap_total = dom.text_by_id("cap-total").expect("no #cap-total");
    assert_eq!(
        cap_total,
        (artifact_bytes + code_bytes as u64).to_string(),
        "#cap-total: artifact {artifact_bytes} + code {code_bytes} bytes"
    );
    let rows = tensor_rows(&dom).expect("tensor rows");
    assert_eq!(
        rows.len(),
        tensors.len(),
        "one #tensor-table row per tensor"
    );
    let by_name: BTreeMap<&str, &BTreeMap<String, String>> =
        rows.iter().map(|(n, c)| (n.as_str(), c)).collect();
    assert_eq!(by_name.len(), rows.len(), "duplicate data-name rows");
    let keys = [
        "name",
        "shape",
        "kind",
        "bits",
        "group_size",
        "params",
        "bytes",
        "bits_per_weight",
        "entropy",
    ];
    let int_or_dash = |v: &serde_json::Value| match v.as_u64() {
        Some(n) => n.to_string(),
        None => "-".to_string(),
    };
    let mut mismatches = BTreeSet::new();
    for t in &tensors {
        let name = t["name"].as_str().expect("name");
        let Some(cells) = by_name.get(name) else {
            panic!("no row with data-name={name:?}");
        };
        for key in keys {
            assert!(cells.contains_key(key), "row {name}: no td[data-key={key}]");
        }
        let expect = [
            ("name", name.to_string()),
            ("params", t["params"].as_u64().expect("params").to_string()),
            ("bytes", t["bytes"].as_u64().expect("bytes").to_string()),
            ("bits", int_or_dash(&t["bits"])),
            ("group_size", int_or_dash(&t["group_size"])),
        ];
        for (key, want) in expect {
            if cells[key] != want {
                mismatches.insert(format!(
                    "{name}: {key} is {:?}, inspect says {want:?}",
                    cells[key]
                ));
            }
        }
        // bits/weight: a number agreeing with inspect to the digits shown.
        let bpw = t["bits_per_weight"].as_f64().expect("bits_per_weight");
        match cells["bits_per_weight"].parse::<f64>() {
            Ok(v) if (v - bpw).abs() <= 0.0051 => {}
            _ => {
                mismatches.insert(format!(
                    "{name}: bits_per_weight is {:?}, inspect says {bpw:.3}",
                    cells["bits_per_weight"]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} cells differ from pgq inspect --json:\n{}",
        mismatches.len(),
        mismatches.into_iter().collect::<Vec<_>>().join("\n")
    );
    eprintln!(
        "viewer e2e: {}: {} rows and #cap-total {cap_total} agree with pgq inspect; \
         Chromium (start, load, fetch, wasm, render, DOM dump) took {:.2} s",
        artifact.display(),
        rows.len(),
        wall.as_secs_f64()
    );

    (view, inspect)
}

/// Real weights: all-MiniLM-L6-v2 (22.7M parameters, 103 float tensors) through
/// `pgq quantize`'s default policy, every section in rANS (the codec the
/// viewer must decode in wasm, and the fastest to write), shown cell for
/// cell as `pgq inspect --json` prints it.
#[test]
fn viewer_shows_the_minilm_artifact_as_inspect_does() {
    let Some(Some(chrome)) =
        prerequisites("viewer_shows_the_minilm_artifact_as_inspect_does", true)
    else {
        return;
    };
    let dir = scratch("view-minilm");
    let artifact = dir.join("minilm.pgq");
    let o = quantize_minilm(&artifact, Some("rans"), &[]);
    assert_eq!(code(&o), 0, "pgq quantize MiniLM: {}", stderr(&o));
    let (_view, inspect) = page_agrees_with_inspect(&chrome, &dir, &artifact, 9_000);
    assert_eq!(
        inspect["tensors"].as_array().map(Vec::len),
        Some(103),
        "MiniLM's float tensors"
    );
    let codecs: Vec<&str> = inspect["sections"]
        .as_array()
        .expect("sections[]")
        .iter()
        .filter_map(|s| s["codec"].as_str())
        .collect();
    assert!(
        !codecs.is_empty() && codecs.iter().all(|&c| c == "rans"),
        "{codecs:?}"
    );
}

#[test]
fn viewer_end_to_end_in_chromium() {
    let Some(Some(chrome)) = prerequisites("viewer_end_to_end_in_chromium", true) else {
        return;
    };
    let dir = scratch("view-e2e");
    let artifact = artifact();
    let (view, inspect) = page_agrees_with_inspect(&chrome, &dir, &artifact, 47_642);

    // 2. The screenshot of the good page.
    let shot = if std::env::var("PGQ_SCREENSHOT").as_deref() == Ok("1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/viewer.png")
    } else {
        dir.join("viewer.png")
    };
    let profile = dir.join("chromium-profile-shot");
    let mut cmd = chromium_command(&chrome, &profile, 15_000);
    cmd.arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1400,1000")
        .arg(&view.url);
    let _ = std::fs::remove_file(&shot);
    let (_, _, err, shot_wall) = run_limited(cmd, Duration::from_secs(120));
    let _ = std::fs::remove_dir_all(&profile);
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}); Chromium stderr: {}",
            shot.display(),
            tail_chars(&err, 2000)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "screenshot is not a PNG of a page"
    );
    eprintln!(
        "viewer e2e: screenshot {} ({} bytes, {:.2} s)",
        shot.display(),
        png.len(),
        shot_wall.as_secs_f64()
    );
    drop(view);

    // 3. A malformed file: the first section with one byte flipped.
    let section = &inspect["sections"][0];
    let offset = section["offset"].as_u64().expect("sections[0].offset");
    let stored = section["stored_bytes"]
        .as_u64()
        .expect("sections[0].stored_bytes");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let at = (offset + stored / 2) as usize;
    bytes[at] ^= 0x40;
    let bad = dir.join("bad.pgq");
    std::fs::write(&bad, &bytes).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pgq"))
        .args(["inspect", "bad.pgq"])
        .current_dir(&dir)
        .output()
        .expect("run pgq inspect");
    assert_eq!(code(&o), 2, "inspect of the flipped byte: {}", stderr(&o));
    let cli_line = stderr(&o).trim().to_string();
    let message = cli_line
        .strip_prefix("pgq: error: ")
        .unwrap_or_else(|| panic!("inspect's stderr: {cli_line}"))
        .to_string();

    let view = View::start(&dir, &["--port", "0", "bad.pgq"]);
    assert!(view.url.contains("name=bad.pgq"), "{}", view.url);
    let (html, wall) = dump_dom(&chrome, &dir, &view.url);
    std::fs::write(dir.join("bad.dom.html"), &html).unwrap();
    let dom = Dom::new(&html);
    assert_eq!(
        dom.body_attr("data-state").as_deref(),
        Some("error"),
        "body[data-state]"
    );
    assert_eq!(
        dom.text_by_id("status").as_deref(),
        Some("error"),
        "#status"
    );
    let shown = dom.text_by_id("error").expect("no #error");
    let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let detail = message
        .split_once(" is not a valid .pgq file: ")
        .map_or(message.as_str(), |(_, d)| d);
    assert!(
        collapse(&shown).contains(&collapse(&message)),
        "#error should contain pgq inspect's message\n  inspect: {message}\n  #error:  {shown}\n  \
         (contains the detail after \"is not a valid .pgq file: \": {})",
        collapse(&shown).contains(&collapse(detail))
    );
    // pgq view printed the same error when it started.
    let served_err = view.stderr();
    assert!(
        served_err.contains(&cli_line),
        "pgq view's stderr: {served_err}\ninspect: {cli_line}"
    );
    eprintln!(
        "viewer e2e: the flipped byte at {at} shows #error {shown:?} ({:.2} s)",
        wall.as_secs_f64()
    );
}
