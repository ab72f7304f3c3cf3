"""Quantize a PyTorch GPT with pgq, the model in the loop.

The end of a parameter-golf training script, in a few lines: collect GPTQ
Hessians from calibration batches with forward hooks (pgq.torch), quantize
one-shot and sequentially, load each artifact back, and compare the model's
loss with the float model's. Here the model is a small GPT with the records'
names (tied embedding, q/k/v/proj attention, relu-squared MLP), trained for
a few seconds on a token stream so that its loss means something.

    pip install ./python          # from the repository root
    python examples/pytorch/quantize_gpt.py [--steps 300] [--out-dir pgq-example-out]

Prints one JSON line per method (bytes, held-out loss) to stdout.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import pgq
import pgq.torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python" / "tests"))
from models import batches, loss, trained  # noqa: E402  (the test suite's small GPT)

RECIPE = """
[defaults]
method = "gptq"
act_order = true
damp = 0.01
block_size = 128

[[rule]]            # small tensors (gains, scales) as fp16
match = "*"
max_elements = 4096
keep = true

[[rule]]            # the tied embedding, also the output head
match = "tok_emb.weight"
bits = 8
clip = { sdclip = 20.0 }

[[rule]]
match = "blocks.*.weight"
bits = 6
clip = { sdclip = 12.85 }
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--out-dir", default="pgq-example-out", help="where the .pgq files go")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    model, train, held_out = trained(steps=args.steps)
    calibration = [b[:, :-1] for b in batches(train, 16, 64, 8, seed=7)]
    float_state = {k: v.clone() for k, v in model.state_dict().items()}
    print(json.dumps({"method": "float", "loss": round(loss(model, held_out), 4)}), flush=True)

    for mode in ("one-shot", "sequential"):
        model.load_state_dict(float_state)
        started = time.perf_counter()
        artifact = pgq.torch.quantize_model(
            model,
            calibration,
            RECIPE,
            sequential=mode == "sequential",
            # The head is F.linear(final_norm(x), tok_emb.weight): its input
            # is final_norm's output.
            tied_inputs={"tok_emb.weight": model.final_norm},
            progress=False,
        )
        seconds = time.perf_counter() - started
        artifact.save(out / f"{mode}.pgq")
        # The model now holds the artifact's weights; a fresh process would
        # call pgq.torch.load_into(model, "one-shot.pgq").
        print(json.dumps({
            "method": f"gptq {mode}",
            "bytes": len(artifact),
            "loss": round(loss(model, held_out), 4),
            "seconds": round(seconds, 2),
        }), flush=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
