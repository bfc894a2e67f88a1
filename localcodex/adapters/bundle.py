"""Model bundles: one uncompressed tar holding an Ollama model for a machine without a registry.

Layout (members in this order):

    localcodex-bundle.json   index: format, version, model name, manifest sha256/size, every blob's digest/size
    manifest.json            the model's manifest, byte for byte as Ollama wrote it
    blobs/sha256-<hex>       the config blob and every layer the manifest references

Blobs are content-addressed, so a blob's sha256 *is* its digest; the writer checks that while copying (a
damaged store is caught at export) and the reader checks it before anything is installed. Reading never
extracts by member name: members are streamed, and anything that is not a regular file named in the index
is refused, so a crafted tar cannot write outside its destination.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from localcodex.errors import ExitCode, LocalcodexError, UsageError

FORMAT = "localcodex-bundle"
VERSION = 1
INDEX_NAME = "localcodex-bundle.json"
MANIFEST_NAME = "manifest.json"
CHUNK = 1024 * 1024


class BundleError(UsageError):
    """The bundle is not one, is damaged, or does not match its own index."""

    code = "bad_bundle"


@dataclass(frozen=True)
class BundleBlob:
    digest: str
    size: int
    media_type: str

    @property
    def member(self) -> str:
        return "blobs/" + self.digest.replace(":", "-")


@dataclass(frozen=True)
class BundleIndex:
    name: str
    manifest_sha256: str
    manifest_size: int
    blobs: tuple[BundleBlob, ...]
    created: str = ""
    localcodex: str = ""

    @property
    def total_size(self) -> int:
        return sum(b.size for b in self.blobs)

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT, "version": VERSION, "name": self.name, "created": self.created,
            "localcodex": self.localcodex,
            "manifest": {"path": MANIFEST_NAME, "sha256": self.manifest_sha256, "size": self.manifest_size},
            "blobs": [{"digest": b.digest, "size": b.size, "mediaType": b.media_type, "path": b.member}
                      for b in self.blobs],
        }
        return json.dumps(doc, indent=2).encode()


class _HashingReader:
    """File wrapper for tarfile: hashes and counts what passes through."""

    def __init__(self, fh: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self.fh, self.on_bytes, self.sha = fh, on_bytes, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        if self.on_bytes and data:
            self.on_bytes(len(data))
        return data


class _SparseWriter:
    """The bundle file, with a hole wherever a whole block of at least 64 KiB is zeros, as `cp --sparse` does:
    a model's runs of zeros cost no disk (the bytes read back are the same)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh

    def write(self, data: bytes) -> int:
        if len(data) >= 65536 and data.count(0) == len(data):
            self.fh.seek(len(data), os.SEEK_CUR)
        else:
            self.fh.write(data)
        return len(data)

    def tell(self) -> int:
        return self.fh.tell()

    def flush(self) -> None:
        self.fh.flush()


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info


def write_bundle(
    dest: Path, index: BundleIndex, manifest_raw: bytes, blob_paths: dict[str, Path],
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Write the bundle to `dest` through `dest.partial` (renamed at the end; removed on any failure)."""
    import io

    partial = dest.with_name(dest.name + ".partial")
    try:
        with partial.open("wb") as raw:
            out = _SparseWriter(raw)
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as tar:  # type: ignore[call-overload]
                raw_index = index.to_json()
                tar.addfile(_member(INDEX_NAME, len(raw_index)), io.BytesIO(raw_index))
                tar.addfile(_member(MANIFEST_NAME, len(manifest_raw)), io.BytesIO(manifest_raw))
                for blob in index.blobs:
                    _add_blob(tar, blob, blob_paths[blob.digest], on_bytes)
            raw.truncate(raw.tell())  # the last blocks may have been holes: the file ends where the tar does
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _add_blob(tar: tarfile.TarFile, blob: BundleBlob, path: Path, on_bytes: Callable[[int], None] | None) -> None:
    with path.open("rb") as fh:
        reader = _HashingReader(fh, on_bytes)
        tar.addfile(_member(blob.member, blob.size), reader)  # type: ignore[arg-type]
    if f"sha256:{reader.sha.hexdigest()}" != blob.digest:
        raise LocalcodexError(
            f"blob {blob.digest} in {path.parent} does not match its checksum: the Ollama store is damaged",
            "pull the model again (`localcodex pull NAME --force`), then export",
            code="store",
        )


# -- reading -------------------------------------------------------------------------------------------------


def _parse_index(raw: bytes, where: Path) -> BundleIndex:
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError("not a localcodex bundle index")
        if int(doc.get("version", 0)) > VERSION:
            raise BundleError(f"{where} is bundle version {doc['version']}; this localcodex reads {VERSION}",
                              "update localcodex on this machine")
        blobs = tuple(BundleBlob(str(b["digest"]), int(b["size"]), str(b.get("mediaType", ""))) for b in doc["blobs"])
        manifest = doc["manifest"]
        return BundleIndex(name=str(doc["name"]), manifest_sha256=str(manifest["sha256"]),
                           manifest_size=int(manifest["size"]), blobs=blobs, created=str(doc.get("created", "")),
                           localcodex=str(doc.get("localcodex", "")))
    except BundleError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"{where} has a broken index ({exc})", "export the bundle again") from exc


class BundleReader:
    """Sequential access to a bundle. `open()` reads index and manifest; `blobs()` streams the rest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index: BundleIndex
        self.manifest_raw: bytes = b""

    def open(self) -> BundleReader:
        with self._tar() as tar:
            first = next(_members(tar, self.path), None)
            if first is None or first.name != INDEX_NAME or not first.isfile():
                raise BundleError(f"{self.path} is a tar but not a localcodex bundle (no {INDEX_NAME} first)",
                                  "create bundles with `localcodex models export NAME --to FILE.tar`")
            self.index = _parse_index(self._read_small(tar, first), self.path)
            second = next(_members(tar, self.path), None)
            if second is None or second.name != MANIFEST_NAME or not second.isfile():
                raise BundleError(f"{self.path} has no {MANIFEST_NAME} after its index", "export the bundle again")
            self.manifest_raw = self._read_small(tar, second)
        if hashlib.sha256(self.manifest_raw).hexdigest() != self.index.manifest_sha256:
            raise BundleError(f"the manifest in {self.path} does not match its checksum", "export the bundle again")
        return self

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_raw)

    def blobs(self) -> Iterator[tuple[BundleBlob, Iterator[bytes]]]:
        """Each blob with a chunk iterator over its bytes, in tar order (which is the index's order)."""
        expected = {b.member: b for b in self.index.blobs}
        seen: set[str] = set()
        with self._tar() as tar:
            for member in _members(tar, self.path):
                if member.name in (INDEX_NAME, MANIFEST_NAME):
                    continue
                blob = expected.get(member.name)
                if blob is None or not member.isfile() or member.name in seen:
                    raise BundleError(f"{self.path} holds an unexpected member {member.name!r}",
                                      "only use bundles made by `localcodex models export`")
                if member.size != blob.size:
                    raise BundleError(f"{member.name} in {self.path} is {member.size} bytes; the index says "
                                      f"{blob.size}", "export the bundle again")
                seen.add(member.name)
                fh = tar.extractfile(member)
                assert fh is not None
                yield blob, _chunks(fh, self.path)
        missing = [m for m in expected if m not in seen]
        if missing:
            raise BundleError(f"{self.path} is missing {missing[0]} (and {len(missing) - 1} more)"
                              if len(missing) > 1 else f"{self.path} is missing {missing[0]}",
                              "the bundle is incomplete: copy it again")

    def _tar(self) -> tarfile.TarFile:
        try:
            return tarfile.open(self.path, "r:")
        except FileNotFoundError:
            raise BundleError(f"{self.path} does not exist", "check the path", code="file_not_found",
                              exit_code=ExitCode.NOT_FOUND) from None
        except IsADirectoryError:
            raise BundleError(f"{self.path} is a folder, not a bundle", "pass the .tar file") from None
        except tarfile.TarError as exc:
            raise BundleError(f"{self.path} is not a tar file ({exc})",
                              "create bundles with `localcodex models export NAME --to FILE.tar`") from None

    def _read_small(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
        if member.size > 16 * CHUNK:
            raise BundleError(f"{member.name} in {self.path} is implausibly large", "export the bundle again")
        fh = tar.extractfile(member)
        assert fh is not None
        try:
            data = fh.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _damaged(self.path, exc) from None
        if len(data) != member.size:
            raise BundleError(f"{self.path} is truncated inside {member.name}", "copy the bundle again")
        return data


def _damaged(path: Path, exc: Exception) -> BundleError:
    return BundleError(f"{path} is damaged or cut short ({exc})", "copy the bundle again (compare its size)")


def _members(tar: tarfile.TarFile, path: Path) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tar.next()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _damaged(path, exc) from None
        if member is None:
            return
        yield member


def _chunks(fh: IO[bytes], path: Path) -> Iterator[bytes]:
    while True:
        try:
            block = fh.read(CHUNK)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _damaged(path, exc) from None
        if not block:
            return
        yield block
