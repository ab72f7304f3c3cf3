#!/usr/bin/env python3
"""The proving ground: a parameter-golf-style GPT trained here, every method
quantized through pgq, loaded back and scored by val_bpb at its bytes.

    python3 bench/golf/run.py --json golf.json --plot docs/golf.png
    python3 bench/golf/run.py --quick --json quick.json      # CI: the machinery
    python3 bench/golf/run.py --size gpu --device cuda        # the 36M shape

Steps: the corpus (Debian's pinned `fortunes` package, bench/golf/data.py)
and its 1,024-token BPE; training with the records' optimizers, cached by
config hash in .cache/golf/ (a rerun starts at the next step); GPTQ
Hessians with pgq.torch on training batches; then per method: quantize,
load the artifact back into the model, val_bpb on the whole validation
split, and the records' serialization of the same codes (torch.save, byte
shuffle, brotli-11) for its bytes. Prints a table, writes JSON and a plot
of val_bpb against bytes, and the budget view (each method at the bytes per
parameter that 16,000,000 bytes give the 36M model). With MiniLM present
(scripts/fetch-minilm.sh), the second benchmark runs too (bench/golf/minilm.py).
docs/GOLF.md has a full run's figures.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import fnmatch
import json
import math
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

CHALLENGE_BYTES = 16_000_000


# The records' hand-tuned recipes: uniform k 12.85 (int8 k 20 embedding),
# per-class k 12/13 with an int7 k 15 embedding, groupwise int6 with a
# Hessian-weighted clip search. `--budget` is judged at their bytes.
FIT_AGAINST = ("recipe default", "recipe per-class-clip", "recipe groupwise-hessian")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--size", choices=("cpu", "gpu"), default="cpu",
                   help="cpu: 4 layers of 320, 5.2M parameters, ~10 min of training on 2 cores; "
                        "gpu: the 36M shape (11 layers of 512)")
    p.add_argument("--quick", action="store_true",
                   help="a few dozen steps, two methods and 4,096 validation tokens: tests the "
                        "machinery, not the methods")
    p.add_argument("--steps", type=int, help="training steps (default: cpu 500, gpu 600, quick 30)")
    p.add_argument("--batch", type=int, help="sequences per step (default: cpu 16, gpu 32, quick 8)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--methods", nargs="+", metavar="GLOB",
                   help='only methods whose name matches a glob, e.g. "gptq*int6" "recipe *"')
    p.add_argument("--widths", type=int, nargs="+", default=[4, 5, 6, 8],
                   help="matrix widths of the method grid (default: 4 5 6 8)")
    p.add_argument("--budget", default="auto",
                   help='bytes for the budget view; "auto": 16,000,000 x this model\'s parameters / '
                        "the 36M model's (the same bits per parameter)")
    p.add_argument("--fit", nargs="*", default=list(FIT_AGAINST), metavar="METHOD",
                   help="after the methods, fit the default recipe (GPTQ) with `pgq.quantize("
                        "budget=...)`, both allocations, to the bytes of each of these methods "
                        "(default: the records' hand-tuned recipes: %(default)s); none: --fit "
                        "with no name")
    p.add_argument("--lqer", nargs="*", default=["3:4", "4:6"], metavar="TOP_K:RANK",
                   help="after the methods, the default recipe with an [lqer] table of each "
                        "TOP_K:RANK (default: the records' %(default)s), and --budget (uniform, "
                        "no LQER) at the bytes of each; none: --lqer with nothing")
    p.add_argument("--rdo", nargs="*", type=float, default=[0.1, 0.4], metavar="LAMBDA",
                   help="after the methods, the default recipe with rate-distortion GPTQ (rdo = "
                        "LAMBDA in its [defaults]) and --budget at its bytes (default: %(default)s); "
                        "none: --rdo with nothing")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write val_bpb against bytes (matplotlib)")
    p.add_argument("--plot-around-points", action="store_true",
                   help="fit the plot's axes to the points rather than to the region around the budget "
                        "(for a run of a few methods at nearby sizes)")
    p.add_argument("--artifacts", type=Path, metavar="DIR",
                   help="keep each method's .pgq file in DIR (named after the method)")
    p.add_argument("--minilm", metavar="DIR",
                   help="MiniLM folder (default: $PGQ_MINILM_DIR, then .cache/minilm); "
                        '"none" skips the second benchmark')
    p.add_argument("--cache", type=Path, default=REPO / ".cache" / "golf",
                   help="corpus, tokenizer and trained checkpoints (default: .cache/golf)")
    p.add_argument("--device", default="cpu", help="torch device for training and evaluation")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: one per core)")
    p.add_argument("--calibration", type=int, help="Hessian batches (default: 16, quick 2)")
    return p.parse_args(argv)


def missing_packages(plot: bool) -> list[str]:
    import importlib.util

    wanted = {"torch": "torch", "tokenizers": "tokenizers", "brotli": "brotli", "pgq": "./python"}
    if plot:
        wanted["matplotlib"] = "matplotlib"
    return [pip for module, pip in wanted.items() if importlib.util.find_spec(module) is None]


def main(argv=None) -> int:
    args = parse_args(argv)
    missing = missing_packages(args.plot is not None)
    if missing:
        print(f"run.py: missing Python packages; install them with: pip install {' '.join(missing)}",
              file=sys.stderr)
        return 2
    import torch

    import data
    import methods as M
    import minilm
    import report
    import train
    from model import SIZES

    import pgq
    import pgq.torch

    if args.threads:
        torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    started = time.perf_counter()

    corpus = data.load(args.cache / "corpus")
    config = SIZES[args.size]
    if args.quick:
        config = dataclasses.replace(config, seq_len=128)
        args.lqer, args.rdo = args.lqer[:1], args.rdo[:1]  # the machinery, once
    defaults = {"cpu": (500, 16), "gpu": (600, 32)}[args.size]
    steps = args.steps or (30 if args.quick else defaults[0])
    batch = args.batch or (8 if args.quick else defaults[1])
    schedule = train.Schedule(steps=steps, batch=batch, seed=args.seed)
    params = config.parameters()
    log(f"corpus: Debian {data.PACKAGE} {data.VERSION}: {corpus.train_text_bytes:,} training bytes "
        f"({len(corpus.train_ids):,} tokens), {corpus.val_bytes:,} validation bytes "
        f"({len(corpus.val_ids):,} tokens)")
    log(f"model: {params:,} parameters ({config.layers} layers of {config.dim}, vocab {config.vocab}, "
        f"seq {config.seq_len}); {steps} steps of {batch} x {config.seq_len} tokens, seed {args.seed}")

    device = torch.device(args.device)
    model, info = train.train_or_load(corpus, config, schedule, args.cache / "models", log, device)
    max_tokens = 4096 if args.quick else None
    evaluate = lambda m: train.val_bpb(m, corpus, max_tokens=max_tokens)  # noqa: E731
    t0 = time.perf_counter()
    float_bpb = evaluate(model)
    eval_seconds = time.perf_counter() - t0
    unigram = corpus.unigram_val_bpb()
    log(f"val_bpb: float {float_bpb:.4f}, unigram {unigram:.4f} (evaluation {eval_seconds:.1f} s)")

    calib = [x.to(device) for x, _ in train.batches(corpus, config, batch, args.calibration or
                                                     (2 if args.quick else 16), args.seed + 1)]
    tied = {"tok_emb.weight": model.final_norm}
    float_state = {k: v.detach().cpu().clone() for k, v in pgq.torch.weights(model).items()}
    hessians = None

    chosen = [m for m in M.reference() + M.grid(tuple(args.widths)) + M.shipped()
              if (args.quick and m.name in M.QUICK)
              or (not args.quick and (not args.methods or any(fnmatch.fnmatch(m.name, g) for g in args.methods)))]
    results = []
    log(f"{len(chosen)} methods")
    for i, method in enumerate(chosen, 1):
        if method.needs_hessians and hessians is None and not method.sequential:
            t = time.perf_counter()
            hessians = pgq.torch.collect_hessians(model, calib, tied_inputs=tied)
            log(f"Hessians: {len(hessians)} from {hessians.tokens_used:,} tokens in {time.perf_counter() - t:.1f} s")
        qmodel = copy.deepcopy(model)
        t = time.perf_counter()
        try:
            if method.sequential:
                artifact = pgq.torch.quantize_model(qmodel, calib, method.recipe, sequential=True,
                                                    tied_inputs={"tok_emb.weight": qmodel.final_norm},
                                                    progress=False)
            else:
                artifact = pgq.quantize(float_state, recipe=method.recipe,
                                        hessians=hessians if method.needs_hessians else None,
                                        progress=False)
                pgq.torch.load_into(qmodel, artifact)
        except pgq.PgqError as e:
            log(f"[{i}/{len(chosen)}] {method.name}: not applicable: {e}")
            results.append(dict(method=method.name, family=method.family, bits=method.bits,
                                error=f"{type(e).__name__}: {e}"))
            continue
        seconds = time.perf_counter() - t
        if args.artifacts:
            args.artifacts.mkdir(parents=True, exist_ok=True)
            artifact.save(args.artifacts / (method.name.replace(" ", "_").replace("(", "").replace(")", "") + ".pgq"))
        bpb = evaluate(qmodel)
        sq = M.status_quo_bytes(artifact, float_state)
        row = dict(method=method.name, family=method.family, bits=method.bits, bytes=len(artifact),
                   bits_per_parameter=round(8 * len(artifact) / params, 4), val_bpb=round(bpb, 5),
                   delta_vs_float=round(bpb - float_bpb, 5), seconds=round(seconds, 2),
                   status_quo_bytes=sq)
        results.append(row)
        log(f"[{i}/{len(chosen)}] {method.name:<32} {len(artifact):>10,} B  val_bpb {bpb:.4f} "
            f"({bpb - float_bpb:+.4f})  {seconds:5.1f} s  status quo {sq:,} B")

    default_recipe = (REPO / "recipes" / "default.toml").read_text()
    fits = [(t, a) for t in results if t["method"] in args.fit and "bytes" in t
            for a in ("uniform", "per-tensor")]
    for target, allocation in fits:
        if hessians is None:
            hessians = pgq.torch.collect_hessians(model, calib, tied_inputs=tied)
        name = f"budget {allocation} = {target['method']}"
        family = f"pgq --budget --allocate {allocation}"
        qmodel = copy.deepcopy(model)
        t = time.perf_counter()
        try:
            artifact = pgq.quantize(float_state, recipe=default_recipe, hessians=hessians,
                                    progress=False, budget=target["bytes"], allocation=allocation)
        except pgq.PgqError as e:
            log(f"{name}: {e}")
            results.append(dict(method=name, family=family, bits=None, error=f"{type(e).__name__}: {e}"))
            continue
        seconds = time.perf_counter() - t
        pgq.torch.load_into(qmodel, artifact)
        bpb = evaluate(qmodel)
        fit = artifact.report["budget"]
        row = dict(method=name, family=family, bits=None, bytes=len(artifact),
                   bits_per_parameter=round(8 * len(artifact) / params, 4), val_bpb=round(bpb, 5),
                   delta_vs_float=round(bpb - float_bpb, 5), seconds=round(seconds, 2),
                   status_quo_bytes=M.status_quo_bytes(artifact, float_state),
                   budget_bytes=target["bytes"], binding=fit["binding"],
                   versus=dict(method=target["method"], val_bpb=target["val_bpb"]))
        results.append(row)
        log(f"{name:<52} {len(artifact):>10,} B  val_bpb {bpb:.4f} ({bpb - target['val_bpb']:+.4f} "
            f"vs the recipe)  {seconds:5.1f} s{'' if fit['binding'] else '  (budget not binding)'}")

    # LQER and rate-distortion GPTQ, each against --budget (uniform, the
    # default recipe) at its bytes: what they buy against spending the same
    # bytes on the clip factor.
    assert "\nblock_size = 128\n" in default_recipe, "rdo goes into the default recipe's [defaults]"
    variants = [(f"lqer top {t} rank {r}", "pgq [lqer]", default_recipe + f"\n[lqer]\ntop_k = {t}\nrank = {r}\n")
                for t, r in (map(int, spec.split(":")) for spec in args.lqer)]
    variants += [(f"rdo {x:g}", "pgq rdo",
                  default_recipe.replace("\nblock_size = 128\n", f"\nblock_size = 128\nrdo = {x}\n", 1))
                 for x in args.rdo]
    for name, family, variant_recipe in variants:
        if hessians is None:
            hessians = pgq.torch.collect_hessians(model, calib, tied_inputs=tied)
        pair = []
        for label, row_family in ((f"recipe default + {name}", family),
                                  (f"budget uniform = {name}", "pgq --budget --allocate uniform")):
            kwargs = (dict(recipe=variant_recipe) if not pair
                      else dict(recipe=default_recipe, budget=pair[0]["bytes"]))
            t = time.perf_counter()
            artifact = pgq.quantize(float_state, hessians=hessians, progress=False, **kwargs)
            seconds = time.perf_counter() - t
            qmodel = copy.deepcopy(model)
            pgq.torch.load_into(qmodel, artifact)
            bpb = evaluate(qmodel)
            row = dict(method=label, family=row_family, bits=None, bytes=len(artifact),
                       bits_per_parameter=round(8 * len(artifact) / params, 4), val_bpb=round(bpb, 5),
                       delta_vs_float=round(bpb - float_bpb, 5), seconds=round(seconds, 2),
                       status_quo_bytes=M.status_quo_bytes(artifact, float_state))
            if "lqer" in artifact.report:
                row["lqer"] = artifact.report["lqer"]
            pair.append(row)
            results.append(row)
            log(f"{label:<52} {len(artifact):>10,} B  val_bpb {bpb:.4f}  {seconds:5.1f} s")

    budget = (round(CHALLENGE_BYTES * params / challenge_parameters())
              if args.budget == "auto" else int(args.budget))
    out = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__, "pgq": pgq.__version__,
                    "device": str(device)},
        "corpus": {"package": f"{data.PACKAGE} {data.VERSION}", "deb_sha256": data.DEB_SHA256,
                   "train_tokens": int(len(corpus.train_ids)), "val_tokens": int(len(corpus.val_ids)),
                   "val_bytes": corpus.val_bytes, "vocab": corpus.vocab,
                   "evaluated_tokens": max_tokens or int(len(corpus.val_ids))},
        "model": dataclasses.asdict(config) | {"parameters": params},
        "training": dataclasses.asdict(schedule) | {k: v for k, v in info.items()},
        "unigram_val_bpb": round(unigram, 5),
        "float": {"val_bpb": round(float_bpb, 5), "eval_seconds": round(eval_seconds, 2)},
        "results": results,
        "budget": report.budget_view(results, budget),
    }

    minilm_dir = None if args.minilm == "none" else minilm.find(args.minilm, REPO)
    if minilm_dir is not None:
        log(f"MiniLM ({minilm_dir})")
        calibration, held_out = minilm.texts(data.entries(args.cache / "corpus"),
                                             *((32, 64) if args.quick else (256, 512)))
        only = minilm.QUICK if args.quick else None
        out["minilm"] = minilm.run(minilm_dir, calibration, held_out, only=only, log=log,
                                   lqer=[tuple(int(x) for x in spec.split(":")) for spec in args.lqer])
    else:
        log("MiniLM: not found (scripts/fetch-minilm.sh fetches it); skipped")

    out["seconds"] = round(time.perf_counter() - started, 1)
    print()
    print(report.table(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
        log(f"wrote {args.json}")
    if args.plot:
        report.plot(out, args.plot, around_points=args.plot_around_points)
        log(f"wrote {args.plot}")
    bad = [r["method"] for r in results if "val_bpb" in r and not math.isfinite(r["val_bpb"])]
    if bad or not math.isfinite(float_bpb):
        log(f"non-finite val_bpb: {bad or ['float']}")
        return 1
    return 0


def challenge_parameters() -> int:
    """The 36M model's parameters (pgq demo's shape at the challenge's
    vocabulary of 8,192)."""
    from model import SIZES

    return dataclasses.replace(SIZES["gpu"], vocab=8192).parameters()


if __name__ == "__main__":
    sys.exit(main())
