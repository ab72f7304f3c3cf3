#!/usr/bin/env python3
"""How long the viewer takes to show an artifact, in headless Chromium.

    cargo xtask demo
    python3 web/e2e/bench.py demo-out/demo.pgq [--runs 10] [--json OUT] [--pgq target/release/pgq]

Serves web/dist and the artifact on 127.0.0.1, starts Chromium once, then
loads `/?artifact=...` RUNS times, each a fresh navigation. The page marks
itself (web/src/browser.rs, `mark_after_paint`) with the milliseconds from
the start of the navigation to the first frame painted after

- `readyMs`: the artifact is fetched, decoded and validated, and the full
  page (gauge, layer chart, tensor table) is rendered;
- `checkedMs`: the checks of `pgq verify` (which dequantize every weight
  for the decode digest) are shown too.

Run 1 includes compiling the wasm module; the others hit Chromium's caches,
as a person reopening the page does. Prints the median and range of each
mark, the phases of the median run (fetch of the artifact from the
Resource Timing API, then decode and render), and the bundle's size
gzipped (-9, as a server would send it). With --pgq, the native CLI's
`inspect --layers` and `verify` on the same file, timed in the same run.

Needs chromium, chromium-driver and `pip install selenium`.
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

from selenium.webdriver.support.ui import WebDriverWait

import harness
from harness import ROOT

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("artifact")
ap.add_argument("--runs", type=int, default=10)
ap.add_argument("--json", help="write every figure here")
ap.add_argument("--pgq", help="also time this pgq binary's `inspect --layers` and `verify` on the same file, natively, side by side")
args = ap.parse_args()
if args.runs < 2:
    sys.exit("bench.py: --runs must be at least 2 (run 1 is the cold one)")

name = os.path.basename(args.artifact)
size = os.path.getsize(args.artifact)
base, _ = harness.serve({"artifact.pgq": args.artifact})
started = time.perf_counter()
d = harness.chromium()
browser_s = time.perf_counter() - started
wait = WebDriverWait(d, 300, poll_frequency=0.05)

MARKS = """
const b = document.body.dataset;
if (!b.checkedMs) return null;
const fetched = performance.getEntriesByType('resource').find(e => e.name.endsWith('/artifact.pgq'));
return {ready: +b.readyMs, checked: +b.checkedMs, fetched: fetched ? fetched.responseEnd : null,
        state: b.state};
"""

runs = []
for i in range(args.runs):
    d.get("%s/?artifact=/artifact.pgq&name=%s&run=%d" % (base, name, i))
    marks = wait.until(lambda _: d.execute_script(MARKS))
    if marks["state"] != "ready":
        sys.exit("bench.py: the page is in state %r, not ready: %s" % (marks["state"], d.find_element("id", "error").text))
    runs.append(marks)
d.quit()

native = {}
if args.pgq:
    for label, argv in [("inspect --layers", ["inspect", "--layers"]), ("verify", ["verify"])]:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([args.pgq, *argv, args.artifact], check=False, capture_output=True)
            times.append(1000 * (time.perf_counter() - t))
        native[label] = statistics.median(times)

bundle = {}
for root, _, files in os.walk(os.path.join(ROOT, "web", "dist")):
    for f in files:
        with open(os.path.join(root, f), "rb") as fh:
            raw = fh.read()
        bundle[os.path.relpath(os.path.join(root, f), os.path.join(ROOT, "web", "dist"))] = (len(raw), len(gzip.compress(raw, 9)))
raw_total = sum(r for r, _ in bundle.values())
gz_total = sum(g for _, g in bundle.values())

warm = runs[1:]
median_run = sorted(warm, key=lambda r: r["ready"])[len(warm) // 2]


def summary(key, rs):
    xs = [r[key] for r in rs]
    return statistics.median(xs), min(xs), max(xs)


print("artifact: %s, %s bytes; Chromium started in %.2f s (not counted below)" % (name, format(size, ","), browser_s))
print("%-34s %10s %10s %10s" % ("from navigation start, ms", "median", "min", "max"))
for key, label in [("ready", "full page rendered (readyMs)"), ("checked", "verify checks shown (checkedMs)")]:
    print("%-34s %10.0f %10.0f %10.0f   (run 1, cold: %.0f)" % ((label,) + summary(key, warm) + (runs[0][key],)))
if median_run["fetched"] is not None:
    print("median run: artifact fetched at %.0f ms, decoded and rendered %.0f ms later"
          % (median_run["fetched"], median_run["ready"] - median_run["fetched"]))
for label, ms in native.items():
    print("native `pgq %s` on the same file: %.0f ms (median of 3, process start included)" % (label, ms))
print("bundle: %s bytes raw, %s bytes gzipped -9 (%d files)" % (format(raw_total, ","), format(gz_total, ","), len(bundle)))

if args.json:
    with open(args.json, "w") as f:
        json.dump({"artifact": name, "bytes": size, "browser_start_s": browser_s, "runs": runs, "native_ms": native,
                   "bundle": {k: {"raw": r, "gzip": g} for k, (r, g) in bundle.items()}}, f, indent=1)
