"""pgq.quantize against `pgq quantize`, side by side on the demo model.

Each run is a fresh process that reads the safetensors inputs, quantizes and
writes the artifact; runs alternate CLI / Python, and the report gives each
side's median wall time, its peak RSS (getrusage of the child), their ratio,
and whether both wrote the same bytes. A benchmark, not a test.

    pip install ./python && cargo build --release -p pgq
    python bench/python/vs_cli.py [--runs 3] [--pgq target/release/pgq]

Configurations: the default policy (RTN) with brotli-11, and the default
recipe's GPTQ with the synthetic Hessians and zstd-3 (so that the codes,
not the compressor, take most of the time).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PYTHON_RUN = r"""
import json, struct, sys, numpy as np, pgq
from pathlib import Path
def st(path):
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n]); header.pop("__metadata__", None)
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return {k: np.frombuffer(data, "<f4", count=int(np.prod(t["shape"], dtype=np.int64)),
                             offset=8 + n + t["data_offsets"][0]).reshape(t["shape"]) for k, t in items}
args = json.loads(sys.argv[1])
h = st(args["hessians"]) if args.get("hessians") else None
a = pgq.quantize(st(args["model"]), recipe=args.get("recipe"), hessians=h,
                 codec=args["codec"], level=args.get("level"), progress=False)
a.save(args["out"])
"""


def run(command):
    """(wall seconds, peak RSS in KiB) of one child process: os.wait4
    returns the rusage of that child alone."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[:3]} exited with {child.returncode}")
    return seconds, usage.ru_maxrss


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pgq", default=str(REPO / "target/release/pgq"))
    parser.add_argument("--work", default=None, help="folder for the demo inputs (kept)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="pgq-bench-"))
    model, hessians = work / "demo.safetensors", work / "demo-hessians.safetensors"
    if not hessians.exists():
        subprocess.run([args.pgq, "demo", "--model-only", "--write-hessians", "--out", work], check=True)
    configs = {
        "rtn, brotli-11": dict(codec="brotli", level=None, recipe=None, hessians=None),
        "gptq (recipes/default.toml), zstd-3": dict(
            codec="zstd", level=3, recipe=str(REPO / "recipes/default.toml"), hessians=str(hessians)
        ),
    }
    results = {}
    for label, c in configs.items():
        cli_out, py_out = work / "cli.pgq", work / "py.pgq"
        cli = [args.pgq, "quantize", str(model), "-o", str(cli_out), "--codec", c["codec"]]
        if c["level"] is not None:
            cli += ["--level", str(c["level"])]
        if c["recipe"]:
            cli += ["--recipe", c["recipe"], "--hessians", c["hessians"]]
        py = [sys.executable, "-c", PYTHON_RUN, json.dumps({**c, "model": str(model), "out": str(py_out)})]
        times = {"cli": [], "python": []}
        peaks = {"cli": [], "python": []}
        for _ in range(args.runs):
            for side, command in (("cli", cli), ("python", py)):
                seconds, peak = run(command)
                times[side].append(seconds)
                peaks[side].append(peak)
        same = cli_out.read_bytes() == py_out.read_bytes()
        cli_s, py_s = statistics.median(times["cli"]), statistics.median(times["python"])
        results[label] = {
            "cli_seconds": round(cli_s, 2),
            "python_seconds": round(py_s, 2),
            "python_over_cli": round(py_s / cli_s, 3),
            "cli_peak_rss_mb": round(max(peaks["cli"], default=0) / 1024, 1),
            "python_peak_rss_mb": round(max(peaks["python"], default=0) / 1024, 1),
            "identical_bytes": same,
            "runs": args.runs,
        }
        print(json.dumps({label: results[label]}), flush=True)
    weights_mb = model.stat().st_size / 1e6
    print(json.dumps({"demo_safetensors_mb": round(weights_mb, 1)}))


if __name__ == "__main__":
    main()
