#!/usr/bin/env python3
"""Checks the conformance vectors against the reference decoder.

For every spec/vectors/positive/*.pgq, decodes it with pgq_decode.load and
compares each tensor bit for bit (as uint32) with the expected values in the
matching .json (or their SHA-256, for large tensors). Every vector listed in
spec/vectors/negative/expected.json must be rejected. With --pgq BINARY, also runs `BINARY export FILE -o OUT.safetensors`
and compares that output bit for bit with the Python decoder's.

Prints one line per vector and a final line `N passed, M failed`. The exit
status is 0 only if at least one vector was checked and none failed.

usage: python3 spec/reference/check_vectors.py [--vectors DIR] [--pgq BINARY]
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pgq_decode  # noqa: E402


def bits(a):
    """The f32 bits of an array, as a flat uint32 array."""
    return np.ascontiguousarray(a, dtype=np.float32).reshape(-1).view(np.uint32)


def expected_tensors(path):
    """{name: (shape, uint32 bits)} from a positive vector's .json.

    Expected form: {"tensors": {NAME: {"shape": [...], "f32_le_hex": HEX}}};
    a list of {"name": ..., ...} objects and a few key spellings are accepted.
    """
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    tensors = doc.get("tensors", doc) if isinstance(doc, dict) else doc
    if isinstance(tensors, list):
        tensors = {t["name"]: t for t in tensors}
    out = {}
    for name, t in tensors.items():
        if "f32_le_sha256" in t:  # a large tensor: the digest of its f32 bytes
            out[name] = (tuple(t["shape"]), t["f32_le_sha256"])
            continue
        hexed = next((t[k] for k in ("f32_le_hex", "f32_hex", "values_hex", "hex") if k in t), None)
        if hexed is None:
            raise ValueError(f"{path}: tensor {name!r} has no f32 hex values")
        out[name] = (tuple(t["shape"]), np.frombuffer(bytes.fromhex(hexed), dtype="<u4"))
    return out


def read_safetensors(path):
    """{name: (shape, uint32 bits)} from an F32 safetensors file (stdlib parse)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name!r} has dtype {t['dtype']}, expected F32")
        begin, end = t["data_offsets"]
        out[name] = (tuple(t["shape"]), np.frombuffer(data[base + begin:base + end], dtype="<u4"))
    return out


def compare(got, want, what):
    """Problems found comparing decoded arrays `got` with {name: (shape, bits)}."""
    problems = []
    if set(got) != set(want):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        problems.append(f"{what}: tensor names differ (missing {missing}, extra {extra})")
    for name in sorted(set(got) & set(want)):
        shape, expect = want[name]
        have = got[name]
        if tuple(have.shape) != shape:
            problems.append(f"{what}: {name!r} has shape {list(have.shape)}, expected {list(shape)}")
            continue
        b = bits(have)
        if isinstance(expect, str):
            digest = hashlib.sha256(b.astype("<u4").tobytes()).hexdigest()
            if digest != expect:
                problems.append(f"{what}: {name!r} has f32 SHA-256 {digest}, expected {expect}")
            continue
        if b.shape != expect.shape:
            problems.append(f"{what}: {name!r} has {b.size} values, expected {expect.size}")
            continue
        diff = np.flatnonzero(b != expect)
        if diff.size:
            i = int(diff[0])
            problems.append(
                f"{what}: {name!r} differs at {diff.size} of {b.size} values, first at {i}: "
                f"0x{int(b[i]):08x} vs expected 0x{int(expect[i]):08x}"
            )
    return problems


def check_export(binary, pgq_path, decoded):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.safetensors")
        run = subprocess.run([binary, "export", pgq_path, "-o", out],
                             capture_output=True, text=True)
        if run.returncode != 0:
            return [f"pgq export exited {run.returncode}: {(run.stderr or run.stdout).strip()[:300]}"]
        exported = read_safetensors(out)
    want = {k: (tuple(v.shape), bits(v)) for k, v in decoded.items()}
    return compare({k: v[1].view(np.float32).reshape(v[0]) for k, v in exported.items()},
                   want, "pgq export vs pgq_decode")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", default=os.path.join(HERE, "..", "vectors"),
                    help="the vectors directory (default: spec/vectors)")
    ap.add_argument("--pgq", metavar="BINARY",
                    help="also compare `BINARY export` output with the Python decoder")
    args = ap.parse_args()

    positive = os.path.join(args.vectors, "positive")
    files = sorted(f for f in os.listdir(positive) if f.endswith(".pgq")) \
        if os.path.isdir(positive) else []
    if not files:
        print(f"error: no positive vectors (*.pgq) in {os.path.normpath(positive)}")
        print("0 passed, 1 failed")
        return 1

    passed = failed = 0
    for name in files:
        path = os.path.join(positive, name)
        stem = path[:-len(".pgq")]
        problems = []
        try:
            decoded = pgq_decode.load(path)
            problems += compare(decoded, expected_tensors(stem + ".json"), "pgq_decode vs json")
            if args.pgq:
                problems += check_export(args.pgq, path, decoded)
        except Exception as e:  # a vector that cannot be read is a failure, not a crash
            problems.append(f"{type(e).__name__}: {e}")
        if problems:
            failed += 1
            print(f"FAIL {name}: " + "; ".join(problems))
        else:
            passed += 1
            print(f"ok   {name} ({len(decoded)} tensors)")
    # Negative vectors: the decoder must reject every one (it raises; which
    # class it would name is the Rust reader's business, tests/conformance.rs).
    negative = os.path.join(args.vectors, "negative")
    expected = os.path.join(negative, "expected.json")
    names = sorted(json.load(open(expected, encoding="utf-8"))) if os.path.exists(expected) else []
    for name in names:
        try:
            pgq_decode.load(os.path.join(negative, name + ".pgq"))
        except Exception:  # any rejection will do, a crash of the checker will not
            passed += 1
            continue
        failed += 1
        print(f"FAIL {name}.pgq: accepted, but it is a negative vector")
    print(f"{len(names)} negative vectors checked, each must be rejected")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
