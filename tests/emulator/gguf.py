"""Just enough GGUF to write small valid files and to read their metadata.

Layout (little endian): magic ``GGUF``, version u32, tensor count u64, metadata count u64,
then ``key (u64 length + bytes), value type u32, value`` pairs, then tensor infos
(name, n_dims u32, dims u64[], ggml type u32, offset u64), padding to
``general.alignment`` (default 32), then tensor data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"GGUF"
ALIGNMENT = 32

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALARS = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
            BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}

# ggml tensor types used here: F32 = 0, F16 = 1 (element sizes in bytes)
GGML_F32 = 0
_TYPE_SIZE = {0: 4, 1: 2}

# general.file_type values (llama.cpp / ollama fs/ggml/type.go)
FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
              "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
              "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "BF16": 32, "MXFP4": 38}
FILE_TYPE_NAMES = {v: k for k, v in FILE_TYPES.items()}


class NotGGUF(ValueError):
    """The data does not start with the GGUF magic."""


class Uint64(int):
    """Marks an int to be written as a u64 (e.g. ``general.parameter_count``)."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass
class GGUFInfo:
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo] = field(default_factory=list)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def parameter_count(self) -> int:
        count = self.metadata.get("general.parameter_count")
        if isinstance(count, int):
            return count
        return sum(t.elements for t in self.tensors)


# ---------------------------------------------------------------- writing


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _type_of(value: Any) -> int:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, Uint64):
        return U64
    if isinstance(value, int):
        if value < 0:
            return I32 if value >= -(1 << 31) else I64
        return U32 if value < (1 << 32) else U64
    if isinstance(value, float):
        return F32
    if isinstance(value, str):
        return STRING
    if isinstance(value, (list, tuple)):
        return ARRAY
    raise TypeError(f"cannot store {type(value).__name__} in GGUF")


def _value(vtype: int, value: Any) -> bytes:
    if vtype == STRING:
        return _string(value)
    if vtype == ARRAY:
        item_type = _type_of(value[0]) if value else U32
        items = b"".join(_value(item_type, item) for item in value)
        return struct.pack("<IQ", item_type, len(value)) + items
    return struct.pack(_SCALARS[vtype], value)


def encode(metadata: dict[str, Any], tensors: list[tuple[str, tuple[int, ...], bytes]] = ()) -> bytes:
    """Build a GGUF v3 file; ``tensors`` are ``(name, shape, f32 data)`` triples."""
    out = [MAGIC, struct.pack("<IQQ", 3, len(tensors), len(metadata))]
    for key, value in metadata.items():
        vtype = _type_of(value)
        out.append(_string(key) + struct.pack("<I", vtype) + _value(vtype, value))
    offset = 0
    for name, shape, data in tensors:
        out.append(_string(name) + struct.pack("<I", len(shape)))
        out.append(b"".join(struct.pack("<Q", dim) for dim in shape))
        out.append(struct.pack("<IQ", GGML_F32, offset))
        offset += _padded(len(data))
    head = b"".join(out)
    blob = [head, b"\0" * (_padded(len(head)) - len(head))]
    for _name, _shape, data in tensors:
        blob.append(data + b"\0" * (_padded(len(data)) - len(data)))
    return b"".join(blob)


def _padded(size: int) -> int:
    return (size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


# ---------------------------------------------------------------- reading


class _Reader:
    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def take(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise ValueError("truncated GGUF header")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.unpack("<Q")).decode("utf-8", "replace")

    def value(self, vtype: int) -> Any:
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            item_type = self.unpack("<I")
            count = self.unpack("<Q")
            if item_type in _SCALARS:
                fmt = _SCALARS[item_type]
                return list(struct.unpack(f"<{count}{fmt[1]}", self.take(count * struct.calcsize(fmt))))
            return [self.value(item_type) for _ in range(count)]
        if vtype not in _SCALARS:
            raise ValueError(f"unknown GGUF value type {vtype}")
        return self.unpack(_SCALARS[vtype])


def is_gguf(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(4) == MAGIC


def read(path: Path) -> GGUFInfo:
    """Read the header, metadata and tensor infos (not the tensor data)."""
    with open(path, "rb") as stream:
        reader = _Reader(stream)
        if stream.read(4) != MAGIC:
            raise NotGGUF(str(path))
        version = reader.unpack("<I")
        tensor_count = reader.unpack("<Q")
        kv_count = reader.unpack("<Q")
        metadata = {}
        for _ in range(kv_count):
            key = reader.string()
            metadata[key] = reader.value(reader.unpack("<I"))
        tensors = []
        for _ in range(tensor_count):
            name = reader.string()
            dims = tuple(reader.unpack("<Q") for _ in range(reader.unpack("<I")))
            tensors.append(TensorInfo(name, dims, reader.unpack("<I"), reader.unpack("<Q")))
    return GGUFInfo(version, metadata, tensors)
