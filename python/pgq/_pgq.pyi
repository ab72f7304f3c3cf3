"""Type stubs of pgq's native module. Use the `pgq` package's functions,
which accept torch tensors and numpy arrays and parse the JSON."""

from typing import Any

__version__: str
CAP_BYTES: int

class PgqError(Exception):
    """Base class of every error pgq raises."""

class FormatError(PgqError):
    """Bytes that are not a valid .pgq file."""

    error_class: str
    """The class of spec/FORMAT.md §9, e.g. "section_crc"."""
    field: str
    """The field, in the spec's naming, e.g. "tensors[3].group_size"."""
    offset: int
    """The field's absolute byte offset in the file."""

class QuantizeError(PgqError):
    """Inputs that cannot be quantized (a recipe that does not fit, missing
    Hessians, a tensor GPTQ cannot factor)."""

class UsageError(PgqError):
    """Arguments that make no sense together."""

# (name, dtype "f32" | "f16" | "bf16", shape, C-contiguous buffer of its bytes)
_Tensor = tuple[str, str, list[int], Any]

def quantize(
    tensors: list[_Tensor],
    *,
    hessians: list[_Tensor] | None = None,
    recipe: str | None = None,
    recipe_path: str | None = None,
    device: str = "auto",
    threads: int = 0,
    codec: str = "auto",
    level: int | None = None,
    only: list[str] = ...,
    progress: bool = True,
    budget: int | None = None,
    allocation: str = "uniform",
) -> tuple[bytes, str, list[str], str | None]:
    """(artifact bytes, report JSON, warnings, backend note)."""

def load(data: bytes) -> list[tuple[str, list[int], bytes]]:
    """(name, shape, little-endian f32 bytes) per tensor."""

_Factor = tuple[int, str, int, bytes, bytes]

def codes(
    data: bytes,
) -> list[tuple[str, list[int], int, int, bytes, bytes, tuple[int, _Factor, _Factor] | None]]:
    """(name, shape, bits, group_size, i8 codes, little-endian f16 scales,
    correction) per quantized tensor; correction is None or (rank, A, B),
    each factor (bits, range, group, i8 codes, little-endian f16 scales)."""

def inspect(data: bytes) -> str:
    """`pgq inspect --json` without `file`, as JSON text."""

def verify(
    data: bytes,
    subject: str,
    *,
    reference: list[_Tensor] | None = None,
    hessians: list[_Tensor] | None = None,
    cap: int = ...,
    code_files: list[tuple[str, int]] = ...,
) -> str:
    """`pgq verify --json`, as JSON text."""

def tensor_digest(tensors: list[_Tensor]) -> str:
    """The content digest `pgq.source.sha256` records."""
