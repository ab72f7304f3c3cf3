"""pgq: quantize models into .pgq artifacts for parameter golf.

The same Rust libraries as the `pgq` command line, called in-process:
`pgq.quantize(model.state_dict(), ...)` writes, byte for byte, the file
`pgq quantize model.safetensors` writes for the same tensors and recipe.

    import pgq
    artifact = pgq.quantize(model.state_dict(), recipe="recipes/default.toml",
                            hessians=hessians)
    artifact.save("model.pgq")            # or bytes(artifact)
    print(artifact.report["file_bytes"])  # the `pgq quantize --json` report
    weights = pgq.load("model.pgq")       # {name: float32 numpy array}

`pgq.torch` collects Hessians with forward hooks and runs one-shot or
sequential GPTQ with the model in the loop. docs/PYTHON.md has the whole API.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _pgq
from ._pgq import FormatError, PgqError, QuantizeError, UsageError

__all__ = [
    "Artifact",
    "CAP_BYTES",
    "Codes",
    "Factor",
    "codes",
    "FormatError",
    "PgqError",
    "QuantizeError",
    "UsageError",
    "inspect",
    "load",
    "quantize",
    "tensor_digest",
    "verify",
]

__version__: str = _pgq.__version__

#: The parameter-golf cap: code bytes + compressed model bytes.
CAP_BYTES: int = _pgq.CAP_BYTES

_log = logging.getLogger("pgq")

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[bytes, bytearray, memoryview, PathLike]


# --- tensors across the boundary -----------------------------------------------------


def _torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _wire(name: str, value: Any, drop_non_float: bool) -> tuple | None:
    """(name, dtype, shape, buffer) for the native module, without a copy
    where the layout allows: a C-contiguous CPU f32, f16 or bf16 tensor or
    array is passed as is. Other float dtypes (f64) become f32; a tensor on
    a GPU comes to the CPU. Non-float values raise unless `drop_non_float`
    (then None)."""
    if _torch_tensor(value):
        import torch

        tensor = value.detach()
        if not tensor.is_floating_point():
            if drop_non_float:
                return None
            raise TypeError(
                f"tensor {name!r} has dtype {tensor.dtype}; pgq stores float weights only "
                "(pass drop_non_float=True to leave such buffers out)"
            )
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        tensor = tensor.contiguous()
        if tensor.dtype == torch.bfloat16:
            array, dtype = tensor.view(torch.int16).numpy(), "bf16"
        elif tensor.dtype == torch.float16:
            array, dtype = tensor.numpy(), "f16"
        else:
            array, dtype = tensor.float().numpy(), "f32"
        shape = tuple(tensor.shape)
    else:
        array = np.asarray(value)
        kind = array.dtype
        if kind.name == "bfloat16":  # ml_dtypes
            array, dtype = np.ascontiguousarray(array).view(np.uint16), "bf16"
        elif kind.kind != "f":
            if drop_non_float:
                return None
            raise TypeError(
                f"tensor {name!r} has dtype {kind}; pgq stores float weights only "
                "(pass drop_non_float=True to leave such buffers out)"
            )
        elif kind == np.float16:
            dtype = "f16"
        else:
            array, dtype = array.astype(np.float32, copy=False), "f32"
        shape = array.shape
        if array.dtype.byteorder == ">":
            array = array.byteswap().view(array.dtype.newbyteorder("<"))
        array = np.ascontiguousarray(array)
    flat = array.reshape(-1)
    return (str(name), dtype, [int(d) for d in shape], memoryview(flat).cast("B"))


def _wires(tensors: Mapping[str, Any], drop_non_float: bool = False) -> list:
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"expected a mapping of names to tensors or arrays (a state dict), got "
            f"{type(tensors).__name__}"
        )
    out, dropped = [], []
    for name, value in tensors.items():
        wire = _wire(name, value, drop_non_float)
        if wire is None:
            dropped.append(name)
        else:
            out.append(wire)
    if dropped:
        _log.info("left out %d non-float tensor(s): %s", len(dropped), ", ".join(dropped))
    return out


def _read(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source) if not isinstance(source, bytes) else source
    if isinstance(source, Artifact):
        return source.bytes
    return Path(source).read_bytes()


# --- quantize -----------------------------------------------------------------------------


class Artifact:
    """A `.pgq` file made by :func:`quantize`.

    ``bytes(artifact)`` is the file; ``artifact.save(path)`` writes it;
    ``artifact.report`` is the report of ``pgq quantize --json`` (file and
    cap bytes, headroom, backend, per-tensor method, bytes and error against
    the source, beside plain RTN and, with Hessians, the output-space proxy).
    """

    __slots__ = ("bytes", "report", "warnings")

    def __init__(self, data: bytes, report: dict, warnings: list[str]):
        self.bytes = data
        self.report = report
        self.warnings = warnings

    def __bytes__(self) -> bytes:
        return self.bytes

    def __len__(self) -> int:
        return len(self.bytes)

    def __repr__(self) -> str:
        return (
            f"<pgq.Artifact {len(self.bytes):,} bytes, {len(self.report['tensors'])} tensors, "
            f"headroom {self.report['headroom_bytes']:,}>"
        )

    def save(self, path: PathLike) -> None:
        """Writes the file (through a temporary file in the same folder, then
        a rename, so a reader never sees half of it)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.pgq-tmp-{os.getpid()}")
        try:
            tmp.write_bytes(self.bytes)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load(self) -> dict[str, np.ndarray]:
        """The dequantized weights (see :func:`load`)."""
        return load(self.bytes)

    @property
    def metadata(self) -> dict[str, Any]:
        """The artifact's metadata (provenance, decode digest)."""
        return inspect(self.bytes)["metadata"]


def _recipe_args(recipe: Any) -> dict:
    """A recipe given as a path (PathLike, or a str naming a .toml file) or
    as TOML text (a str with a newline or an `=`)."""
    if recipe is None:
        return {}
    if isinstance(recipe, os.PathLike):
        return {"recipe_path": os.fspath(recipe)}
    if isinstance(recipe, str):
        if "\n" in recipe or "=" in recipe:
            return {"recipe": recipe}
        return {"recipe_path": recipe}
    raise TypeError(f"recipe: a path or TOML text, got {type(recipe).__name__}")


def quantize(
    tensors: Mapping[str, Any],
    *,
    recipe: Any = None,
    hessians: Mapping[str, Any] | None = None,
    device: str = "auto",
    progress: bool = True,
    only: Iterable[str] | str | None = None,
    codec: str = "auto",
    level: int | None = None,
    threads: int = 0,
    drop_non_float: bool = False,
    budget: int | None = None,
    allocation: str = "uniform",
) -> Artifact:
    """Quantizes a mapping of names to tensors into a `.pgq` artifact.

    tensors: a state dict, or any mapping of names to torch tensors or numpy
        arrays (f32, f16, bf16 as they are; other floats as f32). The order
        of the mapping is the order in the artifact. Weights are read in
        place where the layout allows; the one copy made is their f32 form.
    recipe: a recipe file (path) or TOML text; None is the field's default
        policy with plain RTN (``pgq quantize`` without ``--recipe``).
    hessians: {weight name: [in, in] matrix X^T X / n}, needed by GPTQ and
        Hessian-weighted clip searches (``pgq.torch.collect_hessians``).
    device: "auto" (CUDA when usable, else the CPU), "cpu" or "cuda".
    progress: a progress bar on stderr (when it is a terminal).
    only: glob(s) of the tensors to quantize (a sequential step); the
        artifact holds only those.
    codec, level: "auto" (the default: per section the smallest of rANS,
        brotli at ``level``, default 11, and zstd-19), "rans" (no level),
        "brotli" (quality 0..11, default 11), "zstd" (1..22, default 19) or
        "raw".
    threads: worker threads, 0 = one per core.
    drop_non_float: leave out integer buffers instead of raising.
    budget: fit the artifact to at most this many bytes (and at least 2,000
        fewer) by choosing each SDClip tensor's k (``pgq quantize --budget``;
        for a submission, 16_000_000 minus the code's bytes). The search's
        report is ``artifact.report["budget"]``. A budget under the smallest
        artifact the recipe allows raises QuantizeError, saying how small.
    allocation: with ``budget``: "uniform" scales every SDClip k by one
        factor (the recipe's ratios kept); "per-tensor" gives each tensor the
        k of least total error (``pgq quantize --allocate``).

    Raises QuantizeError (the inputs cannot be quantized), UsageError (the
    arguments do not fit together), TypeError/ValueError (a value that is not
    a tensor of a float dtype, a buffer of the wrong size).
    """
    if isinstance(only, str):
        only = [only]
    data, report, warnings, note = _pgq.quantize(
        _wires(tensors, drop_non_float),
        hessians=None if hessians is None else _wires(hessians),
        device=device,
        threads=threads,
        codec=codec,
        level=level,
        only=list(only or []),
        progress=progress,
        budget=budget,
        allocation=allocation,
        **_recipe_args(recipe),
    )
    if note:
        _log.info("%s", note)
    for warning in warnings:
        _log.warning("%s", warning)
    return Artifact(data, json.loads(report), warnings)


# --- read ----------------------------------------------------------------------------------


def load(source: Source | Artifact) -> dict[str, np.ndarray]:
    """The dequantized weights of a `.pgq` file (a path, bytes, or an
    Artifact) as {name: float32 numpy array}, in file order: bit for bit what
    ``pgq export`` writes. Raises FormatError for anything that is not a
    valid `.pgq` file."""
    return {
        name: np.frombuffer(values, dtype="<f4").reshape(shape)
        for name, shape, values in _pgq.load(_read(source))
    }


class Factor:
    """One factor of a low-rank correction as stored: ``codes`` (int8, the
    factor's shape), ``scales`` (float16, one per ``group`` consecutive
    codes in row-major order), ``bits`` and ``range`` (``"full"``:
    ``-2^(bits-1) .. 2^(bits-1)-1``; ``"symmetric"``: without the lowest)."""

    __slots__ = ("bits", "codes", "group", "range", "scales")

    def __init__(self, bits: int, range: str, group: int, codes: np.ndarray, scales: np.ndarray):
        self.bits, self.range, self.group, self.codes, self.scales = bits, range, group, codes, scales

    def dequantize(self) -> np.ndarray:
        """``codes * scales`` (exact in float32), the factor's shape."""
        flat = self.codes.reshape(-1, self.group).astype(np.float32)
        return (flat * self.scales.astype(np.float32)[:, None]).reshape(self.codes.shape)

    def __repr__(self) -> str:
        return f"<pgq.Factor int{self.bits} {self.range} {list(self.codes.shape)}, groups of {self.group}>"


class Codes:
    """A quantized tensor as stored: ``codes`` (int8, the tensor's shape),
    ``scales`` (float16, ``(rows, groups)``), ``bits`` and ``group_size``
    (0: one scale per row), and ``correction``: None, or a low-rank
    correction (format 1.2) as ``(A, B)`` :class:`Factor` s of shapes
    ``(rows, rank)`` and ``(rank, cols)``. ``codes * scales`` broadcast over
    each group, plus ``A @ B`` summed as spec/FORMAT.md §6.8 says, is the
    tensor :func:`load` returns."""

    __slots__ = ("bits", "codes", "correction", "group_size", "scales")

    def __init__(self, bits: int, group_size: int, codes: np.ndarray, scales: np.ndarray,
                 correction: tuple[Factor, Factor] | None = None):
        self.bits = bits
        self.group_size = group_size
        self.codes = codes
        self.scales = scales
        self.correction = correction

    def __repr__(self) -> str:
        rank = f", rank-{self.correction[0].codes.shape[1]} correction" if self.correction else ""
        return (
            f"<pgq.Codes int{self.bits} {list(self.codes.shape)}, scales {list(self.scales.shape)}"
            f"{f', groups of {self.group_size}' if self.group_size else ''}{rank}>"
        )


def codes(source: Source | Artifact) -> dict[str, Codes]:
    """The codes and scales of each quantized tensor of a `.pgq` file (kept
    tensors are left out), in file order, with their low-rank corrections:
    what another serializer of the same codes needs (bench/golf writes the
    records' torch.save form with them)."""
    out = {}
    for name, shape, bits, group_size, code_bytes, scale_bytes, lowrank in _pgq.codes(_read(source)):
        values = np.frombuffer(code_bytes, dtype=np.int8).reshape(shape)
        rows = values.size // shape[-1] if shape else 1
        scales = np.frombuffer(scale_bytes, dtype="<f2").reshape(rows, -1)
        correction = None
        if lowrank is not None:
            rank, a, b = lowrank

            def factor(f, factor_shape):
                bits_f, range_f, group, c, sc = f
                return Factor(bits_f, range_f, group, np.frombuffer(c, dtype=np.int8).reshape(factor_shape),
                              np.frombuffer(sc, dtype="<f2"))

            correction = (factor(a, (rows, rank)), factor(b, (rank, shape[-1])))
        out[name] = Codes(bits, group_size, values, scales, correction)
    return out


def inspect(source: Source | Artifact) -> dict[str, Any]:
    """Where the bytes of a `.pgq` file go: ``pgq inspect --json`` without
    ``file`` (file_bytes, tensors, sections, layers, metadata)."""
    return json.loads(_pgq.inspect(_read(source)))


def verify(
    source: Source | Artifact,
    *,
    reference: Mapping[str, Any] | None = None,
    hessians: Mapping[str, Any] | None = None,
    cap: int = CAP_BYTES,
    code: Iterable[PathLike] = (),
) -> dict[str, Any]:
    """The report of ``pgq verify --json``: structure, the cap with the
    sizes of the `code` files, the decode digest, and with `reference` (the
    float tensors) each tensor's fidelity; ``report["status"]`` is "pass",
    "warn" or "fail"."""
    subject = "<bytes>" if isinstance(source, (bytes, bytearray, memoryview, Artifact)) else str(source)
    code_files = [(str(p), Path(p).stat().st_size) for p in code]
    return json.loads(
        _pgq.verify(
            _read(source),
            subject,
            reference=None if reference is None else _wires(reference, drop_non_float=True),
            hessians=None if hessians is None else _wires(hessians),
            cap=cap,
            code_files=code_files,
        )
    )


def tensor_digest(tensors: Mapping[str, Any]) -> str:
    """The content digest ``pgq.source.sha256`` records for these tensors
    (spec/FORMAT.md §4.3): independent of their order and of how they were
    saved."""
    return _pgq.tensor_digest(_wires(tensors))
