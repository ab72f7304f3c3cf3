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


def exact_fma(x, y, z):
    """x*y + z rounded once to binary32, nearest even, from exact rationals."""
    from fractions import Fraction
    v = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
    r = np.float32(float(v))  # within one binary32 step of the answer
    best = None
    for c in (np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))):
        d = abs(Fraction(float(c)) - v)
        even = int(np.array(c, np.float32).view(np.uint32)) % 2 == 0
        if best is None or d < best[0] or (d == best[0] and even):
            best = (d, c)
    return best[1]


def check_fma(n=200_000, seed=6):
    """pgq_decode._fma against exact rounding, on the values a correction
    holds (a code of up to 8 bits times an f16) and on ties: products of
    one bit below an accumulator's last place, which binary64 rounding
    could otherwise break the wrong way. Returns a description of the
    first disagreement, or None."""
    rng = np.random.default_rng(seed)

    def factor_values(k):
        codes = rng.integers(-128, 128, k).astype(np.float32)
        scales = rng.integers(1, 0x7C00, k).astype(np.uint16).view(np.float16).astype(np.float32)
        return codes * scales

    x, y, z = factor_values(n), factor_values(n), factor_values(n) * factor_values(n)
    # A quarter of the triples: z = 2^e (1 + m 2^-23), x*y = +-2^(e-24) (1 + tiny):
    # the exact sum sits next to a binary32 midpoint.
    q = n // 4
    e = rng.integers(-10, 20, q)
    z[:q] = np.ldexp(1 + rng.integers(0, 1 << 23, q) / 2.0 ** 23, e).astype(np.float32)
    x[:q] = np.ldexp(np.where(rng.random(q) < 0.5, -1.0, 1.0), e - 24).astype(np.float32)
    y[:q] = (1 + rng.integers(-3, 4, q) * 2.0 ** -20).astype(np.float32)
    # Double-rounding traps: x*y = (2^15+1)(2^15-1) 2^(e-54) = 2^(e-24) - 2^(e-54)
    # (99 x 331 and 31 x 1057: codes times f16 values), so z + x*y lies just
    # below (or, negated, just above) a binary32 midpoint, closer than
    # binary64 can tell: binary64 rounds onto the midpoint, and a plain
    # conversion then rounds to even, the wrong way for odd z.
    t = 2_000
    e = rng.integers(-10, 20, t)
    sign = np.where(rng.random(t) < 0.5, -1.0, 1.0)
    z[q:q + t] = (sign * np.ldexp(1 + rng.integers(0, 1 << 23, t) / 2.0 ** 23, e)).astype(np.float32)
    x[q:q + t] = np.ldexp(99.0 * 331, e - 54 - 15).astype(np.float32) * np.where(rng.random(t) < 0.5, -1, 1)
    y[q:q + t] = np.ldexp(31.0 * 1057, 15).astype(np.float32)
    got = pgq_decode._fma(x, y, z)
    # Exact checking is slow in Python: all the tie-prone triples and a
    # sample of the rest.
    idx = np.concatenate([np.arange(q + t), rng.choice(np.arange(q + t, n), 20_000, replace=False)])
    for i in idx:
        want = exact_fma(x[i], y[i], z[i])
        if np.float32(got[i]).view(np.uint32) != np.float32(want).view(np.uint32):
            return f"fma({x[i]!r}, {y[i]!r}, {z[i]!r}) = {got[i]!r}, exactly {want!r}"
    return None


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
    wrong = check_fma()
    if wrong:
        failed += 1
        print(f"FAIL fma emulation: {wrong}")
    else:
        passed += 1
        print("ok   the decoder's fma (FORMAT.md 6.8) rounds like exact arithmetic "
              "(52,000 triples at or near binary32 midpoints, 20,000 others)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
