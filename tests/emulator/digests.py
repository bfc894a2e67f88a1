"""Real sha256 digests for the emulator's big blobs, without hashing gigabytes of zeros again and again.

A model blob that is not ``materialize``d is its GGUF header followed by zeros up to the download size (a sparse
file). Its digest is the sha256 of exactly that content, as Ollama's are (a bundle export or a pull that reads
the blob checks it). Hashing 17 GB of zeros takes half a minute, so the digest of "``prefix`` then zeros up to
``size`` bytes" is looked up, in this order, in:

1. this process's memory;
2. ``digests.json`` beside this file (committed; ``python -m emulator.digests [TAG ...]``, run in tests/, adds
   what it lacks for the presets, the catalog models up to 10 GB and the tags named);
3. a cache file, ``$LOCALCODEX_EMULATOR_CACHE`` or ``~/.cache/localcodex-emulator/digests.json``;

and computed (then cached) only when all three miss. Keys are the sha256 and length of the prefix without its
trailing zeros, and the total size, so the same content always has the same key however it was produced.

:class:`ContentHasher` hashes a stream (an upload) and :func:`hash_file` a file (skipping a sparse file's holes)
the same way: data is hashed, runs of zeros at the end are only counted, and the table answers for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

TABLE = Path(__file__).with_name("digests.json")
_ZEROS = bytes(4 << 20)
_memory: dict[str, str] = {}
_lock = threading.Lock()
_loaded: list[bool] = []


def key(prefix_sha256: str, prefix_len: int, size: int) -> str:
    return f"{prefix_sha256}-{prefix_len}-{size}"


def cache_path() -> Path:
    explicit = os.environ.get("LOCALCODEX_EMULATOR_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "localcodex-emulator" / "digests.json"


def _read(path: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def _lookup(wanted: str) -> str | None:
    with _lock:
        if not _loaded:
            _memory.update(_read(TABLE))
            _loaded.append(True)
        if wanted in _memory:
            return _memory[wanted]
    found = _read(cache_path()).get(wanted)
    if found:
        with _lock:
            _memory[wanted] = found
    return found


def _remember(wanted: str, digest: str) -> None:
    with _lock:
        _memory[wanted] = digest
    path = cache_path()
    try:
        doc = _read(path)
        doc[wanted] = digest
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(doc, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs hashing again


def feed_zeros(sha: hashlib._Hash, count: int) -> None:
    while count > 0:
        step = min(count, len(_ZEROS))
        sha.update(memoryview(_ZEROS)[:step])
        count -= step


def zero_tail_digest(prefix: bytes, size: int) -> str:
    """``sha256:<hex>`` of ``prefix`` followed by zeros up to ``size`` bytes."""
    data = prefix.rstrip(b"\0")
    sha = hashlib.sha256(data)
    return _finish(sha, len(data), size)


def _finish(sha: hashlib._Hash, prefix_len: int, size: int) -> str:
    if prefix_len == size:
        return "sha256:" + sha.hexdigest()
    wanted = key(sha.hexdigest(), prefix_len, size)
    found = _lookup(wanted)
    if found:
        return found
    full = sha.copy()
    feed_zeros(full, size - prefix_len)
    digest = "sha256:" + full.hexdigest()
    _remember(wanted, digest)
    return digest


def _all_zero(piece: bytes) -> bool:
    return piece.count(0) == len(piece)


class ContentHasher:
    """sha256 of a stream; zeros at the end are counted, not hashed (see the module's docstring)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.zeros = 0  # zeros seen since the last non-zero byte, not hashed yet

    def update(self, piece: bytes) -> None:
        self.size += len(piece)
        if _all_zero(piece):
            self.zeros += len(piece)
            return
        self.add_data(piece)

    def add_zeros(self, count: int) -> None:
        self.size += count
        self.zeros += count

    def add_data(self, piece: bytes) -> None:
        """Hash ``piece`` (already counted in ``size``), keeping its trailing zeros for later."""
        if self.zeros:
            feed_zeros(self.sha, self.zeros)
            self.zeros = 0
        data = piece.rstrip(b"\0")
        self.sha.update(data)
        self.zeros = len(piece) - len(data)

    def digest(self) -> str:
        return _finish(self.sha.copy(), self.size - self.zeros, self.size)


def hash_file(path: Path) -> str:
    """``sha256:<hex>`` of a file, its holes (SEEK_HOLE) counted as zeros without being read."""
    hasher = ContentHasher()
    with open(path, "rb") as fh:
        fd = fh.fileno()
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                data_at = os.lseek(fd, pos, os.SEEK_DATA)
                hole_at = os.lseek(fd, data_at, os.SEEK_HOLE)
            except (OSError, AttributeError):  # no data after pos (ENXIO), or no SEEK_DATA here
                data_at, hole_at = (end, end) if _past_data(fd, pos) else (pos, end)
            if data_at > pos:
                hasher.add_zeros(data_at - pos)
            fh.seek(data_at)
            left = hole_at - data_at
            while left > 0:
                piece = fh.read(min(left, 1 << 20))
                if not piece:
                    break
                hasher.update(piece)
                left -= len(piece)
            pos = hole_at
    return hasher.digest()


def _past_data(fd: int, pos: int) -> bool:
    try:
        os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        return True  # ENXIO: only a hole from pos to the end
    except AttributeError:
        return False
    return False


def write_sparse(out, piece: bytes) -> None:
    """Write ``piece`` to a file, seeking over it when it is all zeros (the caller truncates at the end)."""
    if len(piece) >= 4096 and _all_zero(piece):
        out.seek(len(piece), os.SEEK_CUR)
    else:
        out.write(piece)


def main(argv: list[str]) -> int:
    """Add to ``digests.json`` what it lacks for the presets, the catalog models up to 10 GB and the catalog
    models named on the command line (e.g. the pick for a 24 GiB GPU); takes minutes."""
    from .models import catalog_models, preset_models, sparse_weights

    table = _read(TABLE)
    presets = preset_models()
    taken = {m.name for m in presets}
    models = [*presets, *(m for m in catalog_models() if m.name not in taken
                          and (m.size <= 10 * 10**9 or m.name in argv))]
    for model in models:
        found = sparse_weights(model)
        if found is None:
            continue
        head, size = found
        data = head.rstrip(b"\0")
        sha = hashlib.sha256(data)
        wanted = key(sha.hexdigest(), len(data), size)
        if wanted in table:
            continue
        feed_zeros(sha, size - len(data))
        table[wanted] = "sha256:" + sha.hexdigest()
        print(f"{model.name}: {size:,} bytes {table[wanted]}", flush=True)
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
