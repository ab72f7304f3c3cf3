#!/usr/bin/env python3
"""End-to-end check of the built viewer in headless Chromium (Selenium),
against the CLI's own figures.

    cargo xtask web && cargo build --release -p pgq
    python3 web/e2e/check.py ARTIFACT.pgq [OTHER.pgq] [--pgq target/release/pgq] [--screenshot OUT.png]

Serves web/dist plus the artifacts from a temporary folder on 127.0.0.1,
opens the page with `?artifact=`, and checks the DOM contract
(web/README.md) against `pgq inspect --json`: one `tr[data-name]` per
tensor in file order with the CLI's params, bytes, bits, group size, bits
per weight, shape and kind; `#cap-total`; the layer chart; the checks of
`pgq verify`. Then the interactions: sorting (header buttons, keyboard),
filtering, a click on a layer, the detail panel, code bytes typed and
picked as a file, compare, a malformed file (exactly the CLI's message),
a file that is not a .pgq, a failed fetch, the empty state.

Needs chromium, chromium-driver and `pip install selenium`; no network.
Exits 1 on the first failed check.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

import harness
from harness import ROOT

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("artifact")
ap.add_argument("other", nargs="?")
ap.add_argument("--pgq", default=os.path.join(ROOT, "target", "release", "pgq"))
ap.add_argument("--screenshot", help="save a screenshot of the loaded page here")
args = ap.parse_args()

with open(args.artifact, "rb") as f:
    data = f.read()
BASE, serve = harness.serve({
    "demo.pgq": args.artifact,
    "other.pgq": args.other or args.artifact,
    "bad.pgq": data[: len(data) // 2],
})


def pgq(*argv):
    return subprocess.run([os.path.abspath(args.pgq), *argv], cwd=serve, capture_output=True, text=True)


inspect = json.loads(pgq("inspect", "demo.pgq", "--json").stdout)
other = json.loads(pgq("inspect", "other.pgq", "--json").stdout)
bad = pgq("inspect", "bad.pgq")
assert bad.returncode == 2, bad
BAD_MESSAGE = bad.stderr.strip().removeprefix("pgq: error: ")


d = harness.chromium()
wait = WebDriverWait(d, 120)
passed = 0


def check(cond, what):
    global passed
    if not cond:
        shot = os.path.join(serve, "fail.png")
        d.save_screenshot(shot)
        print("FAIL:", what, "(screenshot:", shot + ")")
        d.quit()
        sys.exit(1)
    passed += 1


def state():
    return d.execute_script("return document.body.dataset.state")


def wait_state(s):
    wait.until(lambda _: state() == s)


def text(sel):
    return d.find_element(By.CSS_SELECTOR, sel).text


def content(sel):
    """textContent: also for the hidden hooks (#cap-total)."""
    return d.find_element(By.CSS_SELECTOR, sel).get_attribute("textContent")


def row_names():
    return [r.get_attribute("data-name") for r in d.find_elements(By.CSS_SELECTOR, "#tensor-table tbody tr")]


def checks_done():
    el = d.find_element(By.ID, "checks")
    return el.get_attribute("data-state") == "done" and d.find_elements(By.CSS_SELECTOR, ".checks-table")


def int_or_dash(v):
    return "-" if v is None else str(v)


size = len(data)
tensors = inspect["tensors"]
d.get(BASE + "/?artifact=/demo.pgq&name=demo.pgq")
wait_state("ready")
check(text("#status") == "ready", "#status is ready")
check(content("#cap-total") == str(size), "#cap-total %r" % content("#cap-total"))
check(row_names() == [t["name"] for t in tensors], "one row per tensor, in file order")
for tr, t in zip(d.find_elements(By.CSS_SELECTOR, "#tensor-table tbody tr"), tensors):
    cells = {c.get_attribute("data-key"): c.get_attribute("textContent") for c in tr.find_elements(By.CSS_SELECTOR, "td")}
    expected = {
        "name": t["name"],
        "shape": "x".join(map(str, t["shape"])) or "scalar",
        "kind": t["kind"],
        "bits": int_or_dash(t["bits"]),
        "group_size": int_or_dash(t["group_size"]),
        "params": str(t["params"]),
        "bytes": str(t["bytes"]),
        "bits_per_weight": "%.3f" % t["bits_per_weight"],
    }
    check({k: cells.get(k) for k in expected} == expected, (cells, expected))
    check("entropy" in cells, "entropy cell")
chart = d.find_element(By.CSS_SELECTOR, "#layer-chart")
check(chart.tag_name == "svg", "#layer-chart is an svg")
layer_rows = d.find_elements(By.CSS_SELECTOR, "#layer-chart g.layer-row")
check(len(layer_rows) == len(inspect["layers"]), "one bar per layer")
wait.until(lambda _: checks_done())
cap = d.find_element(By.CSS_SELECTOR, 'tr[data-id="cap"]')
check("no code files given" in cap.text, cap.text)
if args.screenshot:
    d.save_screenshot(args.screenshot)

# Sort: header buttons, by mouse and by keyboard.
d.find_element(By.CSS_SELECTOR, 'th[data-key="bytes"] button').click()
biggest = max(tensors, key=lambda t: t["bytes"])["name"]
check(row_names()[0] == biggest, "bytes sorts largest first")
check(d.find_element(By.CSS_SELECTOR, 'th[data-key="bytes"]').get_attribute("aria-sort") == "descending", "aria-sort")
d.find_element(By.CSS_SELECTOR, 'th[data-key="bytes"] button').send_keys(Keys.ENTER)
check(row_names()[-1] == biggest, "Enter on the header sorts ascending")
d.find_element(By.CSS_SELECTOR, 'th[data-key="bytes"] button').send_keys(Keys.ENTER)
check(row_names() == [t["name"] for t in tensors], "third click: file order again")

# Filter, then the keyboard selects a row.
term = tensors[-1]["name"]
box = d.find_element(By.ID, "tensor-filter")
box.send_keys(term)
check(all(term.lower() in n.lower() for n in row_names()) and row_names(), "filter")
first = d.find_element(By.CSS_SELECTOR, "#tensor-table tbody tr")
name = first.get_attribute("data-name")
first.send_keys(Keys.ENTER)
wait.until(lambda _: name in text("#detail"))
quantized = [t for t in tensors if t["kind"] == "quantized"]
box.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
wait.until(lambda _: len(row_names()) == len(tensors))

# The table is one tab stop (the selected row); the arrows move the selection.
def tab_stops():
    return [r.get_attribute("data-name") for r in d.find_elements(By.CSS_SELECTOR, '#tensor-table tbody tr[tabindex="0"]')]


check(tab_stops() == [name], "one tab stop, the selected row: %r" % tab_stops())
names = row_names()
at = names.index(name)
row = d.find_element(By.CSS_SELECTOR, 'tr[data-name="%s"]' % name)
row.send_keys(Keys.ARROW_UP if at == len(names) - 1 else Keys.ARROW_DOWN)
moved = names[at - 1] if at == len(names) - 1 else names[at + 1]
wait.until(lambda _: moved in text("#detail"))
check(d.switch_to.active_element.get_attribute("data-name") == moved, "an arrow moves the focus")
check(tab_stops() == [moved], "the tab stop follows the selection")
d.switch_to.active_element.send_keys(Keys.HOME)
wait.until(lambda _: names[0] in text("#detail"))
check(d.switch_to.active_element.get_attribute("data-name") == names[0], "Home goes to the first row")
d.switch_to.active_element.send_keys(Keys.END)
wait.until(lambda _: names[-1] in text("#detail"))
check(d.switch_to.active_element.get_attribute("data-name") == names[-1], "End goes to the last row")
if quantized:
    row = d.find_element(By.CSS_SELECTOR, 'tr[data-name="%s"]' % quantized[0]["name"])
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.click()
    wait.until(lambda _: "Codes: int" in text("#detail") and "Scales (fp16)" in text("#detail"))

# A click on a layer lists its tensors.
last = inspect["layers"][-1]
layer_rows[-1].click()
check(len(row_names()) == last["tensors"], "layer click lists %d tensors" % last["tensors"])
check(d.find_element(By.ID, "tensor-filter").get_attribute("value") == "layer:" + last["layer"], "layer filter")

# Code bytes: typed, then a file.
d.find_element(By.ID, "code-bytes").send_keys("47642")
wait.until(lambda _: content("#cap-total") == str(size + 47642))
wait.until(lambda _: checks_done() and "47642 code bytes" in d.find_element(By.CSS_SELECTOR, 'tr[data-id="cap"]').text)
code = os.path.join(serve, "train_gpt.py")
with open(code, "w") as f:
    f.write("x" * 50000)
d.find_element(By.ID, "code-input").send_keys(code)
wait.until(lambda _: content("#cap-total") == str(size + 50000))
check(d.find_element(By.ID, "code-bytes").get_attribute("value") == "50000", "the box shows the file's bytes")

# Compare.
d.find_element(By.ID, "compare-input").send_keys(os.path.join(serve, "other.pgq"))
wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr"))
layers = {l["layer"] for l in inspect["layers"]} | {l["layer"] for l in other["layers"]}
check(len(d.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")) == len(layers), "a row per layer of either")

# The file input is a real, focusable input.
d.execute_script("document.getElementById('file-input').focus()")
check(d.execute_script("return document.activeElement.id") == "file-input", "#file-input takes focus")

# A malformed file: exactly the CLI's message.
d.find_element(By.ID, "file-input").send_keys(os.path.join(serve, "bad.pgq"))
wait_state("error")
check(text("#status") == "error", "#status is error")
check(text("#error") == BAD_MESSAGE, "error %r != CLI %r" % (text("#error"), BAD_MESSAGE))
check(not d.find_elements(By.CSS_SELECTOR, "#tensor-table"), "no stale table after an error")

# A good file through the picker clears the error.
t0 = time.time()
d.find_element(By.ID, "file-input").send_keys(os.path.join(serve, "demo.pgq"))
wait_state("ready")
print("decode through the picker: %.2f s (%s)" % (time.time() - t0, text(".timing")))
check(text("#error") == "", "the error is cleared")

d.find_element(By.ID, "file-input").send_keys(os.path.join(serve, "index.html"))
wait_state("error")
check("index.html is not a valid .pgq file: bad_magic: magic at byte 0" in text("#error"), text("#error"))

# Drag and drop: a file dropped anywhere on the page opens it (a DragEvent
# with a DataTransfer holding the File, as the browser builds it).
DROP = """
const [url, name, selector, done] = arguments;
fetch(url).then(r => r.arrayBuffer()).then(buf => {
  const dt = new DataTransfer();
  dt.items.add(new File([buf], name));
  const at = document.querySelector(selector);
  at.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
  at.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
  done(true);
});
"""
d.execute_async_script(DROP, "/other.pgq", "dropped.pgq", "h1")
wait_state("ready")
check(row_names() == [t["name"] for t in other["tensors"]], "the dropped file's rows")
check(content("#cap-total") == str(os.path.getsize(args.other or args.artifact) + 50000), "the dropped file's total, code bytes kept")
check("dropped.pgq" in text(".gauge"), "the dropped file's name on the gauge")

# On the compare box, a drop is the comparison's only: the main artifact
# stays, and the page's drop highlight is cleared.
main_rows = row_names()
d.execute_async_script(DROP, "/demo.pgq", "dropped-compare.pgq", 'label[for="compare-input"]')
wait.until(lambda _: "dropped-compare.pgq" in text("#compare"))
check(row_names() == main_rows, "a drop on the compare box leaves the main artifact")
check("dragging" not in d.find_element(By.CSS_SELECTOR, ".app").get_attribute("class"), "no drop highlight left")

d.get(BASE + "/?artifact=/missing.pgq")
wait_state("error")
check(text("#error") == "cannot fetch /missing.pgq: HTTP 404 File not found", text("#error"))

d.get(BASE + "/")
wait.until(lambda _: d.find_elements(By.ID, "status"))
check(state() == "empty", "empty state")

d.quit()
shutil.rmtree(serve, ignore_errors=True)
print("%d passed, 0 failed" % passed)
