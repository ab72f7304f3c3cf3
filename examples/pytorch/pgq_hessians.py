"""Collect GPTQ Hessians from a PyTorch model and quantize it with pgq.

GPTQ needs, for every linear weight W [out, in], the Hessian of its inputs
H = X^T X / n over n calibration tokens. This module collects them with
forward hooks, writes the float weights and the Hessians as safetensors,
runs `pgq quantize`, and loads the dequantized artifact back into the model.

Two modes:

- one-shot: one calibration pass on the float model, one `pgq quantize`.
- sequential: one calibration pass per group of layers (blocks.0, blocks.1,
  ...), each on the model whose earlier groups are already quantized, so the
  later Hessians see the activations the quantized model really produces.

Import it from a training script (see README.md), or run
`python pgq_hessians.py --demo` for a two-block model with parameter-golf
names. Progress goes to stderr; the demo's JSON summary lines to stdout.
"""

import argparse
import contextlib
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

# The float dtypes `pgq quantize` reads; other float tensors are saved as f32.
PGQ_INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

PGQ_EXIT_MEANINGS = {1: "a check failed", 2: "malformed input", 3: "usage error"}


def _log(message):
    print(f"[pgq] {message}", file=sys.stderr, flush=True)


# --- Hessians -----------------------------------------------------------------


def _canonical_names(model):
    """id(parameter) -> its name in named_parameters().

    A parameter registered twice (a head tied to the embedding) has one entry,
    under its first name; this is the name its weights and Hessian go by.
    """
    return {id(param): name for name, param in model.named_parameters()}


class _HessianSum:
    """Running X^T X and token count of one weight's inputs.

    float64: the sum runs over ~10^5-10^6 tokens, and GPTQ then takes a
    Cholesky factor of its inverse; float32 sums lose the small eigenvalues.
    """

    def __init__(self, in_features):
        self.in_features = in_features
        self.sum = None  # allocated on the device of the first input
        self.tokens = 0

    def add(self, x):
        x = x.detach().reshape(-1, self.in_features).double()
        if self.sum is None:
            self.sum = torch.zeros(
                self.in_features, self.in_features, dtype=torch.float64, device=x.device
            )
        # In place, so torch.autocast leaves it alone: the sum stays float64
        # even when the calibration forward runs under autocast.
        self.sum.addmm_(x.T, x)
        self.tokens += x.shape[0]

    def pre_hook(self, module, args):
        self.add(args[0])

    def output_hook(self, module, args, output):
        self.add(output)


def _hessian_taps(model, tied_inputs):
    """(weight name, module, in_features, reads_output) for every weight whose
    Hessian can be collected: each nn.Linear (reads its input) and each entry
    of tied_inputs (reads the module's output)."""
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


def collect_hessians(model, batches, names=None, tied_inputs=None):
    """Hessians H = X^T X / n of the inputs of the model's linear weights.

    model: an nn.Module; every nn.Linear (subclasses included) is tapped.
    batches: iterable of model inputs, all on the model's device; a tuple or
        list is unpacked (`model(*batch)`), anything else is passed as is.
    names: optional collection of weight names; only those are collected.
    tied_inputs: optional {weight name: module} for weights applied with
        F.linear instead of an nn.Linear, such as a tied embedding used as the
        output head (`F.linear(final_norm(x), tok_emb.weight)`): the module's
        output is that weight's input, e.g. {"tok_emb.weight": model.final_norm}.

    Returns {weight name: float32 [in, in] CPU tensor}. A weight reached by
    several modules (or one module called several times) gets one Hessian
    over all the inputs it saw. Weight names are the module's qualified name +
    ".weight" (for a tied weight: its name in named_parameters()).
    """
    taps = [tap for tap in _hessian_taps(model, tied_inputs) if names is None or tap[0] in names]
    if names is not None:
        unknown = sorted(set(names) - {tap[0] for tap in taps})
        if unknown:
            raise ValueError(f"not the weight of any nn.Linear or tied_inputs entry: {unknown}")
    if not taps:
        return {}

    sums, hooks = {}, []
    was_training = model.training
    model.eval()
    try:
        for name, module, in_features, reads_output in taps:
            acc = sums.setdefault(name, _HessianSum(in_features))
            if reads_output:
                hooks.append(module.register_forward_hook(acc.output_hook))
            else:
                hooks.append(module.register_forward_pre_hook(acc.pre_hook))
        with torch.no_grad():
            for batch in batches:
                if isinstance(batch, (tuple, list)):
                    model(*batch)
                else:
                    model(batch)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)

    unreached = sorted(name for name, acc in sums.items() if acc.tokens == 0)
    if unreached:
        raise ValueError(f"no calibration input reached {unreached}: unused in forward()?")
    return {name: (acc.sum / acc.tokens).float().cpu() for name, acc in sums.items()}


# --- files and the pgq binary -----------------------------------------------------


def save_weights(model, path):
    """Write the model's float state_dict tensors to safetensors, for
    `pgq quantize`. Returns the saved names.

    Non-float buffers (integer position ids, step counters) are skipped and
    stay as they are in the model; a tied parameter is saved once, under its
    named_parameters() name (safetensors refuses tensors that share memory).
    """
    canonical = _canonical_names(model)
    tensors = {}
    for name, value in model.state_dict(keep_vars=True).items():
        owner = canonical.get(id(value), name)
        if owner != name:
            _log(f"save_weights: {name} is the same tensor as {owner}; saved once, as {owner}")
            continue
        if not value.is_floating_point():
            _log(f"save_weights: skipping {name} ({value.dtype}): not a float tensor")
            continue
        tensor = value.detach()
        if tensor.dtype not in PGQ_INPUT_DTYPES:
            tensor = tensor.float()
        tensors[name] = tensor.cpu().contiguous()
    save_file(tensors, str(path))
    return list(tensors)


class PgqError(RuntimeError):
    """pgq could not be run or exited with a non-zero status."""

    def __init__(self, message, returncode=None, stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def run_pgq(args, pgq=None):
    """Run `pgq ARGS...` and return its stdout.

    The binary is `pgq` if given, else $PGQ, else `pgq` on the PATH. A
    non-zero exit raises PgqError carrying the exit status and pgq's stderr
    (which names the tensor, rule or byte offset at fault).
    """
    binary = pgq or os.environ.get("PGQ", "pgq")
    command = [binary, *map(str, args)]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise PgqError(
            f"pgq binary not found: {binary!r}; put pgq on the PATH, set PGQ=/path/to/pgq, "
            "or pass pgq=... (build it with `cargo build --release -p pgq`: target/release/pgq)"
        ) from None
    if done.returncode != 0:
        meaning = PGQ_EXIT_MEANINGS.get(done.returncode, "unexpected exit status")
        raise PgqError(
            f"{shlex.join(command)} exited with {done.returncode} ({meaning}):\n"
            f"{done.stderr.strip()}",
            done.returncode,
            done.stderr,
        )
    return done.stdout


def load_artifact(model, pgq_path, pgq=None):
    """Load the dequantized weights of a .pgq artifact into the model.

    `pgq export` writes them as f32 safetensors; each is cast to the dtype of
    the model tensor it replaces. An artifact may hold a subset of the model
    (from `pgq quantize --only`), hence strict=False; a name that is not a
    key of the model is an error, since strict=False would silently drop it.
    Returns the loaded {name: tensor} (CPU, in the model's dtypes).
    """
    with tempfile.TemporaryDirectory(prefix="pgq-export-") as tmp:
        exported = Path(tmp) / "dequantized.safetensors"
        run_pgq(["export", pgq_path, "-o", exported], pgq)
        weights = load_file(str(exported))
    targets = model.state_dict()
    unknown = sorted(set(weights) - set(targets))
    if unknown:
        raise ValueError(f"{pgq_path} holds tensors that are not keys of the model: {unknown}")
    weights = {name: tensor.to(targets[name].dtype) for name, tensor in weights.items()}
    model.load_state_dict(weights, strict=False)
    return weights


def _quantize(weights_path, out, recipe, hessians_path, pgq, only=None):
    """`pgq quantize ... --json`; returns the parsed report."""
    args = ["quantize", weights_path, "-o", out, "--hessians", hessians_path, "--json"]
    if recipe is not None:
        args += ["--recipe", recipe]
    if only is not None:
        args += ["--only", only]
    return json.loads(run_pgq(args, pgq))


@contextlib.contextmanager
def _workdir(path):
    """The given folder (created, kept afterwards), or a temporary one."""
    if path is not None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="pgq-") as tmp:
            yield Path(tmp)


# --- groups -------------------------------------------------------------------


def glob_matches(glob, name):
    """Whether a pgq glob matches the whole tensor name.

    pgq's globs (globset, as in recipes/README.md): `*` matches any run of
    characters, dots included; `?`, `[0-9]`, `[!0]`; `{a,b}` alternatives.
    fnmatchcase has the same `*`, `?` and classes; alternatives are expanded
    here. quantize_sequential also checks that pgq selected the same tensors.
    """
    brace = re.search(r"\{([^{}]*)\}", glob)
    if brace is None:
        return fnmatch.fnmatchcase(name, glob)
    return any(
        glob_matches(glob[: brace.start()] + alternative + glob[brace.end() :], name)
        for alternative in brace.group(1).split(",")
    )


def group_glob(group):
    """A group given as a name prefix ("blocks.3.") or a glob, as a glob."""
    return group if group.endswith("*") else group + "*"


def default_groups(names):
    """["blocks.0.", "blocks.1.", ...] in block order, from tensor names."""
    pattern = re.compile(r"blocks\.(\d+)\.")
    indices = {int(match.group(1)) for name in names if (match := pattern.match(name))}
    return [f"blocks.{index}." for index in sorted(indices)]


# --- the two modes -----------------------------------------------------------------


def quantize_one_shot(model, batches, recipe, out, *, tied_inputs=None, pgq=None, workdir=None):
    """Quantize with Hessians from one calibration pass on the float model.

    recipe: a recipe TOML path (None: pgq's RTN default). out: the .pgq path.
    workdir: where original.safetensors and hessians.safetensors are written
    (kept); None uses a temporary folder. The model ends up holding the
    dequantized weights. Returns pgq's JSON report.
    """
    with _workdir(workdir) as work:
        weights_path = work / "original.safetensors"
        hessians_path = work / "hessians.safetensors"
        save_weights(model, weights_path)
        started = time.perf_counter()
        hessians = collect_hessians(model, batches, tied_inputs=tied_inputs)
        _log(f"one-shot: {len(hessians)} Hessians in {time.perf_counter() - started:.1f} s")
        save_file(hessians, str(hessians_path))
        started = time.perf_counter()
        report = _quantize(weights_path, out, recipe, hessians_path, pgq)
        _log(
            f"one-shot: pgq quantize {time.perf_counter() - started:.1f} s, "
            f"{report['file_bytes']:,} bytes"
        )
    load_artifact(model, out, pgq)
    return report


def quantize_sequential(
    model, batches, recipe, out, groups=None, *, tied_inputs=None, pgq=None, workdir=None
):
    """Quantize group by group, each group's Hessians collected on the model
    whose earlier groups already hold their dequantized weights.

    groups: ordered name prefixes or globs; default blocks.0., blocks.1., ...
    Tensors in no group (embedding, head, final norm) come last, with the
    Hessians of a last calibration pass on the model whose groups are all
    quantized. batches must be re-iterable (a list): it is read once per
    group, plus once for the rest. Other arguments as in quantize_one_shot.

    Every step quantizes the ORIGINAL float weights (saved once, first) with
    the Hessians collected so far, `--only` its group. pgq quantizes each
    tensor from its own weights and Hessian alone, so the final full run over
    all Hessians reproduces every step's codes in one artifact; this is
    checked on the loaded weights. Returns the final run's JSON report.
    """
    if iter(batches) is batches:
        raise TypeError(
            "batches is an iterator: the first group would use it up; pass a list"
        )
    canonical = _canonical_names(model)
    groups = list(groups) if groups is not None else default_groups(canonical.values())
    tap_names = {tap[0] for tap in _hessian_taps(model, tied_inputs)}
    steps = len(groups) + 1

    with _workdir(workdir) as work:
        weights_path = work / "original.safetensors"
        hessians_path = work / "hessians.safetensors"
        saved = save_weights(model, weights_path)
        hessians, step_weights = {}, {}

        for step, group in enumerate(groups, 1):
            glob = group_glob(group)
            members = {name for name in saved if glob_matches(glob, name)}
            if not members:
                raise ValueError(f"group {group!r} (glob {glob!r}) matches no tensor of the model")
            overlap = sorted(members & step_weights.keys())
            if overlap:
                raise ValueError(f"group {group!r} overlaps earlier groups on {overlap}")

            started = time.perf_counter()
            new = collect_hessians(model, batches, members & tap_names, tied_inputs)
            collect_seconds = time.perf_counter() - started
            hessians.update(new)
            save_file(hessians, str(hessians_path))

            started = time.perf_counter()
            step_out = work / f"step{step:02d}.pgq"
            report = _quantize(weights_path, step_out, recipe, hessians_path, pgq, only=glob)
            loaded = load_artifact(model, step_out, pgq)
            if loaded.keys() != members:
                raise RuntimeError(
                    f"pgq --only {glob!r} selected {sorted(loaded)}, "
                    f"this script expected {sorted(members)}"
                )
            step_weights.update(loaded)
            _log(
                f"sequential step {step}/{steps} {glob}: "
                f"{len(new)} Hessians in {collect_seconds:.1f} s, "
                f"pgq quantize + load {time.perf_counter() - started:.1f} s, "
                f"{len(loaded)} tensors, {report['file_bytes']:,} bytes"
            )

        started = time.perf_counter()
        new = collect_hessians(model, batches, tap_names - hessians.keys(), tied_inputs)
        collect_seconds = time.perf_counter() - started
        hessians.update(new)
        save_file(hessians, str(hessians_path))
        started = time.perf_counter()
        report = _quantize(weights_path, out, recipe, hessians_path, pgq)
        final = load_artifact(model, out, pgq)
        _log(
            f"sequential step {steps}/{steps} (rest, then all tensors): {len(new)} Hessians in "
            f"{collect_seconds:.1f} s, pgq quantize + load {time.perf_counter() - started:.1f} s, "
            f"{len(final)} tensors, {report['file_bytes']:,} bytes"
        )

    differing = sorted(
        name for name, weight in step_weights.items() if not torch.equal(weight, final[name])
    )
    if differing:
        raise RuntimeError(f"the full run did not reproduce the step results of {differing}")
    return report


# --- demo ---------------------------------------------------------------------------


def _rms_norm(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


class RMSNorm(nn.Module):
    """Parameter-free, as in the records; a module so tied_inputs can tap it."""

    def forward(self, x):
        return _rms_norm(x)


class DemoAttention(nn.Module):
    def __init__(self, width, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, width // heads
        self.c_q = nn.Linear(width, width, bias=False)
        self.c_k = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.c_v = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.q_gain = nn.Parameter(torch.full((heads,), 1.5))

    def forward(self, x):
        b, t, _ = x.shape
        q = self.c_q(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.c_v(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = _rms_norm(q) * self.q_gain[None, :, None, None]
        repeat = self.heads // self.kv_heads  # grouped-query attention
        k, v = _rms_norm(k).repeat_interleave(repeat, 1), v.repeat_interleave(repeat, 1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, -1))


class DemoMLP(nn.Module):
    def __init__(self, width, mult):
        super().__init__()
        self.fc = nn.Linear(width, mult * width, bias=False)
        self.proj = nn.Linear(mult * width, width, bias=False)

    def forward(self, x):
        return self.proj(F.relu(self.fc(x)).square())


class DemoBlock(nn.Module):
    def __init__(self, width, heads, kv_heads, mlp_mult):
        super().__init__()
        self.attn_scale = nn.Parameter(torch.ones(width))
        self.mlp_scale = nn.Parameter(torch.ones(width))
        # Row 0 scales the residual stream, row 1 mixes in the embedding x0.
        self.resid_mix = nn.Parameter(torch.stack([torch.ones(width), torch.zeros(width)]))
        self.attn = DemoAttention(width, heads, kv_heads)
        self.mlp = DemoMLP(width, mlp_mult)

    def forward(self, x, x0):
        x = self.resid_mix[0] * x + self.resid_mix[1] * x0
        x = x + self.attn_scale * self.attn(_rms_norm(x))
        return x + self.mlp_scale * self.mlp(_rms_norm(x))


class DemoGPT(nn.Module):
    """A small GPT with parameter-golf names, its head tied to tok_emb."""

    def __init__(self, vocab=1024, width=512, layers=2, heads=8, kv_heads=4, mlp_mult=4):
        super().__init__()
        self.vocab = vocab
        self.tok_emb = nn.Embedding(vocab, width)
        self.blocks = nn.ModuleList(
            DemoBlock(width, heads, kv_heads, mlp_mult) for _ in range(layers)
        )
        self.final_norm = RMSNorm()

    def forward(self, input_ids):
        x = x0 = _rms_norm(self.tok_emb(input_ids))
        for block in self.blocks:
            x = block(x, x0)
        return F.linear(self.final_norm(x), self.tok_emb.weight)


def _demo_summary(mode, report, logits, reference):
    scored = [t for t in report["tensors"] if t.get("hessian_error") is not None]
    worst = max(scored, key=lambda t: t["hessian_error"], default=None)
    return {
        "mode": mode,
        "file_bytes": report["file_bytes"],
        "tensors": len(report["tensors"]),
        "worst_hessian_error": None
        if worst is None
        else {"name": worst["name"], "value": worst["hessian_error"]},
        # Shows the artifact really went back into the model.
        "logits_rel_rmse_vs_float": ((logits - reference).norm() / reference.norm()).item(),
    }


def _demo(args):
    torch.manual_seed(0)
    model = DemoGPT(layers=args.layers).to(args.device)
    # Random tokens stand in for training batches: 8 x (4 x 256) = 8,192 tokens.
    calibration = [torch.randint(0, model.vocab, (4, 256), device=args.device) for _ in range(8)]
    held_out = torch.randint(0, model.vocab, (4, 256), device=args.device)
    float_state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with torch.no_grad():
        reference = model(held_out)
    tied = {"tok_emb.weight": model.final_norm}
    out_dir = Path(args.out_dir)

    for mode, quantize in (("one-shot", quantize_one_shot), ("sequential", quantize_sequential)):
        model.load_state_dict(float_state)  # both modes start from the float model
        report = quantize(
            model, calibration, args.recipe, out_dir / f"{mode}.pgq",
            tied_inputs=tied, pgq=args.pgq, workdir=out_dir / mode,
        )
        with torch.no_grad():
            logits = model(held_out)
        print(json.dumps(_demo_summary(mode, report, logits, reference)), flush=True)


def main():
    parser = argparse.ArgumentParser(
        description="Collect GPTQ Hessians with PyTorch and quantize with pgq. "
        "Import this module from a training script; --demo runs both modes on a small model."
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run both modes on a small model with parameter-golf names",
    )
    parser.add_argument("--layers", type=int, default=2, help="demo blocks (default 2)")
    parser.add_argument(
        "--out-dir", default="pgq-demo-out", help="artifacts and intermediate files"
    )
    parser.add_argument(
        "--recipe",
        default=str(Path(__file__).resolve().parents[2] / "recipes" / "sdclip-gptq.toml"),
        help="recipe TOML (default: the repository's recipes/sdclip-gptq.toml)",
    )
    parser.add_argument("--pgq", help="the pgq binary (default: $PGQ, else pgq on the PATH)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if not args.demo:
        parser.error("nothing to do without --demo: import the functions from your training script")
    _demo(args)


if __name__ == "__main__":
    main()
