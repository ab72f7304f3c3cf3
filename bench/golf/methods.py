"""The methods the bench scores, as pgq recipes, and the records' own
serialization of the same codes (the status quo).

A method quantizes the block matrices at `bits` with one choice of
algorithm, clip and grouping; the tied embedding stays at int8 (SDClip
k 20, as the records and the default recipe), so the bits of a method are
those of 90% of the parameters, and the control tensors (at most 65,536
elements) stay fp16. Besides this grid, every shipped recipe runs as
written.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

KEEP = """[[rule]]
match = "*"
max_elements = 65536
keep = true
"""

EMBEDDING = """[[rule]]
match = "tok_emb.weight"
bits = {bits}
clip = {{ sdclip = {k} }}
{extra}"""

# The records' SDClip k (clip = k * std(row)): 12.85 for int6 matrices, 20
# for int8 (PR #1586 family). No record publishes a k for int4 or int5, so
# the grid keeps int6's: the width then sets the step (k / (2^(b-1) - 1)
# row stds), and with it the rate. Scaling k with the code range instead
# keeps the step, and then int4 and int6 give the same bytes and val_bpb
# (measured: docs/GOLF.md); the clip search picks its own clip per row.
SDCLIP_K = {4: 12.85, 5: 12.85, 6: 12.85, 7: 12.85, 8: 20.0}
PERCENTILES = "[0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0]"


@dataclasses.dataclass
class Method:
    name: str  # unique label, e.g. "gptq sdclip int6"
    family: str  # the method without its width: one curve of the plot
    bits: int | None  # the matrices' width (None: a shipped recipe's mix)
    recipe: str  # TOML text
    needs_hessians: bool
    sequential: bool = False


def _matrices(bits: int, method: str, clip: str, group: int = 0) -> str:
    lines = ['[[rule]]', 'match = "blocks.*.weight"', f"bits = {bits}", f'method = "{method}"', f"clip = {clip}"]
    if group:
        lines.append(f"group_size = {group}")
    return "\n".join(lines) + "\n"


def _recipe(bits: int, method: str, clip: str, group: int = 0, embedding_bits: int = 8) -> str:
    extra = 'method = "gptq"\n' if method == "gptq" else ""
    emb = EMBEDDING.format(bits=embedding_bits, k=SDCLIP_K[embedding_bits], extra=extra)
    return "\n".join((KEEP, emb, _matrices(bits, method, clip, group)))


def grid(widths=(4, 5, 6, 8)) -> list[Method]:
    out = []
    for bits in widths:
        sd = f"{{ sdclip = {SDCLIP_K[bits]:.4f} }}"
        mse = f'{{ percentiles = {PERCENTILES}, objective = "mse", scope = "row" }}'
        hess = f'{{ percentiles = {PERCENTILES}, objective = "hessian", scope = "row" }}'
        out += [
            Method(f"rtn sdclip int{bits}", "rtn sdclip", bits, _recipe(bits, "rtn", sd), False),
            Method(f"rtn clip-search int{bits}", "rtn clip-search", bits, _recipe(bits, "rtn", mse), False),
            Method(f"gptq sdclip int{bits}", "gptq sdclip", bits, _recipe(bits, "gptq", sd), True),
            Method(f"gptq clip-search(H) int{bits}", "gptq clip-search(H)", bits, _recipe(bits, "gptq", hess), True),
            Method(f"gptq sdclip g128 int{bits}", "gptq sdclip g128", bits, _recipe(bits, "gptq", sd, 128), True),
            Method(f"rtn sdclip g128 int{bits}", "rtn sdclip g128", bits, _recipe(bits, "rtn", sd, 128), False),
            Method(f"gptq sdclip seq int{bits}", "gptq sdclip sequential", bits, _recipe(bits, "gptq", sd), True, sequential=True),
        ]
        if bits == 6:
            out.append(Method("gptq sdclip int6 emb7", "gptq sdclip emb int7", 6,
                              _recipe(6, "gptq", sd, embedding_bits=7), True))
    return out


def reference() -> list[Method]:
    """The embedding alone at int8 (block matrices kept fp16): the share of
    every method's loss that the tied embedding/output head carries."""
    keep_blocks = '[[rule]]\nmatch = "blocks.*"\nkeep = true\n'
    emb = EMBEDDING.format(bits=8, k=SDCLIP_K[8], extra="")
    return [Method("embedding int8 only", "embedding int8 only", None, "\n".join((KEEP, emb, keep_blocks)), False)]


def shipped() -> list[Method]:
    out = []
    for path in sorted((REPO / "recipes").glob("*.toml")):
        text = path.read_text()
        out.append(Method(f"recipe {path.stem}", f"recipe {path.stem}", None, text,
                          needs_hessians='"gptq"' in text or '"hessian"' in text))
    return out


QUICK = ("rtn sdclip int8", "rtn sdclip int4")


# --- the records' serialization ---------------------------------------------------


def byte_shuffle(data: bytes, stride: int = 2) -> bytes:
    """The records' `_byte_shuffle`: b"BSHF", the stride, then every
    stride-th byte from each offset."""
    arr = np.frombuffer(data, dtype=np.uint8)
    return b"BSHF" + bytes([stride]) + b"".join(arr[i::stride].tobytes() for i in range(stride))


def byte_unshuffle(data: bytes) -> bytes:
    """The inverse of :func:`byte_shuffle` (the records' loader)."""
    if data[:4] != b"BSHF":
        raise ValueError("not a BSHF stream")
    stride, body = data[4], np.frombuffer(data[5:], dtype=np.uint8)
    out = np.empty_like(body)
    start = 0
    for i in range(stride):
        count = len(range(i, len(body), stride))
        out[i::stride] = body[start : start + count]
        start += count
    return out.tobytes()


def status_quo_bytes(artifact, state: dict) -> int:
    return len(status_quo_file(artifact, state))


def status_quo_file(artifact, state: dict) -> bytes:
    """The records' artifact for the same codes: torch.save of
    {"w": {name.q: int8 codes, name.scale: fp16 scales, kept: fp16}, "m":
    per-tensor meta}, with a low-rank correction's factors under the
    records' keys (`.lqA_a`, `.lqAs_a`, `.lqB_a`, `.lqBs_a`), byte-shuffled
    with stride 2, brotli quality 11 with a 24-bit window (PR #1586 and its
    successors). Groupwise scales are saved
    as their [rows, groups] matrix (the records' loader cannot decode those:
    a size only)."""
    import brotli
    import pgq
    import torch

    codes = pgq.codes(artifact)
    w, meta = {}, {}
    for name, value in state.items():
        if name in codes:
            c = codes[name]
            w[f"{name}.q"] = torch.from_numpy(c.codes.copy())
            scales = c.scales if c.group_size else c.scales[:, 0]
            w[f"{name}.scale"] = torch.from_numpy(scales.astype(np.float16))
            meta[name] = {"type": f"int{c.bits}", "group": c.group_size}
            if c.correction is not None:
                # The records' asymmetric LQER keys (2026-04-27's
                # gptq_mixed_quantize): A's codes and its 0-d scale, B's
                # codes and its scales per group.
                a, b = c.correction
                w[f"{name}.lqA_a"] = torch.from_numpy(a.codes.copy())
                scale_a = a.scales.reshape(()) if a.scales.size == 1 else a.scales
                w[f"{name}.lqAs_a"] = torch.from_numpy(np.array(scale_a, dtype=np.float16))
                w[f"{name}.lqB_a"] = torch.from_numpy(b.codes.copy())
                w[f"{name}.lqBs_a"] = torch.from_numpy(b.scales.astype(np.float16))
                meta[name]["type"] += "+lqer_asym"
        else:
            w[name] = value.detach().to(torch.float16)
            meta[name] = "passthrough"
    buf = io.BytesIO()
    torch.save({"w": w, "m": meta}, buf)
    return brotli.compress(byte_shuffle(buf.getvalue()), quality=11, lgwin=24)
