"""pgq with a PyTorch model in the loop.

- :func:`collect_hessians`: GPTQ's Hessians ``H = X^T X / n`` of the inputs
  of every ``nn.Linear`` weight (and of tied weights applied with
  ``F.linear``), from forward hooks over calibration batches, with padding
  masked out, special tokens optionally left out, any token's share capped,
  token counts reported, and a warning when a few tokens dominate.
- :func:`quantize_model`: one-shot GPTQ (one calibration pass on the float
  model) or sequential GPTQ (one pass per layer group, each on the model
  whose earlier groups already hold their quantized weights).
- :func:`load_into`: an artifact's dequantized weights into the model
  (strict, like ``load_state_dict``).
- :func:`weights`: the float tensors of a model as pgq quantizes them (a tied
  parameter once, under its first name; integer buffers left out).

Why the masking matters, measured on MiniLM (docs/PYTHON.md): padding was 53%
of the tokens plain hooks saw, and [CLS]/[SEP] with their massive activations
dominate the trace; GPTQ with those Hessians made the sentence embeddings
worse than plain RTN.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import torch
from torch import nn

import pgq

__all__ = [
    "Hessians",
    "collect_hessians",
    "default_groups",
    "load_into",
    "quantize_model",
    "weights",
]

_log = logging.getLogger("pgq.torch")


def _canonical_names(model: nn.Module) -> dict[int, str]:
    """id(parameter) -> its first name in named_parameters()."""
    return {id(param): name for name, param in model.named_parameters()}


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's float state-dict tensors, detached, without a copy: a
    parameter registered twice (a head tied to the embedding) once, under its
    named_parameters() name; non-float buffers (position ids) left out."""
    canonical = _canonical_names(model)
    out = {}
    for name, value in model.state_dict(keep_vars=True).items():
        if canonical.get(id(value), name) != name or not value.is_floating_point():
            continue
        out[name] = value.detach()
    return out


# --- Hessians ---------------------------------------------------------------------------


class Hessians(dict):
    """{weight name: float32 [in, in] CPU tensor}, with what they saw.

    tokens_seen: token positions the calibration batches held.
    tokens_used: those that entered the Hessians (padding and left-out
        tokens excluded).
    dominant: [(weight, token id, share of the trace, share of the tokens)]
        where one token id held more than `warn_share` of a weight's input
        energy and over 4 times its share of the tokens.
    """

    tokens_seen: int = 0
    tokens_used: int = 0
    dominant: list[tuple[str, int, float, float]]


class _Tap:
    """Running X^T X (float64: GPTQ takes a Cholesky factor of its inverse,
    and float32 sums over 10^5-10^6 tokens lose the small eigenvalues), the
    token count, and the trace per token id."""

    def __init__(self, name: str, in_features: int, collector: "_Collector"):
        self.name, self.in_features, self.collector = name, in_features, collector
        self.sum: torch.Tensor | None = None
        self.tokens = 0
        self.trace_by_id: torch.Tensor | None = None
        self.count_by_id: torch.Tensor | None = None
        self.mismatch = False

    def add(self, x: torch.Tensor) -> None:
        x = x.detach()
        rows, weight, ids = self.collector.select(x, self)
        if rows.shape[0] == 0:
            return
        rows = rows.double()
        if weight is not None:
            rows = rows * weight.double().sqrt()[:, None]
        if self.sum is None:
            self.sum = torch.zeros(
                self.in_features, self.in_features, dtype=torch.float64, device=x.device
            )
        # In place, so autocast leaves it in float64.
        self.sum.addmm_(rows.T, rows)
        self.tokens += rows.shape[0]
        if ids is not None:
            energy = rows.square().sum(1)
            size = int(ids.max()) + 1
            self.trace_by_id = _add_by_id(self.trace_by_id, ids, energy, size)
            self.count_by_id = _add_by_id(self.count_by_id, ids, torch.ones_like(energy), size)

    def pre_hook(self, module, args):
        self.add(args[0])

    def output_hook(self, module, args, output):
        self.add(output)


def _add_by_id(acc, ids, values, size):
    """acc[ids] += values, growing acc to `size` ids."""
    if acc is None or acc.shape[0] < size:
        grown = torch.zeros(size, dtype=torch.float64, device=values.device)
        if acc is not None:
            grown[: acc.shape[0]] = acc
        acc = grown
    return acc.index_add_(0, ids, values)


class _Collector:
    """The mask, ids and row weights of the batch being run."""

    def __init__(self, exclude_token_ids, max_token_share):
        self.exclude = (
            torch.as_tensor(list(exclude_token_ids), dtype=torch.long)
            if exclude_token_ids
            else None
        )
        self.max_token_share = max_token_share
        self.mask: torch.Tensor | None = None  # [B, T] bool
        self.ids: torch.Tensor | None = None  # [B, T] long
        self.weight: torch.Tensor | None = None  # [B, T] float
        self.seen = 0
        self.used = 0

    def begin(self, batch) -> None:
        ids, mask = _ids_and_mask(batch)
        self.ids, self.mask, self.weight = ids, mask, None
        if ids is None:
            return
        if mask is None:
            mask = torch.ones_like(ids, dtype=torch.bool)
        if self.exclude is not None:
            mask = mask & ~torch.isin(ids, self.exclude.to(ids.device))
        self.mask = mask
        self.seen += ids.numel()
        used = int(mask.sum())
        self.used += used
        if self.max_token_share is not None and used > 0:
            counts = torch.bincount(ids[mask], minlength=int(ids.max()) + 1).double()
            allowed = self.max_token_share * used
            per_id = torch.where(counts > allowed, allowed / counts.clamp(min=1), 1.0)
            self.weight = per_id[ids]

    def select(self, x: torch.Tensor, tap: _Tap):
        """The rows of x [..., in] that enter the Hessian, their weights, and
        their token ids."""
        flat = x.reshape(-1, tap.in_features)
        if self.mask is None:
            return flat, None, None
        if tuple(x.shape[:-1]) != tuple(self.mask.shape):
            if not tap.mismatch:
                tap.mismatch = True
                _log.warning(
                    "%s: inputs of shape %s do not line up with the batch's tokens %s; "
                    "all their rows are used (no mask)",
                    tap.name,
                    tuple(x.shape),
                    tuple(self.mask.shape),
                )
            return flat, None, None
        mask = self.mask.to(x.device).reshape(-1)
        weight = None if self.weight is None else self.weight.to(x.device).reshape(-1)[mask]
        return flat[mask], weight, self.ids.to(x.device).reshape(-1)[mask]


def _ids_and_mask(batch):
    """(input ids, attention mask) of a batch: a mapping with `input_ids`
    (and `attention_mask`), a tuple whose first item is an integer tensor, or
    an integer tensor of ids; (None, None) when the batch holds no ids."""
    ids = mask = None
    if isinstance(batch, Mapping):
        ids, mask = batch.get("input_ids"), batch.get("attention_mask")
    elif isinstance(batch, (tuple, list)) and batch:
        ids = batch[0]
    else:
        ids = batch
    if not (isinstance(ids, torch.Tensor) and not ids.is_floating_point()):
        return None, None
    if mask is not None:
        mask = mask.to(ids.device).bool()
    return ids.long(), mask


def _run(model, batch, forward):
    if forward is not None:
        return forward(model, batch)
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _taps(model, tied_inputs):
    canonical = _canonical_names(model)
    taps = [
        (canonical[id(module.weight)], module, module.in_features, False)
        for module in model.modules()
        if isinstance(module, nn.Linear)
    ]
    params = dict(model.named_parameters())
    for name, module in (tied_inputs or {}).items():
        if name not in params:
            raise ValueError(f"tied_inputs: {name!r} is not a parameter of the model")
        taps.append((name, module, params[name].shape[-1], True))
    return taps


def collect_hessians(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    names: Collection[str] | None = None,
    tied_inputs: Mapping[str, nn.Module] | None = None,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    exclude_token_ids: Collection[int] = (),
    max_token_share: float | None = None,
    warn_share: float = 0.1,
) -> Hessians:
    """GPTQ Hessians ``X^T X / n`` of the inputs of the model's linear weights.

    batches: model inputs. A mapping is called as ``model(**batch)`` (its
        ``input_ids`` and ``attention_mask`` define the tokens: padding is
        left out); a tuple as ``model(*batch)`` (an integer first item is
        the ids); an integer tensor as ``model(ids)``. ``forward(model,
        batch)`` replaces the call.
    names: only these weights (default: every nn.Linear and tied input).
    tied_inputs: {weight name: module} for weights applied with F.linear,
        such as an output head tied to the embedding: the module's output is
        that weight's input, e.g. ``{"tok_emb.weight": model.final_norm}``.
    exclude_token_ids: token ids left out of every Hessian (e.g. the
        tokenizer's [CLS] and [SEP], whose massive activations dominate).
    max_token_share: cap on the share of tokens any one id may carry in a
        batch; rows of more frequent ids are down-weighted to it.
    warn_share: warn when one token id holds more than this share of a
        weight's input energy (the trace of its Hessian) and over 4 times its
        share of the tokens: MiniLM's [CLS], 3% of the tokens, holds 25% of
        the MLP down-projections' energy, and GPTQ with such Hessians made
        the embeddings worse than RTN (docs/PYTHON.md).

    Inputs whose leading shape is not the batch's [B, T] (a module that sees
    reshaped tokens) are used whole, with a warning. Returns
    :class:`Hessians` (float32 CPU tensors) with token counts.
    """
    taps = [t for t in _taps(model, tied_inputs) if names is None or t[0] in names]
    if names is not None:
        unknown = sorted(set(names) - {t[0] for t in taps})
        if unknown:
            raise ValueError(f"not the weight of any nn.Linear or tied_inputs entry: {unknown}")
    collector = _Collector(exclude_token_ids, max_token_share)
    sums: dict[str, _Tap] = {}
    hooks = []
    was_training = model.training
    model.eval()
    batches_run = 0
    try:
        for name, module, in_features, reads_output in taps:
            tap = sums.setdefault(name, _Tap(name, in_features, collector))
            hook = tap.output_hook if reads_output else tap.pre_hook
            register = module.register_forward_hook if reads_output else module.register_forward_pre_hook
            hooks.append(register(hook))
        with torch.no_grad():
            for batch in batches:
                collector.begin(batch)
                _run(model, batch, forward)
                batches_run += 1
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if taps and batches_run == 0:
        raise ValueError("no calibration batches")
    unreached = sorted(name for name, tap in sums.items() if tap.tokens == 0)
    if unreached:
        raise ValueError(f"no calibration input reached {unreached}: unused in forward()?")

    out = Hessians()
    out.tokens_seen, out.tokens_used, out.dominant = collector.seen, collector.used, []
    for name, tap in sums.items():
        out[name] = (tap.sum / tap.tokens).float().cpu()
        if tap.trace_by_id is not None:
            total = float(tap.trace_by_id.sum())
            if total > 0:
                shares = tap.trace_by_id / total
                frequency = tap.count_by_id / tap.count_by_id.sum()
                share, token = torch.max(torch.where(shares > 4 * frequency, shares, 0.0), 0)
                if float(share) > warn_share:
                    out.dominant.append((name, int(token), float(share), float(frequency[token])))
    if collector.seen:
        _log.info(
            "Hessians of %d weights from %d batches: %d of %d token positions used",
            len(out),
            batches_run,
            collector.used,
            collector.seen,
        )
    if out.dominant:
        worst = max(out.dominant, key=lambda d: d[2])
        _log.warning(
            "one token id dominates the Hessians of %d weight(s) (worst: token %d, %.1f%% of the "
            "tokens, holds %.0f%% of %s's input energy); GPTQ may then do worse than RTN: "
            "consider exclude_token_ids or max_token_share",
            len(out.dominant),
            worst[1],
            100 * worst[3],
            100 * worst[2],
            worst[0],
        )
    return out


# --- artifacts into the model -----------------------------------------------------------


def load_into(model: nn.Module, artifact, *, strict: bool = True) -> dict[str, torch.Tensor]:
    """Copies an artifact's dequantized weights into the model, in place
    (ties stay tied), each cast to the dtype of the tensor it replaces.

    strict: every float weight of the model (as :func:`weights` lists them)
    must be in the artifact. Either way, a tensor of the artifact that is
    not a weight of the model, or of another shape, is an error. Returns
    the loaded {name: tensor}.
    """
    loaded = pgq.load(artifact)
    targets = weights(model)
    unknown = sorted(set(loaded) - set(targets))
    if unknown:
        raise ValueError(f"the artifact holds tensors that are not weights of the model: {unknown}")
    if strict:
        missing = sorted(set(targets) - set(loaded))
        if missing:
            raise ValueError(f"the artifact lacks weights of the model: {missing}")
    out = {}
    with torch.no_grad():
        for name, values in loaded.items():
            target = targets[name]
            if tuple(target.shape) != values.shape:
                raise ValueError(
                    f"{name}: the artifact's shape {values.shape} is not the model's "
                    f"{tuple(target.shape)}"
                )
            tensor = torch.from_numpy(values.copy()).to(dtype=target.dtype, device=target.device)
            target.copy_(tensor)
            out[name] = tensor
    return out


# --- quantize with the model in the loop ------------------------------------------------


def default_groups(names: Iterable[str]) -> list[str]:
    """Layer groups in order, as globs: each name's prefix up to its first
    number ("blocks.3.*", "encoder.layer.11.*"), by that number."""
    found = {}
    for name in names:
        match = re.match(r"^(.*?\.)(\d+)\.", name)
        if match:
            found[(match.group(1), int(match.group(2)))] = f"{match.group(1)}{match.group(2)}.*"
    return [found[key] for key in sorted(found)]


def _glob_matches(glob: str, name: str) -> bool:
    """pgq's globs: `*` any run (dots included), `?`, classes, `{a,b}`."""
    import fnmatch

    brace = re.search(r"\{([^{}]*)\}", glob)
    if brace is None:
        return fnmatch.fnmatchcase(name, glob)
    return any(
        _glob_matches(glob[: brace.start()] + alt + glob[brace.end() :], name)
        for alt in brace.group(1).split(",")
    )


def quantize_model(
    model: nn.Module,
    calibration_batches: Iterable[Any],
    recipe: Any = None,
    *,
    sequential: bool = False,
    groups: Iterable[str] | None = None,
    tied_inputs: Mapping[str, nn.Module] | None = None,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    exclude_token_ids: Collection[int] = (),
    max_token_share: float | None = None,
    load: bool = True,
    **options: Any,
) -> pgq.Artifact:
    """Quantizes the model's weights with Hessians from its own forward pass.

    One-shot (default): one calibration pass on the float model, then one
    :func:`pgq.quantize`. Sequential: per layer group (``groups``, default
    :func:`default_groups`), the Hessians are collected on the model whose
    earlier groups already hold their dequantized weights, and that group is
    quantized (``only``); tensors in no group come last. Each step quantizes
    the original float weights, and a tensor's codes depend only on its
    weights and Hessian, so a final run over all Hessians reproduces every
    step in one artifact (checked).

    recipe: as in :func:`pgq.quantize` (None: RTN, which needs no Hessians).
    calibration_batches: as in :func:`collect_hessians`; a list for
        sequential (it is read once per group).
    load: leave the dequantized weights in the model (default); else the
        model is restored to its float weights.
    options: passed to :func:`pgq.quantize` (device, codec, level, threads,
        progress).
    Returns the final artifact.
    """
    collect = dict(
        tied_inputs=tied_inputs,
        forward=forward,
        exclude_token_ids=exclude_token_ids,
        max_token_share=max_token_share,
    )
    if not sequential:
        started = time.perf_counter()
        hessians = collect_hessians(model, calibration_batches, **collect)
        _log.info("one-shot: %d Hessians in %.1f s", len(hessians), time.perf_counter() - started)
        artifact = pgq.quantize(weights(model), recipe=recipe, hessians=hessians, **options)
        if load:
            load_into(model, artifact)
        return artifact

    if iter(calibration_batches) is calibration_batches:
        raise TypeError("sequential: calibration_batches is an iterator; pass a list")
    original = {name: t.clone() for name, t in weights(model).items()}
    names = list(original)
    tap_names = {t[0] for t in _taps(model, tied_inputs)}
    groups = list(groups) if groups is not None else default_groups(names)
    hessians: dict[str, torch.Tensor] = {}
    steps: dict[str, torch.Tensor] = {}
    step_options = dict(options, progress=False)
    try:
        for index, glob in enumerate(groups, 1):
            members = {n for n in names if _glob_matches(glob, n)}
            if not members:
                raise ValueError(f"group {glob!r} matches no weight of the model")
            if members & steps.keys():
                raise ValueError(f"group {glob!r} overlaps earlier groups on {sorted(members & steps.keys())}")
            started = time.perf_counter()
            new = collect_hessians(model, calibration_batches, names=members & tap_names, **collect)
            hessians.update(new)
            step = pgq.quantize(original, recipe=recipe, hessians=hessians, only=glob, **step_options)
            steps.update(load_into(model, step, strict=False))
            _log.info(
                "sequential %d/%d %s: %d Hessians, %d tensors, %.1f s",
                index,
                len(groups) + 1,
                glob,
                len(new),
                len(members),
                time.perf_counter() - started,
            )
        rest = tap_names - hessians.keys()
        if rest:
            hessians.update(collect_hessians(model, calibration_batches, names=rest, **collect))
        artifact = pgq.quantize(original, recipe=recipe, hessians=hessians, **options)
        final = load_into(model, artifact)
    except BaseException:
        _restore(model, original)
        raise
    differing = sorted(n for n, w in steps.items() if not torch.equal(w, final[n]))
    if differing:
        raise RuntimeError(f"the full run did not reproduce the steps of {differing}")
    if not load:
        _restore(model, original)
    return artifact


def _restore(model: nn.Module, original: Mapping[str, torch.Tensor]) -> None:
    targets = weights(model)
    with torch.no_grad():
        for name, value in original.items():
            targets[name].copy_(value)
