//! Fuzz target for the restricted pickle reader of `pgq import`
//! (`pgq_verifier::import::pickle`), which reads `data.pkl` from hostile
//! `.ptz` artifacts.
//!
//! Every input is parsed with the default limits. It must not panic, and:
//! * an error names an op index and a byte offset inside the input (each op
//!   reads at least one byte, so the op index is below the length too);
//! * an accepted pickle's root and every node id held by a container are
//!   valid arena indices, the arena holds at most one node per op, and every
//!   tensor lies within its storage's declared element count.
//!
//! Any failed invariant panics, which libFuzzer reports as a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgq_verifier::import::pickle::{parse, Node, PickleError};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Err(error) => {
            let (op, offset) = match &error {
                PickleError::ForbiddenGlobal { op, offset, .. }
                | PickleError::UnsupportedOpcode { op, offset, .. }
                | PickleError::Malformed { op, offset, .. }
                | PickleError::Limit { op, offset, .. } => (*op, *offset),
            };
            assert!(offset <= data.len(), "{error}: offset past the input");
            assert!(op <= data.len(), "{error}: more ops than bytes");
            assert!(!error.to_string().is_empty());
        }
        Ok(pickle) => {
            let nodes = pickle.len();
            assert!(
                nodes <= data.len(),
                "{nodes} nodes from {} bytes",
                data.len()
            );
            assert!(pickle.root() < nodes, "root {} of {nodes}", pickle.root());
            for id in 0..nodes {
                let children: Vec<usize> = match pickle.node(id) {
                    Node::Tuple(items) | Node::List(items) => items.clone(),
                    Node::Dict(entries) => entries.iter().flat_map(|&(k, v)| [k, v]).collect(),
                    Node::Tensor(t) => {
                        let end = t.offset.checked_add(t.elements());
                        assert!(end.is_some_and(|e| e <= t.storage.numel), "{t:?}");
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                assert!(
                    children.iter().all(|&c| c < nodes),
                    "node {id}: {children:?}"
                );
            }
        }
    }
});
