#!/usr/bin/env python3
"""Writes the seed corpus of the `quantize_input` fuzz target into
fuzz/seeds/quantize_input/ (deterministic; run it again after changing it).

Each seed is [recipe_len u16 LE][recipe][flags u8][safetensors], the input
layout of fuzz_targets/quantize_input.rs: small checkpoints in f32, f16,
bf16 and with an integer buffer, paired with RTN recipes (which quantize
without Hessians), the repository's recipes (GPTQ: planned, then refused
for want of Hessians) and a deep glob."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds", "quantize_input")


def safetensors(tensors):
    """tensors: [(name, dtype, shape, raw bytes)] -> safetensors bytes."""
    header, offset, data = {}, 0, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + data


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def f16(values):
    return struct.pack("<%de" % len(values), *values)


def bf16(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)


def ramp(n, scale=0.01):
    return [((i * 37) % 101 - 50) * scale for i in range(n)]


MODEL = safetensors([
    ("tok_emb.weight", "F32", [16, 8], f32(ramp(128))),
    ("blocks.0.attn.c_q.weight", "BF16", [8, 8], bf16(ramp(64, 0.02))),
    ("blocks.0.mlp.fc.weight", "F16", [16, 8], f16(ramp(128, 0.03))),
    ("blocks.0.attn_scale", "F32", [8], f32([1.0] * 8)),
])
WITH_IDS = safetensors([
    ("position_ids", "I64", [1, 4], struct.pack("<4q", 0, 1, 2, 3)),
    ("w", "F32", [4, 4], f32(ramp(16))),
])
RTN = """[defaults]
method = "rtn"
[[rule]]
match = "*"
max_elements = 8
keep = true
[[rule]]
match = "*emb*"
bits = 8
clip = { sdclip = 20.0 }
[[rule]]
match = "{blocks.*.attn.*,blocks.*.mlp.*}"
min_rank = 2
bits = 6
group_size = 4
clip = { sdclip = 12.85 }
"""
RTN_ALL = """[[rule]]
match = "*"
method = "rtn"
bits = 5
"""
DEEP = "[[rule]]\nmatch = \"" + "{a," * 40 + "b" + "}" * 40 + "\"\nkeep = true\n"


def seed(recipe, flags, checkpoint):
    recipe = recipe.encode()
    return struct.pack("<H", len(recipe)) + recipe + bytes([flags]) + checkpoint


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "rtn_model": seed(RTN, 0, MODEL),
        "rtn_all_model": seed(RTN_ALL, 0, MODEL),
        "rtn_all_ids_dropped": seed(RTN_ALL, 1, WITH_IDS),
        "rtn_all_ids_refused": seed(RTN_ALL, 0, WITH_IDS),
        "deep_glob": seed(DEEP, 0, MODEL),
    }
    recipes = os.path.join(HERE, "..", "recipes")
    for name in sorted(os.listdir(recipes)):
        if name.endswith(".toml"):
            with open(os.path.join(recipes, name), encoding="utf-8") as f:
                seeds["recipe_" + name[:-5]] = seed(f.read(), 0, MODEL)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
