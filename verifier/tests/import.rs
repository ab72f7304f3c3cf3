//! `pgq import` end to end: the fixtures of tests/fixtures/ (torch.save
//! artifacts made by make_ptz.py without torch), the quantizer's own
//! status-quo encoding of a quantized model, and mutated inputs.

#[path = "../../format/tests/support/mutate.rs"]
mod mutate;
#[path = "../../format/tests/support/rng.rs"]
mod rng;

use std::path::{Path, PathBuf};

use half::f16;
use mutate::Mutator;
use pgq_format::{read, write, Compression, ReadOptions, Tensor, TensorData, WriteOptions};
use pgq_verifier::import::{
    compress, import, pickle, shuffle, zip, Compressor, ImportError, ImportOptions, Layout,
    PickleError,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["fixtures"].as_array().unwrap().clone()
}

fn json_u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// The weights a torch loader reconstructs from an expected-tensor record,
/// computed here from the JSON alone: `q.float() * scale.float()` with the
/// scale broadcast as `scale.view(q.shape[0], 1, ...)` (or a 0-d scale), or
/// the passthrough values widened.
fn torch_weights(record: &Value) -> Vec<f32> {
    let shape = json_u64s(&record["shape"]);
    match record["kind"].as_str().unwrap() {
        "quantized" => {
            let codes: Vec<i64> = record["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_i64().unwrap())
                .collect();
            let scale_bits = json_u64s(&record["scale_bits"]);
            let scales: Vec<f32> = match record["scale_dtype"].as_str().unwrap() {
                "float16" => scale_bits
                    .iter()
                    .map(|&b| f16::from_bits(b as u16).to_f32())
                    .collect(),
                "float32" => scale_bits
                    .iter()
                    .map(|&b| f32::from_bits(b as u32))
                    .collect(),
                other => panic!("scale dtype {other}"),
            };
            let per_first = codes.len() / shape[0] as usize;
            let scalar = json_u64s(&record["scale_shape"]).is_empty();
            codes
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let s = if scalar {
                        scales[0]
                    } else {
                        scales[i / per_first]
                    };
                    c as f32 * s
                })
                .collect()
        }
        "float16" => json_u64s(&record["value_bits"])
            .iter()
            .map(|&b| f16::from_bits(b as u16).to_f32())
            .collect(),
        "bfloat16" => json_u64s(&record["value_bits"])
            .iter()
            .map(|&b| half::bf16::from_bits(b as u16).to_f32())
            .collect(),
        "float32" => json_u64s(&record["value_bits"])
            .iter()
            .map(|&b| f32::from_bits(b as u32))
            .collect(),
        other => panic!("kind {other}"),
    }
}

/// Checks `tensor` against its expected record: name, shape, kind, bits,
/// codes, and every weight bit for bit.
fn check_tensor(tensor: &Tensor, record: &Value, context: &str) {
    let name = record["name"].as_str().unwrap();
    assert_eq!(tensor.name, name, "{context}");
    assert_eq!(
        tensor.shape,
        json_u64s(&record["shape"]),
        "{context} {name}"
    );
    let kind = record["kind"].as_str().unwrap();
    match (&tensor.data, kind) {
        (TensorData::Quantized { bits, codes, .. }, "quantized") => {
            assert_eq!(
                u64::from(*bits),
                record["bits"].as_u64().unwrap(),
                "{context} {name}"
            );
            let want: Vec<i64> = record["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_i64().unwrap())
                .collect();
            let got: Vec<i64> = codes.iter().map(|&c| i64::from(c)).collect();
            assert_eq!(got, want, "{context} {name}: codes");
        }
        (TensorData::F16(_), "float16")
        | (TensorData::Bf16(_), "bfloat16")
        | (TensorData::F32(_), "float32") => {}
        (data, kind) => panic!("{context} {name}: {:?} for {kind}", data.kind()),
    }
    let want: Vec<u32> = torch_weights(record).iter().map(|x| x.to_bits()).collect();
    let got: Vec<u32> = tensor.dequantize().iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, want, "{context} {name}: weights");
}

fn pgq_round_trip(tensors: &[Tensor]) -> Vec<Tensor> {
    let options = WriteOptions {
        compression: Compression::Zstd(3),
        ..WriteOptions::default()
    };
    let bytes = write(tensors, &Default::default(), &options).unwrap();
    read(&bytes, &ReadOptions::default()).unwrap().tensors
}

#[test]
fn every_good_fixture_imports_exactly_and_round_trips_through_pgq() {
    let mut checked = 0;
    for fixture in manifest() {
        if fixture["expect"] != "ok" {
            continue;
        }
        let file = fixture["file"].as_str().unwrap();
        let imported = import(&load(file), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let detected = &imported.detected;
        assert_eq!(
            detected.compressor.name(),
            fixture["compressor"].as_str().unwrap(),
            "{file}"
        );
        assert_eq!(
            detected.shuffle.map(u64::from),
            fixture["shuffle"].as_u64(),
            "{file}"
        );
        assert_eq!(
            detected.layout.name(),
            fixture["layout"].as_str().unwrap(),
            "{file}"
        );

        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join(fixture["expected"].as_str().unwrap()))
                .unwrap(),
        )
        .unwrap();
        let records = expected["tensors"].as_array().unwrap();
        assert_eq!(imported.tensors.len(), records.len(), "{file}");
        assert_eq!(detected.tensors, records.len(), "{file}");
        for (tensor, record) in imported.tensors.iter().zip(records) {
            check_tensor(tensor, record, file);
        }
        // Written to .pgq and read back: the same tensors, the same weights.
        let back = pgq_round_trip(&imported.tensors);
        assert_eq!(back, imported.tensors, "{file}");
        for (tensor, record) in back.iter().zip(records) {
            check_tensor(tensor, record, &format!("{file} via .pgq"));
        }
        checked += 1;
    }
    assert_eq!(checked, 16, "good fixtures in the manifest");
}

#[test]
fn hostile_pickles_are_refused_naming_the_global() {
    let mut checked = 0;
    for fixture in manifest() {
        if fixture["expect"] != "forbidden_global" {
            continue;
        }
        let file = fixture["file"].as_str().unwrap();
        let (module, name) = (
            fixture["module"].as_str().unwrap(),
            fixture["name"].as_str().unwrap(),
        );
        let err = import(&load(file), &ImportOptions::default()).unwrap_err();
        let message = err.to_string();
        match err {
            ImportError::Pickle {
                entry,
                error:
                    PickleError::ForbiddenGlobal {
                        module: m, name: n, ..
                    },
            } => {
                assert_eq!((m.as_str(), n.as_str()), (module, name), "{file}");
                assert_eq!(entry, "archive/data.pkl");
            }
            other => panic!("{file}: {other}"),
        }
        assert!(message.contains(&format!("{module}.{name}")), "{message}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn a_decompression_bomb_stops_at_the_cap() {
    let fixture = manifest()
        .into_iter()
        .find(|f| f["expect"] == "too_large")
        .unwrap();
    let bytes = load(fixture["file"].as_str().unwrap());
    let limit = 1 << 20;
    match compress::decompress(&bytes, limit) {
        Err(ImportError::TooLarge {
            compressor,
            limit: l,
        }) => {
            assert_eq!((compressor, l), ("xz", limit));
        }
        other => panic!("{:?}", other.map(|(c, out)| (c, out.len()))),
    }
    let options = ImportOptions {
        max_decompressed_bytes: limit,
    };
    assert!(matches!(
        import(&bytes, &options),
        Err(ImportError::TooLarge { .. })
    ));
    // Under a cap that fits, it decodes in full (and is then no zip).
    let full = fixture["decompressed"].as_u64().unwrap();
    let (_, out) = compress::decompress(&bytes, full).unwrap();
    assert_eq!(out.len() as u64, full);
    assert!(out.iter().all(|&b| b == 0));
}

/// Every mutation must import or fail with an error; a panic fails the test.
fn survive_mutations(input: &[u8], count: usize, seed: u64, options: &ImportOptions) -> usize {
    let mut rng = Mutator::new(seed);
    let mut accepted = 0;
    for _ in 0..count {
        let (mutated, _) = rng.mutate(input);
        if import(&mutated, options).is_ok() {
            accepted += 1;
        }
    }
    accepted
}

#[test]
fn thousands_of_mutations_never_panic() {
    // Small enough that a mutated length field cannot make a test slow.
    let options = ImportOptions {
        max_decompressed_bytes: 1 << 20,
    };
    for (file, count) in [
        ("wm_brotli_bshf2.ptz", 1500),
        ("wm_zlib_plain.ptz", 1000),
        ("wm_zstd_bshf1.ptz", 1000),
        ("wm_xz_bshf2.ptz", 500),
        ("wm_raw.pt", 3000),
        ("int8_clean_raw.pt", 2000),
        ("hostile_builtins_eval.ptz", 500),
    ] {
        survive_mutations(&load(file), count, count as u64, &options);
    }
}

// ---- a torch.save writer for the tests ------------------------------------

/// A zip laid out as torch.save writes one (see tests/fixtures/make_ptz.py).
fn torch_zip(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    let le16 = |v: usize| (v as u16).to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    for (name, data) in records {
        let offset = out.len() as u32;
        let start = out.len() + 30 + name.len() + 4;
        let pad = start.next_multiple_of(64) - start;
        let crc = crc32fast::hash(data);
        out.extend_from_slice(b"PK\x03\x04\0\0\x08\x08\0\0\0\0\0\0");
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&le16(name.len()));
        out.extend_from_slice(&le16(pad + 4));
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"FB");
        out.extend_from_slice(&le16(pad));
        out.extend(std::iter::repeat_n(b'Z', pad));
        out.extend_from_slice(data);
        out.extend_from_slice(b"PK\x07\x08");
        for v in [crc, data.len() as u32, data.len() as u32] {
            out.extend_from_slice(&le32(v));
        }
        central.extend_from_slice(b"PK\x01\x02\0\0\0\0\x08\x08\0\0\0\0\0\0");
        for v in [crc, data.len() as u32, data.len() as u32] {
            central.extend_from_slice(&le32(v));
        }
        central.extend_from_slice(&le16(name.len()));
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&le32(offset));
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&le16(records.len()));
    out.extend_from_slice(&le16(records.len()));
    out.extend_from_slice(&le32(central.len() as u32));
    out.extend_from_slice(&le32(cd_offset));
    out.extend_from_slice(&[0, 0]);
    out
}

/// Protocol-2 pickle opcodes, as Python's pickler writes them (no memo).
#[derive(Default)]
struct Pickler(Vec<u8>);

impl Pickler {
    fn str(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, v: u64) {
        match v {
            0..=0xFF => self.0.extend_from_slice(&[b'K', v as u8]),
            0x100..=0xFFFF => {
                self.0.push(b'M');
                self.0.extend_from_slice(&(v as u16).to_le_bytes());
            }
            _ => {
                self.0.push(b'J');
                self.0.extend_from_slice(&(v as i32).to_le_bytes());
            }
        }
    }

    fn tuple(&mut self, values: &[u64]) {
        self.0.push(b'(');
        for &v in values {
            self.int(v);
        }
        self.0.push(b't');
    }

    /// `_rebuild_tensor_v2(('storage', torch.<class>, key, 'cpu', numel),
    /// 0, shape, contiguous strides, False, OrderedDict())`.
    fn tensor(&mut self, class: &str, key: &str, shape: &[u64]) {
        let mut strides = vec![1u64; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        self.0
            .extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        self.str("storage");
        self.0
            .extend_from_slice(format!("ctorch\n{class}\n").as_bytes());
        self.str(key);
        self.str("cpu");
        self.int(shape.iter().product());
        self.0.extend_from_slice(b"tQ");
        self.int(0);
        self.tuple(shape);
        self.tuple(&strides);
        self.0
            .extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
    }
}

/// The records of a stream of zip local headers without a central
/// directory, as the quantizer's status-quo model writes it.
fn local_records(stream: &[u8]) -> Vec<(String, &[u8])> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        assert_eq!(&stream[at..at + 4], b"PK\x03\x04");
        let u16_at = |o: usize| u16::from_le_bytes([stream[at + o], stream[at + o + 1]]) as usize;
        let size = u32::from_le_bytes(stream[at + 18..at + 22].try_into().unwrap()) as usize;
        let (name_len, extra_len) = (u16_at(26), u16_at(28));
        let name = String::from_utf8(stream[at + 30..at + 30 + name_len].to_vec()).unwrap();
        let start = at + 30 + name_len + extra_len;
        records.push((name, &stream[start..start + size]));
        at = start + size;
    }
    records
}

/// Turns the quantizer's status-quo stream into the torch.save zip it
/// models: its text listing of keys, dtypes, shapes and storage indices
/// becomes a real `data.pkl`, its storage records are kept byte for byte,
/// and a central directory is added.
fn loadable_status_quo(stream: &[u8]) -> Vec<u8> {
    let records = local_records(stream);
    let listing = std::str::from_utf8(records[0].1).unwrap();
    assert_eq!(records[0].0, "archive/data.pkl");
    let (w_part, m_part) = listing
        .strip_prefix("w\n")
        .unwrap()
        .split_once("m\n")
        .unwrap();
    let mut p = Pickler::default();
    p.0.extend_from_slice(b"\x80\x02}(");
    p.str("w");
    p.0.extend_from_slice(b"}(");
    for line in w_part.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [key, dtype, shape, index, _len] = fields[..] else {
            panic!("{line}")
        };
        let class = match dtype {
            "int8" => "CharStorage",
            "float16" => "HalfStorage",
            "bfloat16" => "BFloat16Storage",
            "float32" => "FloatStorage",
            other => panic!("{other}"),
        };
        let shape: Vec<u64> = shape
            .trim_matches(['(', ')'])
            .split(',')
            .filter(|d| !d.is_empty())
            .map(|d| d.parse().unwrap())
            .collect();
        p.str(key);
        p.tensor(class, index, &shape);
    }
    p.0.extend_from_slice(b"u");
    p.str("m");
    p.0.extend_from_slice(b"}(");
    for line in m_part.lines() {
        let (name, info) = line.split_once('\t').unwrap();
        p.str(name);
        p.str(info);
    }
    p.0.extend_from_slice(b"uu.");
    let mut zip_records = vec![("archive/data.pkl".to_owned(), p.0)];
    zip_records.extend(
        records[1..]
            .iter()
            .map(|(name, data)| (name.clone(), data.to_vec())),
    );
    torch_zip(&zip_records)
}

#[test]
fn the_quantizers_status_quo_encoding_imports_back_to_the_same_tensors() {
    use pgq_quantizer::{quantize_model, status_quo_bytes, status_quo_stream, DefaultPolicy};
    let sources = pgq_quantizer::DemoConfig::tiny().generate(7).unwrap();
    let model = quantize_model(&sources, &DefaultPolicy::default(), 0, None).unwrap();
    let tensors = model.tensors;

    // The outer layers, on the quantizer's own bytes: brotli found without
    // a magic, the stride-2 shuffle undone, the stream recovered exactly.
    let artifact = status_quo_bytes(&tensors, 5).unwrap();
    let stream = status_quo_stream(&tensors);
    let (compressor, decoded) = compress::decompress(&artifact, 1 << 30).unwrap();
    assert_eq!(compressor, Compressor::Brotli);
    let (stride, unshuffled) = shuffle::unshuffle(&decoded);
    assert_eq!(stride, Some(2));
    assert_eq!(unshuffled.as_ref(), stream.as_slice());

    // The size model has no central directory and a text listing for its
    // pickle: import says so rather than guessing.
    let err = import(&artifact, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::Zip { .. }), "{err}");

    // Made loadable (a real data.pkl and central directory around the very
    // same storage records), then shuffled and compressed as the records
    // do: import gives back the model's codes, scales and passthrough.
    let zip_bytes = loadable_status_quo(&stream);
    let shuffled = pgq_quantizer::byte_shuffle(&zip_bytes, 2);
    let compressed = pgq_format::encode_section(
        &shuffled,
        Compression::Brotli {
            quality: 5,
            lgwin: 24,
        },
    )
    .unwrap();
    let imported = import(&compressed, &ImportOptions::default()).unwrap();
    assert_eq!(imported.detected.compressor, Compressor::Brotli);
    assert_eq!(imported.detected.shuffle, Some(2));
    assert_eq!(imported.detected.layout, Layout::WeightsMeta);
    assert_eq!(imported.tensors, tensors);
}

#[test]
fn mutated_pickles_in_valid_zips_never_panic() {
    // Mutating data.pkl inside a zip with correct CRCs reaches the pickle
    // reader and the layout mapping rather than the zip's CRC check.
    let raw = load("wm_raw.pt");
    let archive = zip::Archive::parse(&raw).unwrap();
    let records = records_of(&archive);
    let pickle_at = records
        .iter()
        .position(|(name, _)| name == "archive/data.pkl")
        .unwrap();
    let mut rng = Mutator::new(42);
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..3000 {
        let mut mutated = records.clone();
        mutated[pickle_at].1 = rng.mutate(&records[pickle_at].1).0;
        let outcome = match import(&torch_zip(&mutated), &ImportOptions::default()) {
            Ok(_) => "imported",
            Err(ImportError::Pickle { .. }) => "pickle error",
            Err(ImportError::Zip { .. }) => "zip error",
            Err(_) => "layout or tensor error",
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    // Both the pickle reader and the layout checks are reached.
    assert!(outcomes["pickle error"] > 100, "{outcomes:?}");
    assert!(
        outcomes["layout or tensor error"] + outcomes.get("imported").unwrap_or(&0) > 10,
        "{outcomes:?}"
    );
}

#[test]
fn the_test_writer_matches_the_fixtures_and_pickles_parse() {
    // The Rust-side writer and make_ptz.py agree on the zip layout: a
    // fixture's records rewritten by torch_zip give back the fixture.
    let raw = load("int8_clean_raw.pt");
    let archive = zip::Archive::parse(&raw).unwrap();
    let records = records_of(&archive);
    let rewritten = torch_zip(&records);
    let again = zip::Archive::parse(&rewritten).unwrap();
    assert_eq!(again.entries().len(), archive.entries().len());
    for (a, b) in archive.entries().iter().zip(again.entries()) {
        assert_eq!(
            (a.name, a.data, a.offset % 64),
            (b.name, b.data, b.offset % 64)
        );
    }
    let pickle = pickle::parse(archive.get("archive/data.pkl").unwrap().data).unwrap();
    assert!(!pickle.is_empty());
}

#[test]
fn detected_serializes_for_reports() {
    let imported = import(&load("wm_brotli_bshf2.ptz"), &ImportOptions::default()).unwrap();
    let json = serde_json::to_value(&imported.detected).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"compressor": "brotli", "shuffle": 2, "layout": "w/m", "tensors": 11})
    );
    assert_eq!(ImportOptions::default().max_decompressed_bytes, 1 << 30);
    // Scales are fp16 as stored: one of the fixture's is exactly 2^-7.
    let q_gain = imported
        .tensors
        .iter()
        .find(|t| t.name == "blocks.0.q_gain")
        .unwrap();
    let TensorData::Quantized { scales, .. } = &q_gain.data else {
        panic!()
    };
    assert!(scales.iter().all(|&s| s == f16::from_f32(0.0078125)));
}

/// The (name, data) records of a parsed torch zip.
fn records_of(archive: &zip::Archive) -> Vec<(String, Vec<u8>)> {
    archive
        .entries()
        .iter()
        .map(|e| (e.name.to_owned(), e.data.to_vec()))
        .collect()
}
