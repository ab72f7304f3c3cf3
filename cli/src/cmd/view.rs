//! `pgq view`: the browser viewer, served on 127.0.0.1 with the artifact
//! preloaded.
//!
//! The viewer (web/, built into web/dist/ by `cargo xtask web`) is embedded
//! in the binary at build time (cli/build.rs). The server is a small
//! HTTP/1.1 server on std::net: GET and HEAD only, one short-lived thread
//! per connection (at most `MAX_CONNECTIONS` at once), `Connection: close`,
//! bounded request heads and time limits, and nothing read from the network
//! can make it panic.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use pgq_format::{read, ReadOptions};

use crate::exit::{CliError, CliResult, Malformed, OK};
use crate::files::{check_memory, code_file_sizes, read_limited};
use crate::render::thousands;

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/web_bundle.rs"));
}

/// Open the browser viewer on an artifact, served from 127.0.0.1.
///
/// Serves the viewer (the same decoder, compiled to WebAssembly) on
/// http://127.0.0.1:PORT/ with FILE preloaded, prints the URL, opens it in
/// the default browser unless --no-open, and serves until Ctrl-C. Only the
/// loopback interface is bound: nothing is reachable from other machines,
/// and requests naming another host are refused.
///
/// The file is read once at start, with the same size limit as `pgq
/// inspect`. A malformed file is still served, so that the page shows the
/// error; the error is printed here too.
///
/// --code FILE counts a code file's bytes against the 16,000,000-byte cap,
/// as `pgq verify --code` does (repeatable).
///
/// When the port is busy, a free one is picked and printed; --port 0 always
/// picks a free one.
///
/// The viewer is embedded at build time from web/dist; a pgq built without
/// it exits 3 and says how to build it (`cargo xtask web`, then rebuild
/// pgq).
#[derive(Args, Debug)]
pub struct ViewArgs {
    /// The .pgq artifact.
    pub file: PathBuf,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// A code file counted against the cap (repeatable).
    #[arg(long, value_name = "FILE")]
    pub code: Vec<PathBuf>,
    /// Do not open a browser; only print the URL.
    #[arg(long)]
    pub no_open: bool,
}

/// The path the artifact is served at.
const ARTIFACT_PATH: &str = "/artifact.pgq";
/// Connections handled at once; more get 503.
const MAX_CONNECTIONS: usize = 64;
/// The longest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time allowed for a whole request head to arrive.
const HEAD_DEADLINE: Duration = Duration::from_secs(15);
/// Time allowed for one read or write on a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole exchange, head to last byte: a client that
/// reads the response slowly cannot hold a connection longer.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(60);
/// After the response, how long what the client still sends is drained
/// before the connection is closed (so that closing does not reset it):
/// a client that keeps sending is cut off then.
const DRAIN_DEADLINE: Duration = Duration::from_millis(500);
/// Bytes written at a time, so that the exchange deadline is checked.
const WRITE_CHUNK: usize = 256 * 1024;

pub fn run(args: &ViewArgs) -> CliResult<u8> {
    let Some(files) = bundle::WEB_BUNDLE else {
        return Err(CliError::usage(missing_bundle_message()));
    };
    let options = ReadOptions::default();
    let bytes = read_limited(&args.file, options.max_file_bytes)?;
    check_memory(&bytes, &args.file, false)?;
    let code_bytes: u64 = code_file_sizes(&args.code)?
        .iter()
        .map(|(_, bytes)| bytes)
        .sum();
    // Served either way: the page shows the same error.
    if let Err(e) = read(&bytes, &options)
        .malformed(format!("{} is not a valid .pgq file", args.file.display()))
    {
        eprintln!(
            "pgq: error: {}",
            pgq_verifier::format::printable(&e.to_string())
        );
        eprintln!("pgq view: serving it anyway, so that the viewer shows the error");
    }

    let (listener, note) = bind(args.port)?;
    if let Some(note) = note {
        eprintln!("pgq view: {note}");
    }
    let port = listener
        .local_addr()
        .map_err(|e| CliError::malformed(anyhow::anyhow!("cannot read the bound address: {e}")))?
        .port();
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact.pgq".into());
    let code = (!args.code.is_empty()).then_some(code_bytes);
    let url = viewer_url(port, &name, code);

    let artifact_len = bytes.len() as u64;
    let site = Arc::new(Site::new(
        files
            .iter()
            .map(|&(p, b)| (p.to_string(), Cow::Borrowed(b))),
        bytes,
        port,
    ));
    let code_note = match code {
        Some(n) => format!(" + {} code bytes", thousands(n)),
        None => String::new(),
    };
    // Not println!: a closed stdout (`pgq view f | head -1`) must not stop
    // the server.
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "pgq view: serving {name} ({} bytes{code_note}) on 127.0.0.1:{port} only; Ctrl-C stops",
        thousands(artifact_len)
    );
    let _ = writeln!(out, "{url}");
    let _ = out.flush();
    drop(out);
    if !args.no_open {
        open_browser(&url);
    }
    serve(listener, site);
    Ok(OK)
}

fn missing_bundle_message() -> String {
    format!(
        "this pgq was built without the browser viewer (no bundle at {} when it was built): \
         build the viewer with `cargo xtask web` in the pgq repository, then rebuild pgq \
         (`cargo build --release -p pgq`)",
        bundle::WEB_BUNDLE_DIR
    )
}

/// Binds 127.0.0.1:`port`, or a free port when `port` is 0 or cannot be
/// bound; the note says why another port was taken.
fn bind(port: u16) -> CliResult<(TcpListener, Option<String>)> {
    let any = || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| CliError::malformed(anyhow::anyhow!("cannot listen on 127.0.0.1: {e}")))
    };
    if port == 0 {
        return Ok((any()?, None));
    }
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(l) => Ok((l, None)),
        Err(e) => {
            let l = any()?;
            let got = l.local_addr().map(|a| a.port()).unwrap_or(0);
            let why = if e.kind() == io::ErrorKind::AddrInUse {
                "is busy".to_string()
            } else {
                format!("cannot be used ({e})")
            };
            Ok((
                l,
                Some(format!("port {port} {why}; using port {got} instead")),
            ))
        }
    }
}

/// `http://127.0.0.1:PORT/?artifact=/artifact.pgq&name=NAME[&code=N]`.
fn viewer_url(port: u16, name: &str, code: Option<u64>) -> String {
    let mut url = format!(
        "http://127.0.0.1:{port}/?artifact={ARTIFACT_PATH}&name={}",
        percent_encode(name)
    );
    if let Some(n) = code {
        url += &format!("&code={n}");
    }
    url
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// Opens `url` in the default browser, without waiting for it; a failure
/// is only reported (the URL is printed anyway).
fn open_browser(url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match command.spawn() {
        // Reaped by a thread so that no zombie is left behind.
        Ok(mut child) => {
            let _ = std::thread::Builder::new().spawn(move || child.wait());
        }
        Err(e) => eprintln!("pgq view: cannot open a browser ({e}); open the URL above"),
    }
}

/// What the server serves: the bundle's files by path, and the artifact.
struct Site {
    files: HashMap<String, Cow<'static, [u8]>>,
    artifact: Vec<u8>,
    port: u16,
}

impl Site {
    fn new(
        files: impl IntoIterator<Item = (String, Cow<'static, [u8]>)>,
        artifact: Vec<u8>,
        port: u16,
    ) -> Self {
        Site {
            files: files.into_iter().collect(),
            artifact,
            port,
        }
    }
}

/// Accepts connections until the process ends.
fn serve(listener: TcpListener, site: Arc<Site>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // E.g. out of file descriptors: wait rather than spin.
                eprintln!("pgq view: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = respond(&mut stream, Status::Unavailable, false);
            continue;
        }
        let site = Arc::clone(&site);
        let done = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("pgq-view-conn".into())
            .spawn(move || {
                let _ = handle(stream, &site);
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Timeout,
    TooLarge,
    Unavailable,
    VersionNotSupported,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::Forbidden => "403 Forbidden",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Timeout => "408 Request Timeout",
            Status::TooLarge => "431 Request Header Fields Too Large",
            Status::Unavailable => "503 Service Unavailable",
            Status::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }
}

/// The response to one request: a status, and for 200 the body and type.
#[derive(Debug, PartialEq, Eq)]
enum Reply<'a> {
    File {
        body: &'a [u8],
        content_type: &'static str,
    },
    Error(Status),
}

/// Handles one connection: one request, one response, close.
fn handle(mut stream: TcpStream, site: &Site) -> io::Result<()> {
    let start = Instant::now();
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let (reply, head_only) = match read_head(&mut stream) {
        Ok(head) => {
            let head_only = head.starts_with(b"HEAD ");
            (route(&head, site), head_only)
        }
        Err(status) => (Reply::Error(status), false),
    };
    match reply {
        Reply::File { body, content_type } => {
            write_head(&mut stream, Status::Ok, content_type, body.len())?;
            if !head_only {
                for chunk in body.chunks(WRITE_CHUNK) {
                    if start.elapsed() > EXCHANGE_DEADLINE {
                        // Too slow a reader: drop the connection.
                        let _ = stream.shutdown(Shutdown::Both);
                        return Ok(());
                    }
                    stream.write_all(chunk)?;
                }
            }
            stream.flush()?;
        }
        Reply::Error(status) => respond(&mut stream, status, head_only)?,
    }
    finish(stream);
    Ok(())
}

/// Reads the request head (up to and including the empty line). Errors are
/// the status to answer with.
fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, Status> {
    let start = Instant::now();
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(Status::TooLarge);
        }
        if start.elapsed() > HEAD_DEADLINE {
            return Err(Status::Timeout);
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(Status::BadRequest),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Status::Timeout)
            }
            Err(_) => return Err(Status::BadRequest),
        }
    }
}

/// The length of the head including its terminating empty line (CRLF CRLF,
/// or bare LF LF from lenient clients), when complete.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Decides the reply to a complete request head.
fn route<'a>(head: &[u8], site: &'a Site) -> Reply<'a> {
    let Ok(text) = std::str::from_utf8(head) else {
        return Reply::Error(Status::BadRequest);
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Reply::Error(Status::BadRequest);
    };
    let Some(minor) = version.strip_prefix("HTTP/1.") else {
        return Reply::Error(if version.starts_with("HTTP/") {
            Status::VersionNotSupported
        } else {
            Status::BadRequest
        });
    };
    if minor != "0" && minor != "1" {
        return Reply::Error(Status::VersionNotSupported);
    }
    let mut host = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Reply::Error(Status::BadRequest);
        };
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Reply::Error(Status::BadRequest);
            }
            host = Some(value.trim());
        }
    }
    // HTTP/1.1 requires Host. Checking it defeats DNS rebinding: a page on
    // another site that resolves its own name to 127.0.0.1 sends that name.
    match host {
        Some(h) if host_is_local(h, site.port) => {}
        Some(_) => return Reply::Error(Status::Forbidden),
        None if minor == "0" => {}
        None => return Reply::Error(Status::BadRequest),
    }
    if method != "GET" && method != "HEAD" {
        return Reply::Error(Status::MethodNotAllowed);
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let Some(path) = percent_decode(path) else {
        return Reply::Error(Status::BadRequest);
    };
    let Some(rel) = path.strip_prefix('/') else {
        return Reply::Error(Status::BadRequest);
    };
    if rel.contains(['\\', '\0']) || rel.contains("..") || rel.split('/').any(|seg| seg == ".") {
        return Reply::Error(Status::BadRequest);
    }
    if path == ARTIFACT_PATH {
        return Reply::File {
            body: &site.artifact,
            content_type: "application/octet-stream",
        };
    }
    let rel = if rel.is_empty() { "index.html" } else { rel };
    match site.files.get(rel) {
        Some(body) => Reply::File {
            body,
            content_type: content_type(rel),
        },
        None => Reply::Error(Status::NotFound),
    }
}

/// Whether a Host header names this server: 127.0.0.1, localhost or [::1],
/// with this port or none.
fn host_is_local(host: &str, port: u16) -> bool {
    let (name, host_port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && !p.ends_with(']') => (n, Some(p)),
        _ => (host, None),
    };
    let name_ok = name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost") || name == "[::1]";
    let port_ok = match host_port {
        None => true,
        Some(p) => p.parse::<u16>() == Ok(port),
    };
    name_ok && port_ok
}

/// Decodes %XX escapes; `None` for a bad escape or a result that is not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Content-Type for a bundle path, by extension.
fn content_type(path: &str) -> &'static str {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        // Required for WebAssembly.instantiateStreaming / compileStreaming.
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" | "map" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn write_head(
    stream: &mut TcpStream,
    status: Status,
    content_type: &str,
    len: usize,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Cross-Origin-Resource-Policy: same-origin\r\nReferrer-Policy: no-referrer\r\n",
        status.line()
    );
    if status == Status::MethodNotAllowed {
        head += "Allow: GET, HEAD\r\n";
    }
    head += "Connection: close\r\n\r\n";
    stream.write_all(head.as_bytes())
}

/// An error response with a one-line text body.
fn respond(stream: &mut TcpStream, status: Status, head_only: bool) -> io::Result<()> {
    let body = format!("{}\n", status.line());
    write_head(stream, status, "text/plain; charset=utf-8", body.len())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Closes the connection gracefully: stops sending, then drains what the
/// client still sends for at most [`DRAIN_DEADLINE`] in all, so that
/// closing does not reset the connection (which can make the client lose
/// the end of the response), yet a client that keeps sending a byte now
/// and then cannot hold the connection open.
fn finish(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 1 << 20 {
        let Some(left) = DRAIN_DEADLINE
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// For tests: the address a `serve` thread listens on.
#[cfg(test)]
fn spawn_test_server(files: &[(&str, &'static [u8])], artifact: &[u8]) -> std::net::SocketAddr {
    let (listener, _) = bind(0).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let site = Arc::new(Site::new(
        files
            .iter()
            .map(|&(p, b)| (p.to_string(), Cow::Borrowed(b))),
        artifact.to_vec(),
        addr.port(),
    ));
    std::thread::spawn(move || serve(listener, site));
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    const INDEX: &[u8] = b"<!doctype html><title>pgq</title>";
    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    fn server() -> SocketAddr {
        spawn_test_server(
            &[
                ("index.html", INDEX),
                ("pgq_web_bg.wasm", WASM),
                ("pgq_web.js", b"export default 1;"),
                ("static/style.css", b"body{}"),
                ("static/logo.svg", b"<svg/>"),
            ],
            b"PGQ artifact bytes",
        )
    }

    /// Sends raw bytes, returns (status code, headers, body).
    fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request).expect("send");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let end = head_end(&out).unwrap_or_else(|| panic!("no head in {out:?}"));
        let head = String::from_utf8(out[..end].to_vec()).expect("utf-8 head");
        let code = head[9..12].parse().expect("status code");
        (code, head, out[end..].to_vec())
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            addr.port()
        );
        exchange(addr, req.as_bytes())
    }

    #[test]
    fn serves_index_assets_and_artifact_with_types() {
        let addr = server();
        let (code, head, body) = get(addr, "/?artifact=/artifact.pgq&name=x.pgq");
        assert_eq!((code, body.as_slice()), (200, INDEX));
        assert!(
            head.contains("Content-Type: text/html; charset=utf-8\r\n"),
            "{head}"
        );
        assert!(head.contains("Cache-Control: no-store\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", INDEX.len())),
            "{head}"
        );
        let (code, head, body) = get(addr, "/pgq_web_bg.wasm");
        assert_eq!((code, body.as_slice()), (200, WASM));
        assert!(
            head.contains("Content-Type: application/wasm\r\n"),
            "{head}"
        );
        let (_, head, _) = get(addr, "/pgq_web.js");
        assert!(head.contains("Content-Type: text/javascript"), "{head}");
        let (_, head, _) = get(addr, "/static/style.css");
        assert!(head.contains("Content-Type: text/css"), "{head}");
        let (_, head, _) = get(addr, "/static/logo.svg");
        assert!(head.contains("Content-Type: image/svg+xml\r\n"), "{head}");
        let (code, _, body) = get(addr, "/artifact.pgq");
        assert_eq!((code, body.as_slice()), (200, &b"PGQ artifact bytes"[..]));
        let (code, _, body) = get(addr, "/index.html");
        assert_eq!((code, body.as_slice()), (200, INDEX));
        let (code, _, _) = get(addr, "/static%2Fstyle.css");
        assert_eq!(code, 200);
    }

    #[test]
    fn head_has_headers_and_no_body() {
        let addr = server();
        let req = format!(
            "HEAD /artifact.pgq HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
            addr.port()
        );
        let (code, head, body) = exchange(addr, req.as_bytes());
        assert_eq!(code, 200);
        assert!(head.contains("Content-Length: 18\r\n"), "{head}");
        assert!(body.is_empty());
    }

    #[test]
    fn refuses_what_it_does_not_serve() {
        let addr = server();
        assert_eq!(get(addr, "/missing.js").0, 404);
        assert_eq!(get(addr, "/static/").0, 404);
        assert_eq!(get(addr, "/static").0, 404);
        for path in [
            "/../Cargo.toml",
            "/static/../index.html",
            "/%2e%2e/etc/passwd",
            "/static/%2E%2E/index.html",
            "/a\\b",
            "/./index.html",
            "/%zz",
            "/%ff",
            "/%00",
            "index.html",
            "http://127.0.0.1/index.html",
        ] {
            assert_eq!(get(addr, path).0, 400, "{path}");
        }
        let port = addr.port();
        let (code, head, _) = exchange(
            addr,
            format!("POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 3\r\n\r\nabc")
                .as_bytes(),
        );
        assert_eq!(code, 405);
        assert!(head.contains("Allow: GET, HEAD\r\n"), "{head}");
        // DNS rebinding: another host name, or another port.
        let (code, _, _) = exchange(addr, b"GET / HTTP/1.1\r\nHost: evil.example:80\r\n\r\n");
        assert_eq!(code, 403);
        let other = port.wrapping_add(1);
        let (code, _, _) = exchange(
            addr,
            format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{other}\r\n\r\n").as_bytes(),
        );
        assert_eq!(code, 403);
        let (code, _, _) = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(code, 400, "HTTP/1.1 without Host");
        let (code, _, body) = exchange(addr, b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(
            (code, body.as_slice()),
            (200, INDEX),
            "HTTP/1.0 without Host"
        );
        let (code, _, _) = exchange(addr, b"GET / HTTP/2.0\r\n\r\n");
        assert_eq!(code, 505);
    }

    #[test]
    fn survives_garbage() {
        let addr = server();
        for junk in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"\xff\xfe\xfd / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / FTP/1.0\r\n\r\n",
        ] {
            let (code, _, _) = exchange(addr, junk);
            assert_eq!(code, 400, "{junk:?}");
        }
        // A head that never ends.
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD_BYTES + 4096, b'a');
        let (code, _, _) = exchange(addr, &huge);
        assert_eq!(code, 431);
        // A client that connects and closes, or half a request and closes.
        drop(TcpStream::connect(addr).unwrap());
        {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HT").unwrap();
        }
        // Lenient bare-LF clients still get answers, and the server is alive.
        let (code, _, body) = exchange(
            addr,
            format!("GET / HTTP/1.1\nHost: 127.0.0.1:{}\n\n", addr.port()).as_bytes(),
        );
        assert_eq!((code, body.as_slice()), (200, INDEX));
    }

    #[test]
    fn many_clients_at_once() {
        let addr = server();
        let threads: Vec<_> = (0..16)
            .map(|_| std::thread::spawn(move || get(addr, "/pgq_web_bg.wasm")))
            .collect();
        for t in threads {
            let (code, _, body) = t.join().unwrap();
            assert_eq!((code, body.as_slice()), (200, WASM));
        }
    }

    #[test]
    fn busy_port_falls_back() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let (l, note) = bind(port).unwrap();
        let got = l.local_addr().unwrap();
        assert!(got.ip().is_loopback());
        assert_ne!(got.port(), port);
        let note = note.expect("a note");
        assert!(note.contains(&format!("port {port} is busy")), "{note}");
        let (l, note) = bind(0).unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback() && note.is_none());
    }

    #[test]
    fn url_and_host_helpers() {
        assert_eq!(
            viewer_url(8000, "demo.pgq", Some(47642)),
            "http://127.0.0.1:8000/?artifact=/artifact.pgq&name=demo.pgq&code=47642"
        );
        assert_eq!(
            viewer_url(1, "a b&c=é.pgq", None),
            "http://127.0.0.1:1/?artifact=/artifact.pgq&name=a%20b%26c%3D%C3%A9.pgq"
        );
        assert!(host_is_local("127.0.0.1:8000", 8000));
        assert!(host_is_local("LOCALHOST:8000", 8000));
        assert!(host_is_local("127.0.0.1", 8000));
        assert!(host_is_local("[::1]:8000", 8000));
        assert!(!host_is_local("[::1]:8001", 8000));
        assert!(!host_is_local("127.0.0.1.evil.example:8000", 8000));
        assert!(!host_is_local("", 8000));
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(content_type("x/Y.WASM"), "application/wasm");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    /// A client that, after its response, keeps sending a byte now and
    /// then is cut off by the drain deadline, and the slots of many such
    /// clients free up: another request is served (issue 12).
    #[test]
    fn slow_clients_after_their_response_are_cut_off() {
        let addr = server();
        let trickle = move |addr: SocketAddr| {
            let request = format!(
                "GET /static/logo.svg HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
                addr.port()
            );
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(request.as_bytes()).expect("send");
            let started = Instant::now();
            // Keep sending a byte every 100 ms, whatever the server sends
            // back, until the server has closed the connection (a write
            // fails); a minute at most.
            while started.elapsed() < Duration::from_secs(60) {
                if s.write_all(b"x").is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        };
        let clients: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| std::thread::spawn(move || trickle(addr)))
            .collect();
        for client in clients {
            assert!(
                client.join().unwrap(),
                "a trickling client was never cut off"
            );
        }
        let (code, _, body) = get(addr, "/static/logo.svg");
        assert_eq!((code, body.as_slice()), (200, b"<svg/>".as_slice()));
    }
}
