"""English sentences every machine has: the docstrings of a fixed list of
Python standard-library modules, split into sentences, deduplicated, in a
fixed shuffled order. Calibration and held-out sets never overlap."""

import importlib
import inspect
import random
import re

MODULES = [
    "argparse", "asyncio", "calendar", "collections", "contextlib", "csv", "datetime",
    "decimal", "difflib", "email.message", "fractions", "ftplib", "functools", "gzip",
    "heapq", "http.client", "imaplib", "inspect", "ipaddress", "itertools", "json",
    "logging", "mailbox", "os", "pathlib", "pickle", "random", "re", "shutil", "smtplib",
    "socket", "sqlite3", "statistics", "string", "subprocess", "tarfile", "tempfile",
    "textwrap", "threading", "unittest", "urllib.request", "uuid", "zipfile",
]  # fmt: skip


def sentences():
    found, seen = [], set()
    for name in MODULES:
        module = importlib.import_module(name)
        docs = [inspect.getdoc(module) or ""]
        for attr in sorted(dir(module)):
            obj = getattr(module, attr, None)
            if not attr.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)):
                docs.append(inspect.getdoc(obj) or "")
        for doc in docs:
            for para in re.split(r"\n\s*\n", doc):
                if ">>>" in para or "::" in para:
                    continue
                for s in re.split(r"(?<=[.!?])\s+", " ".join(para.split())):
                    words = s.split()
                    if (
                        8 <= len(words) <= 40
                        and s[0].isupper()
                        and s.endswith(".")
                        and not re.search(r"[_(){}\[\]=<>*`]", s)
                        and s not in seen
                    ):
                        seen.add(s)
                        found.append(s)
    random.Random(0).shuffle(found)
    return found


def split(calibration=256, held_out=512):
    found = sentences()
    if len(found) < calibration + held_out:
        raise RuntimeError(f"only {len(found)} sentences in the standard library's docstrings")
    return found[:calibration], found[calibration : calibration + held_out]
