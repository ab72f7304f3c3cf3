"""Training with the records' optimizers, the checkpoint cache, and val_bpb.

Optimizers as in the baseline record: Muon (momentum 0.95, warmed up from
0.85, 5 Newton-Schulz steps) for the blocks' matrices, Adam (betas 0.9,
0.95) for the tied embedding and for the control tensors; a linear warmdown
over the last 30% of the steps. Batches are random windows of the training
tokens drawn from a generator seeded by `seed`; with the thread count fixed,
a run is bit-for-bit repeatable on one machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from data import Corpus
from model import GPT, Config, Muon


@dataclasses.dataclass(frozen=True)
class Schedule:
    steps: int
    batch: int  # sequences per step
    seed: int = 1337
    matrix_lr: float = 0.04
    embed_lr: float = 0.05
    scalar_lr: float = 0.04
    warmdown: float = 0.3
    momentum_warmup: int = 100


def token_bytes(corpus: Corpus) -> np.ndarray:
    """UTF-8 bytes of each token: with a byte-level BPE every character of a
    token's string stands for one byte."""
    return np.array(
        [len(corpus.tokenizer.id_to_token(i)) for i in range(corpus.vocab)], dtype=np.int64
    )


@torch.no_grad()
def val_bpb(model: GPT, corpus: Corpus, max_tokens: int | None = None, batch: int = 32) -> float:
    """Bits per byte of the validation text, as the challenge scores it: the
    validation tokens cut into windows of seq_len + 1 that overlap by one
    token, every token after the first predicted from the ones before it in
    its window; summed cross-entropy in bits over the UTF-8 bytes of the
    predicted tokens."""
    model.eval()
    ids = torch.from_numpy(corpus.val_ids.astype(np.int64))
    if max_tokens is not None:
        ids = ids[: max_tokens + 1]
    t = model.config.seq_len
    starts = list(range(0, len(ids) - 1, t))
    nats = 0.0
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        length = min(t, len(ids) - 1 - chunk[-1])
        full = [s for s in chunk if s + t + 1 <= len(ids)]
        if full:
            x = torch.stack([ids[s : s + t] for s in full])
            y = torch.stack([ids[s + 1 : s + t + 1] for s in full])
            nats += _nats(model, x, y)
        if len(full) < len(chunk):  # the last, shorter window
            s = chunk[-1]
            nats += _nats(model, ids[s : s + length][None], ids[s + 1 : s + length + 1][None])
    nbytes = int(token_bytes(corpus)[ids[1:].numpy()].sum())
    return nats / math.log(2) / nbytes


def _nats(model: GPT, x: torch.Tensor, y: torch.Tensor) -> float:
    device = next(model.parameters()).device
    logits = model(x.to(device))
    y = y.to(device)
    return float(
        torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
        )
    )


def batches(corpus: Corpus, config: Config, batch: int, count: int, seed: int):
    """`count` batches of `batch` random training windows: (inputs, targets)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.from_numpy(corpus.train_ids.astype(np.int64))
    t = config.seq_len
    for _ in range(count):
        starts = torch.randint(0, len(ids) - t - 1, (batch,), generator=gen)
        x = torch.stack([ids[s : s + t] for s in starts.tolist()])
        y = torch.stack([ids[s + 1 : s + t + 1] for s in starts.tolist()])
        yield x, y


def cache_key(corpus: Corpus, config: Config, schedule: Schedule, device: torch.device) -> str:
    here = Path(__file__).parent
    code = b"".join((here / f).read_bytes() for f in ("model.py", "train.py"))
    blob = json.dumps(
        [dataclasses.asdict(config), dataclasses.asdict(schedule), corpus.digest,
         hashlib.sha256(code).hexdigest(), torch.__version__, torch.get_num_threads(), str(device)],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_or_load(corpus: Corpus, config: Config, schedule: Schedule, cache: Path, log,
                  device: torch.device | None = None) -> tuple[GPT, dict]:
    """The trained model, from `cache/<key>/` when an identical run (config,
    schedule, corpus, code, torch version, threads) is there."""
    device = device or torch.device("cpu")
    key = cache_key(corpus, config, schedule, device)
    folder = cache / key
    torch.manual_seed(schedule.seed)
    model = GPT(config).to(device)
    if (folder / "model.pt").exists():
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True, map_location=device))
        info = json.loads((folder / "train.json").read_text())
        log(f"trained model from the cache: {folder} ({info['seconds']:.0f} s when trained)")
        return model, info | {"cached": True, "key": key}

    matrices = [p for n, p in model.blocks.named_parameters() if p.ndim == 2]
    scalars = [p for n, p in model.blocks.named_parameters() if p.ndim < 2] + [model.skip_weights]
    adam = torch.optim.Adam(
        [dict(params=[model.tok_emb.weight], lr=schedule.embed_lr),
         dict(params=scalars, lr=schedule.scalar_lr)],
        betas=(0.9, 0.95), eps=1e-8,
    )
    muon = Muon(matrices, lr=schedule.matrix_lr, momentum=0.95)
    for opt in (adam, muon):
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    warmdown_from = int(schedule.steps * (1 - schedule.warmdown))
    started = time.perf_counter()
    losses = []
    model.train()
    for step, (x, y) in enumerate(batches(corpus, config, schedule.batch, schedule.steps, schedule.seed)):
        scale = 1.0 if step < warmdown_from else (schedule.steps - step) / max(schedule.steps - warmdown_from, 1)
        for opt in (adam, muon):
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale
        frac = min(step / max(schedule.momentum_warmup, 1), 1.0)
        for group in muon.param_groups:
            group["momentum"] = 0.85 + 0.10 * frac
        loss = model(x.to(device), y.to(device))
        loss.backward()
        adam.step()
        muon.step()
        model.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if step % 25 == 0 or step == schedule.steps - 1:
            elapsed = time.perf_counter() - started
            eta = elapsed / (step + 1) * (schedule.steps - step - 1)
            log(f"step {step + 1:>5}/{schedule.steps}  train loss {np.mean(losses[-25:]):.4f}  "
                f"{elapsed:6.0f} s  (about {eta:.0f} s left)")
    seconds = time.perf_counter() - started
    info = {"seconds": seconds, "final_train_loss": float(np.mean(losses[-25:])),
            "tokens": schedule.steps * schedule.batch * config.seq_len}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "train.json").write_text(json.dumps(info, indent=1))
    return model, info | {"cached": False, "key": key}
