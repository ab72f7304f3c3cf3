"""Shared fixtures: the repository, the `pgq` binary the CLI side of each
comparison runs, and safetensors files read in the order pgq reads them."""

import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _binary() -> Path:
    """$PGQ, else the newest of target/{release,debug}/pgq."""
    if os.environ.get("PGQ"):
        return Path(os.environ["PGQ"])
    built = [p for p in (REPO / "target/release/pgq", REPO / "target/debug/pgq") if p.exists()]
    if not built:
        raise RuntimeError(
            "no pgq binary: build it (cargo build -p pgq) or set PGQ=/path/to/pgq"
        )
    return max(built, key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="session")
def pgq_cli():
    """Runs `pgq ARGS...`; returns stdout, fails the test on a non-zero exit."""
    binary = _binary()

    def run(*args, expect=0):
        done = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
        assert done.returncode == expect, f"pgq {args}: exit {done.returncode}\n{done.stderr}"
        return done.stdout

    return run


def read_safetensors(path) -> dict:
    """{name: numpy array} in the file's data order (the order `pgq
    quantize` reads a checkpoint in); f32 and i64 only, as the fixtures
    hold."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": "<f4", "I64": "<i8"}
    out = {}
    for name, t in sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0], kv[0])):
        start, end = t["data_offsets"]
        raw = data[8 + n + start : 8 + n + end]
        out[name] = np.frombuffer(raw, dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def assert_loads_as_exported(pgq_cli, artifact_path, tmp_path):
    """pgq.load of the file, and the reference decoder's load
    (spec/reference/pgq_decode.py, numpy alone), equal `pgq export` of it,
    bit for bit, in order."""
    import importlib.util

    import pgq

    exported = tmp_path / "export.safetensors"
    pgq_cli("export", artifact_path, "-o", exported)
    theirs = read_safetensors(exported)
    spec = importlib.util.spec_from_file_location("pgq_decode", REPO / "spec/reference/pgq_decode.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    for ours in (pgq.load(artifact_path), reference.load(artifact_path)):
        assert list(ours) == list(theirs)
        for name in ours:
            assert ours[name].dtype == np.float32
            assert ours[name].tobytes() == theirs[name].tobytes(), name


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory, pgq_cli):
    """The full demo model (35.9M parameters) and its synthetic Hessians,
    written by `pgq demo --model-only --write-hessians`."""
    out = tmp_path_factory.mktemp("demo")
    pgq_cli("demo", "--model-only", "--write-hessians", "--out", out)
    return out


@pytest.fixture(scope="session")
def minilm_dir():
    """scripts/fetch-minilm.sh's folder (weights, config, tokenizer)."""
    folder = Path(os.environ.get("PGQ_MINILM_DIR", REPO / ".cache/minilm"))
    if not (folder / "config.json").exists():
        subprocess.run(["bash", str(REPO / "scripts/fetch-minilm.sh")], check=True, stdout=subprocess.DEVNULL)
    return folder
