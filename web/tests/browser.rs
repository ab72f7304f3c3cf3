//! The viewer mounted in a real browser (wasm-bindgen-test, headless
//! Chromium): an artifact preloaded through `?artifact=` shows the DOM
//! contract's figures; a malformed one shows the CLI's message.
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!     cargo test -p pgq-web --target wasm32-unknown-unknown --test browser
//! ```
//!
//! (`webdriver.json` beside Cargo.toml passes Chromium its headless flags.)
#![cfg(target_arch = "wasm32")]

use pgq_format::half::f16;
use pgq_format::{read, summarize, write, Compression, Tensor, TensorData, WriteOptions};
use pgq_web::app::App;
use pgq_web::browser::sleep;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::{Document, Element};

wasm_bindgen_test_configure!(run_in_browser);

fn tensors() -> Vec<Tensor> {
    let q = |name: &str, rows: u64, cols: u64, bits: u8| Tensor {
        name: name.into(),
        shape: vec![rows, cols],
        data: TensorData::Quantized {
            bits,
            group_size: 0,
            codes: (0..rows * cols).map(|i| (i % 7) as i8 - 3).collect(),
            scales: (0..rows)
                .map(|i| f16::from_f32(0.01 * (i + 1) as f32))
                .collect(),
            correction: None,
        },
    };
    vec![
        q("blocks.10.w", 8, 16, 6),
        q("blocks.2.w", 8, 16, 4),
        Tensor {
            name: "norm".into(),
            shape: vec![16],
            data: TensorData::F16(vec![f16::ONE; 16]),
        },
    ]
}

fn artifact() -> Vec<u8> {
    let options = WriteOptions {
        compression: Compression::Zstd(3),
        ..WriteOptions::default()
    };
    write(&tensors(), &Default::default(), &options).unwrap()
}

fn document() -> Document {
    web_sys::window().unwrap().document().unwrap()
}

fn select(selector: &str) -> Option<Element> {
    document().query_selector(selector).unwrap()
}

fn text(selector: &str) -> String {
    select(selector)
        .and_then(|e| e.text_content())
        .unwrap_or_default()
}

fn body_state() -> String {
    document()
        .body()
        .unwrap()
        .dataset()
        .get("state")
        .unwrap_or_default()
}

/// Mounts a fresh App in its own `<div>`; dropping the handle unmounts it.
fn mount() -> impl Drop {
    let div: web_sys::HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&div).unwrap();
    leptos::mount::mount_to(div, App)
}

/// Points the page's address at `bytes` (a blob: URL) as `?artifact=`.
fn preload(bytes: &[u8], name: &str, code: u64) {
    let array = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes).into());
    let blob = web_sys::Blob::new_with_u8_array_sequence(&array).unwrap();
    let url = web_sys::Url::create_object_url_with_blob(&blob).unwrap();
    let query = format!(
        "?artifact={}&name={name}&code={code}",
        js_sys::encode_uri_component(&url)
    );
    web_sys::window()
        .unwrap()
        .history()
        .unwrap()
        .replace_state_with_url(&JsValue::NULL, "", Some(&query))
        .unwrap();
}

async fn wait_for(state: &str) {
    for _ in 0..400 {
        if body_state() == state {
            return;
        }
        sleep(25).await;
    }
    panic!("body state stayed {:?}, not {state:?}", body_state());
}

/// The low-rank vectors (spec §6.8: products and sums that round, in a
/// fixed order with fused multiply-adds) decode in wasm to the bits the
/// vectors' `.json` give, which the Rust reader and the Python decoder
/// produce too (format/tests/conformance.rs, spec/reference).
#[wasm_bindgen_test]
fn low_rank_vectors_decode_in_wasm_as_their_expected_bits() {
    let vectors: [(&[u8], &str); 4] = [
        (
            include_bytes!("../../spec/vectors/positive/lowrank_spec_example.pgq"),
            include_str!("../../spec/vectors/positive/lowrank_spec_example.json"),
        ),
        (
            include_bytes!("../../spec/vectors/positive/lowrank_sum_order.pgq"),
            include_str!("../../spec/vectors/positive/lowrank_sum_order.json"),
        ),
        (
            include_bytes!("../../spec/vectors/positive/lowrank_records_asym_rans.pgq"),
            include_str!("../../spec/vectors/positive/lowrank_records_asym_rans.json"),
        ),
        (
            include_bytes!("../../spec/vectors/positive/lowrank_symmetric_packed_raw.pgq"),
            include_str!("../../spec/vectors/positive/lowrank_symmetric_packed_raw.json"),
        ),
    ];
    for (bytes, json) in vectors {
        let expected: serde_json::Value = serde_json::from_str(json).unwrap();
        let archive = read(bytes, &Default::default()).unwrap();
        for t in &archive.tensors {
            let hex: String = t
                .dequantize()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                hex,
                expected["tensors"][&t.name]["f32_le_hex"].as_str().unwrap(),
                "{}",
                t.name
            );
        }
    }
}

// One test: the page's address and `<body data-state>` are global, so the
// two cases run one after the other, never interleaved.
#[wasm_bindgen_test]
async fn preloaded_artifacts_good_and_malformed() {
    a_preloaded_artifact_fills_the_dom_contract().await;
    a_malformed_artifact_shows_the_clis_message().await;
}

async fn a_preloaded_artifact_fills_the_dom_contract() {
    let bytes = artifact();
    preload(&bytes, "small.pgq", 1234);
    let mounted = mount();
    wait_for("ready").await;
    assert_eq!(text("#status"), "ready");
    assert_eq!(text("#error"), "");
    assert_eq!(text("#cap-total"), (bytes.len() as u64 + 1234).to_string());

    let summary = summarize(&read(&bytes, &Default::default()).unwrap().header);
    let rows = document()
        .query_selector_all("#tensor-table tbody tr")
        .unwrap();
    assert_eq!(rows.length() as usize, summary.tensors.len());
    for (i, t) in summary.tensors.iter().enumerate() {
        let tr: Element = rows.get(i as u32).unwrap().unchecked_into();
        assert_eq!(
            tr.get_attribute("data-name").as_deref(),
            Some(t.name.as_str())
        );
        let cell = |key: &str| {
            tr.query_selector(&format!("td[data-key=\"{key}\"]"))
                .unwrap()
                .and_then(|e| e.text_content())
                .unwrap()
        };
        assert_eq!(cell("params"), t.params.to_string());
        assert_eq!(cell("bytes"), t.bytes.to_string());
        assert_eq!(cell("bits"), t.bits.map_or("-".into(), |b| b.to_string()));
        assert_eq!(
            cell("group_size"),
            t.group_size.map_or("-".into(), |g| g.to_string())
        );
        assert_eq!(cell("bits_per_weight"), format!("{:.3}", t.bits_per_weight));
    }
    // Layers in natural order: blocks.2 before blocks.10.
    let chart = select("#layer-chart").unwrap();
    assert_eq!(chart.tag_name().to_lowercase(), "svg");
    let names = document()
        .query_selector_all("#layer-chart .layer-name")
        .unwrap();
    let names: Vec<String> = (0..names.length())
        .map(|i| names.get(i).unwrap().text_content().unwrap())
        .collect();
    assert_eq!(names, ["blocks.2", "blocks.10", "norm"]);
    // The verification ran in wasm, with the code bytes.
    for _ in 0..400 {
        if select("#checks tr[data-id=\"cap\"]").is_some() {
            break;
        }
        sleep(25).await;
    }
    let cap = text("#checks tr[data-id=\"cap\"]");
    assert!(cap.contains("+ 1234 code bytes in 1 file(s)"), "{cap}");
    drop(mounted);
}

async fn a_malformed_artifact_shows_the_clis_message() {
    let mut bytes = artifact();
    bytes.truncate(bytes.len() - 3);
    let expected = read(&bytes, &Default::default()).unwrap_err();
    preload(&bytes, "bad.pgq", 0);
    let mounted = mount();
    wait_for("error").await;
    let apps = document().query_selector_all("#status").unwrap().length();
    assert_eq!(apps, 1, "the first app was unmounted");
    assert_eq!(text("#status"), "error");
    assert_eq!(
        text("#error"),
        format!("bad.pgq is not a valid .pgq file: {expected}")
    );
    assert!(select("#tensor-table").is_none());
    drop(mounted);
}
