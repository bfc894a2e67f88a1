"""A GGUF header reader (stdlib only): what a model file is, without loading its weights.

GGUF (versions 2 and 3; little- or big-endian): magic `GGUF`, u32 version, u64 tensor count, u64 key/value
count, then the key/values (u64-length strings, u32 type tags, arrays of any type), then one info record per
tensor (name, dims, ggml type, offset), then the tensor data at the next multiple of `general.alignment`.

Only the header is read, through a buffered file, so a 20 GB model costs a few MB of reading. Long arrays
(the vocabulary, merges) are skipped over and kept as a count unless `max_array` asks for them. The header is
also checked against the file size: a file cut short anywhere, even in the tensor data, is reported as
truncated, because Ollama would otherwise accept it and fail only when loading it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from localcodex.errors import ExitCode, UsageError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_STRING = 1 << 26  # 64 MiB: no honest key or value is longer (chat templates are a few KB)
MAX_COUNT = 1 << 40

# llama.cpp `llama_ftype` (general.file_type), as Ollama names them.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}

# ggml tensor types: (name, elements per block, bytes per block). Used to check the data fits in the file.
TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

# Value type tags: struct format for the fixed-size ones.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFError(UsageError):
    """The file is not a GGUF model this reader can use: not GGUF, corrupt, truncated, or an unknown version."""

    code = "bad_gguf"


class GGUFTruncated(GGUFError):
    """The data ends before the header does (a cut-short file, or a range read that was too short)."""


@dataclass(frozen=True)
class GGUFArray:
    """An array value. `values` is None when it was longer than `max_array` and skipped over."""

    item_type: int
    count: int
    values: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int | None:
        known = TENSOR_TYPES.get(self.ggml_type)
        if known is None:
            return None
        _, block, size = known
        return -(-self.elements // block) * size


@dataclass(frozen=True)
class GGUFInfo:
    path: str
    file_size: int
    version: int
    byte_order: str  # "little" | "big"
    tensor_count: int
    metadata: Mapping[str, Any] = field(repr=False)
    tensors: tuple[TensorInfo, ...] = field(repr=False, default=())
    data_offset: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def arch_key(self, name: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{name}") if self.architecture else None

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return str(value) if value is not None else None

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value is not None else None

    @property
    def kind(self) -> str:
        """`model`, or `adapter` / `projector` / `mmproj` from `general.type`."""
        return str(self.metadata.get("general.type") or "model")

    @property
    def parameter_count(self) -> int:
        """`general.parameter_count` when the file states it, else the sum of every tensor's elements."""
        stated = _as_int(self.metadata.get("general.parameter_count"))
        return stated if stated else sum(t.elements for t in self.tensors)

    @property
    def file_type(self) -> int | None:
        return _as_int(self.metadata.get("general.file_type"))

    @property
    def quantization(self) -> str | None:
        """The file type's name (Q4_K_M, …); for files that do not say, the most common tensor type by bytes."""
        if self.file_type is not None:
            return FILE_TYPES.get(self.file_type, f"unknown ({self.file_type})")
        weights: dict[str, int] = {}
        for t in self.tensors:
            name = TENSOR_TYPES.get(t.ggml_type, (f"type {t.ggml_type}", 1, 1))[0]
            weights[name] = weights.get(name, 0) + (t.nbytes or 0)
        return max(weights, key=lambda k: weights[k]) if weights else None

    @property
    def context_length(self) -> int | None:
        """The context the model was trained for (`<arch>.context_length`)."""
        return _as_int(self.arch_key("context_length"))

    @property
    def has_chat_template(self) -> bool:
        return bool(self.metadata.get("tokenizer.chat_template"))

    @property
    def block_count(self) -> int | None:
        return _as_int(self.arch_key("block_count"))

    @property
    def embedding_length(self) -> int | None:
        return _as_int(self.arch_key("embedding_length"))

    @property
    def head_count(self) -> int | None:
        return _min_positive(self.arch_key("attention.head_count"))

    @property
    def head_count_kv(self) -> int | None:
        return _min_positive(self.arch_key("attention.head_count_kv"))

    @property
    def key_length(self) -> int | None:
        return _as_int(self.arch_key("attention.key_length"))

    @property
    def value_length(self) -> int | None:
        return _as_int(self.arch_key("attention.value_length"))

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes or 0 for t in self.tensors)

    def summary(self) -> GGUFSummary:
        return GGUFSummary(
            path=self.path, file_size=self.file_size, version=self.version, architecture=self.architecture,
            name=self.name, kind=self.kind, parameter_count=self.parameter_count, quantization=self.quantization,
            file_type=self.file_type, context_length=self.context_length, has_chat_template=self.has_chat_template,
            block_count=self.block_count, embedding_length=self.embedding_length, head_count=self.head_count,
            head_count_kv=self.head_count_kv, key_length=self.key_length, value_length=self.value_length,
            tensor_count=self.tensor_count,
        )


@dataclass(frozen=True)
class GGUFSummary:
    """The facts a person (and the fit estimate) needs, without the metadata dump."""

    path: str
    file_size: int
    version: int
    architecture: str | None
    name: str | None
    kind: str
    parameter_count: int
    quantization: str | None
    file_type: int | None
    context_length: int | None
    has_chat_template: bool
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    tensor_count: int


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _min_positive(value: Any) -> int | None:
    """Per-layer arrays (hybrid models store head counts per layer): the smallest non-zero entry."""
    if isinstance(value, GGUFArray):
        positives = [int(v) for v in (value.values or ()) if isinstance(v, (int, float)) and v > 0]
        return min(positives) if positives else None
    return _as_int(value)


class _Reader:
    """Sequential typed reads with bounds checks; every failure names the offset and the file."""

    def __init__(self, fh: BinaryIO, path: Path, size: int, order: str) -> None:
        self.fh, self.path, self.size, self.order = fh, path, size, order

    @property
    def pos(self) -> int:
        return self.fh.tell()

    def bytes(self, n: int, what: str) -> bytes:
        if n > self.size - self.pos:
            raise _truncated(self.path, self.size, f"{what} at byte {self.pos} needs {n} bytes")
        data = self.fh.read(n)
        if len(data) != n:
            raise _truncated(self.path, self.size, f"{what} at byte {self.pos}")
        return data

    def scalar(self, fmt: str, what: str) -> Any:
        return struct.unpack(self.order + fmt, self.bytes(struct.calcsize(fmt), what))[0]

    def count(self, what: str) -> int:
        n = self.scalar("Q", what)
        if n > MAX_COUNT:
            raise _corrupt(self.path, f"{what} is {n} at byte {self.pos - 8}")
        return n

    def string(self, what: str) -> str:
        n = self.count(f"length of {what}")
        if n > MAX_STRING:
            raise _corrupt(self.path, f"{what} claims {n} bytes at byte {self.pos - 8}")
        return self.bytes(n, what).decode("utf-8", errors="replace")

    def skip(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise _truncated(self.path, self.size, f"{what} at byte {self.pos} needs {n} bytes")
        self.fh.seek(n, 1)

    def value(self, vtype: int, what: str, max_array: int) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype], what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            return self.array(what, max_array)
        raise _corrupt(self.path, f"{what} has unknown value type {vtype} at byte {self.pos - 4}")

    def array(self, what: str, max_array: int) -> GGUFArray:
        item_type = self.scalar("I", f"item type of {what}")
        n = self.count(f"length of {what}")
        if item_type == _ARRAY:
            raise _corrupt(self.path, f"{what} is an array of arrays (not used by any GGUF model)")
        if n > max_array:
            self._skip_items(item_type, n, what)
            return GGUFArray(item_type, n)
        return GGUFArray(item_type, n, tuple(self.value(item_type, what, max_array) for _ in range(n)))

    def _skip_items(self, item_type: int, n: int, what: str) -> None:
        if item_type in _SCALARS:
            self.skip(n * struct.calcsize(_SCALARS[item_type]), what)
            return
        if item_type != _STRING:
            raise _corrupt(self.path, f"{what} has unknown item type {item_type}")
        # The vocabulary: ~100k short strings. A tight loop, bounds checked once at the end.
        read, seek, unpack = self.fh.read, self.fh.seek, struct.Struct(self.order + "Q").unpack
        for _ in range(n):
            raw = read(8)
            if len(raw) != 8:
                raise _truncated(self.path, self.size, f"an item of {what}")
            length = unpack(raw)[0]
            if length > MAX_STRING:
                raise _corrupt(self.path, f"an item of {what} claims {length} bytes")
            seek(length, 1)
        if self.pos > self.size:
            raise _truncated(self.path, self.size, f"{what} runs to byte {self.pos}")


def _truncated(path: Path, size: int, detail: str) -> GGUFError:
    return GGUFTruncated(
        f"{path} is truncated: {detail}, but the file ends at byte {size}",
        "the download or copy was cut short: fetch the file again and compare its checksum",
    )


def _corrupt(path: Path, detail: str) -> GGUFError:
    return GGUFError(f"{path} is not a valid GGUF file: {detail}", "fetch the file again; it is damaged")


def _not_gguf(path: Path, head: bytes) -> GGUFError:
    hint = "import a .gguf model file (llama.cpp format); Ollama library models come with `localcodex pull`"
    if len(head) >= 9 and head[8:9] == b"{":
        hint = "this looks like safetensors: convert it to GGUF with llama.cpp's convert_hf_to_gguf.py first"
    shown = head[:4].hex(" ") if head else "nothing (empty file)"
    return GGUFError(f"{path} is not a GGUF file (it starts with {shown}, a GGUF file with 'GGUF')", hint)


def read_gguf(path: str | Path, *, max_array: int = 1024) -> GGUFInfo:
    """Read the header of a GGUF file. Raises GGUFError (a UsageError) for anything that is not sound."""
    path = Path(path)
    try:
        fh = path.open("rb", buffering=1 << 20)
    except FileNotFoundError:
        raise GGUFError(f"{path} does not exist", "check the path", code="file_not_found",
                          exit_code=ExitCode.NOT_FOUND) from None
    except IsADirectoryError:
        raise GGUFError(f"{path} is a folder, not a GGUF file", "pass the .gguf file itself") from None
    except OSError as exc:
        raise GGUFError(f"cannot read {path}: {exc.strerror or exc}", "check the file permissions") from None
    with fh:
        size = path.stat().st_size
        head = fh.read(16)
        if head[:4] != MAGIC:
            raise _not_gguf(path, head)
        order = _byte_order(path, head)
        fh.seek(4)
        return _read_after_magic(_Reader(fh, path, size, order), max_array)


def read_gguf_head(data: bytes, total_size: int, label: str, *, max_array: int = 1024) -> GGUFInfo | None:
    """Read a GGUF header from the first bytes of a file of `total_size` bytes (a range read of a registry blob).

    Returns None when `data` ends before the header does (read more and call again); raises GGUFError when the
    bytes are not a GGUF header. Tensor data is never needed: only its declared size is checked against
    `total_size`.
    """
    import io

    path = Path(label)
    if len(data) >= 4 and data[:4] != MAGIC:
        raise _not_gguf(path, data[:16])
    if len(data) < 16:
        return None
    order = _byte_order(path, data[:16])
    fh = io.BytesIO(data)
    fh.seek(4)
    try:
        return _read_after_magic(_Reader(fh, path, total_size, order), max_array)
    except GGUFTruncated:
        if len(data) < total_size:
            return None
        raise


def _byte_order(path: Path, head: bytes) -> str:
    if len(head) < 8:
        raise _truncated(path, len(head), "the version number")
    little, big = struct.unpack("<I", head[4:8])[0], struct.unpack(">I", head[4:8])[0]
    if little in (2, 3):
        return "<"
    if big in (2, 3):
        return ">"
    version = little if little < 1 << 16 else big
    if version == 1:
        raise GGUFError(f"{path} is GGUF version 1, which nothing reads any more",
                        "convert it again with a current llama.cpp")
    raise GGUFError(f"{path} has GGUF version {version}; this reader knows versions 2 and 3",
                    "update localcodex, or check the file is not damaged")


def _read_after_magic(r: _Reader, max_array: int) -> GGUFInfo:
    version = r.scalar("I", "version")
    tensor_count = r.count("tensor count")
    kv_count = r.count("key/value count")
    metadata: dict[str, Any] = {}
    for i in range(kv_count):
        key = r.string(f"key {i + 1} of {kv_count}")
        vtype = r.scalar("I", f"type of {key}")
        metadata[key] = r.value(vtype, key, max_array)
    tensors = tuple(_tensor_info(r, i, tensor_count) for i in range(tensor_count))
    alignment = _as_int(metadata.get("general.alignment")) or DEFAULT_ALIGNMENT
    if alignment <= 0 or alignment & (alignment - 1):
        raise _corrupt(r.path, f"general.alignment is {alignment}, not a power of two")
    data_offset = -(-r.pos // alignment) * alignment
    _check_data_fits(r.path, r.size, data_offset, tensors)
    return GGUFInfo(
        path=str(r.path), file_size=r.size, version=version, byte_order="little" if r.order == "<" else "big",
        tensor_count=tensor_count, metadata=metadata, tensors=tensors, data_offset=data_offset,
    )


def _tensor_info(r: _Reader, i: int, total: int) -> TensorInfo:
    name = r.string(f"name of tensor {i + 1} of {total}")
    n_dims = r.scalar("I", f"dimensions of {name}")
    if n_dims > 8:
        raise _corrupt(r.path, f"tensor {name} claims {n_dims} dimensions")
    shape = tuple(r.count(f"a dimension of {name}") for _ in range(n_dims))
    ggml_type = r.scalar("I", f"type of {name}")
    offset = r.scalar("Q", f"offset of {name}")
    return TensorInfo(name=name, shape=shape, ggml_type=ggml_type, offset=offset)


def _check_data_fits(path: Path, size: int, data_offset: int, tensors: tuple[TensorInfo, ...]) -> None:
    sized = [(t, t.nbytes) for t in tensors if t.nbytes is not None]
    if not sized:
        return
    last, nbytes = max(sized, key=lambda pair: pair[0].offset + (pair[1] or 0))
    end = data_offset + last.offset + (nbytes or 0)
    if end > size:
        raise _truncated(path, size, f"tensor {last.name} ends at byte {end}")
