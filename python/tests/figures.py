"""Figures the model-output tests measure, printed and, with
PGQ_FIGURES=FILE, appended to FILE as JSON lines (docs/PYTHON.md quotes
them)."""

import json
import os


def record(test, **figures):
    line = json.dumps({"test": test, **figures}, sort_keys=True)
    print(line)
    path = os.environ.get("PGQ_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
