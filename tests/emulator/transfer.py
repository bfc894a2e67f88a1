"""Endpoints that change the store: pull, create, blobs, copy, delete (and a stub push)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from . import digests, gguf
from .faults import PULL_FAIL_MESSAGE, PULL_KINDS, Fault
from .httpbase import NDJSON, ApiError, Exchange, StreamWriter
from .models import (
    MEDIA_CONFIG,
    MEDIA_LICENSE,
    MEDIA_MESSAGES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    BlobSpec,
    blob_specs,
    default_template,
    go_json,
)
from .names import Name, parse_name

TICK = 0.06  # Ollama reports download progress every 60 ms
_DIGEST = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")
_POST_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MISSING_MANIFEST = "pull model manifest: file does not exist"


class Progress:
    """Status objects as an NDJSON stream, or only the last one when ``stream`` is false."""

    def __init__(self, ex: Exchange, stream: bool):
        self.ex = ex
        self.stream: StreamWriter | None = ex.open_stream(NDJSON, "ndjson") if stream else None
        self.latest: dict[str, Any] = {}

    def emit(self, status: dict[str, Any]) -> None:
        status = {k: v for k, v in status.items() if v not in (0, None, "")}
        self.latest = status
        if self.stream is not None:
            self.stream.send_json_line(status)

    def fail(self, message: str, status: int = 500) -> None:
        """End with an error: a last ``{"error": …}`` line once streaming, else ``status``."""
        raise ApiError(status, message)

    def finish(self) -> None:
        if self.stream is not None:
            self.stream.end()
        else:
            self.ex.send_json(200, self.latest)


def go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def stream_flag(body: dict[str, Any]) -> bool:
    return body.get("stream") is not False


# ---------------------------------------------------------------- pull


class _Budget:
    """Bytes a pull may download before an injected pull fault fires."""

    def __init__(self, faults: list[Fault], to_download: int):
        self.fault = faults[0] if faults else None
        self.limit = self.fault.after if self.fault and self.fault.after is not None else to_download // 2
        self.done = 0

    def allowed(self, wanted: int) -> int:
        return wanted if self.fault is None else min(wanted, self.limit - self.done)


def _status(spec: BlobSpec, completed: int) -> dict[str, Any]:
    hexdigest = spec.digest.split(":", 1)[1]
    return {"status": f"pulling {hexdigest[:12]}", "digest": spec.digest, "total": spec.size,
            "completed": completed}


def _download(ex: Exchange, spec: BlobSpec, progress: Progress, budget: _Budget) -> None:
    store, emu = ex.emu.store, ex.emu
    start = store.partial_size(spec.digest)
    begin = time.monotonic()
    progress.emit(_status(spec, start))
    finish_at = begin + (spec.size - start) / emu.pull_rate
    tick = 1
    while True:
        moment = min(begin + tick * TICK, finish_at)
        emu.sleep_until(moment)
        wanted = min(spec.size, start + int(emu.pull_rate * (moment - begin))) - start
        allowed = budget.allowed(wanted)
        store.grow_partial(spec, start + max(allowed, 0))
        if allowed < wanted:
            _pull_fault(ex, spec, budget.fault)
        if moment >= finish_at:
            break
        progress.emit(_status(spec, start + wanted))
        tick += 1
    budget.done += spec.size - start
    store.finish_partial(spec)


def _pull_fault(ex: Exchange, spec: BlobSpec, fault: Fault | None) -> None:
    assert fault is not None
    if fault.kind == "disk_full":
        message = fault.message or f"write {ex.emu.store.partial_path(spec.digest)}: no space left on device"
    else:
        message = fault.message or PULL_FAIL_MESSAGE
    raise ApiError(500, message)


def pull_into(ex: Exchange, name: Name, progress: Progress) -> None:
    """Ollama's PullModel: manifest, blobs (resuming partial files), verify, write."""
    store = ex.emu.store
    progress.emit({"status": "pulling manifest"})
    model = ex.emu.registry.get(name.key)
    if model is None:
        progress.fail(MISSING_MANIFEST)
    layers, config = blob_specs(model)
    specs = [*layers, config]
    missing = [s for s in specs if not store.has_blob(s.digest)]
    budget = _Budget(ex.emu.faults.take(ex.path, PULL_KINDS),
                     sum(s.size - store.partial_size(s.digest) for s in missing))
    for spec in specs:
        with store.digest_lock(spec.digest, lambda: ex.emu.stopping):
            if store.has_blob(spec.digest):
                progress.emit(_status(spec, spec.size))
            else:
                _download(ex, spec, progress, budget)
    progress.emit({"status": "verifying sha256 digest"})
    for spec in specs:  # Ollama's verifyBlob: a blob that does not hash to its digest is deleted, the pull fails
        actual = digests.hash_file(store.blob_path(spec.digest))
        if actual != spec.digest:
            store.blob_path(spec.digest).unlink(missing_ok=True)
            progress.fail(f"digest mismatch, file must be downloaded again: want {spec.digest}, got {actual}")
    progress.emit({"status": "writing manifest"})
    old = store.find(name)
    store.write_manifest(name, config.descriptor(), [spec.descriptor() for spec in layers])
    if old is not None:
        unused = {old.manifest["config"]["digest"], *(layer["digest"] for layer in old.layers)}
        unused -= store.referenced_digests()
        if unused:
            progress.emit({"status": "removing unused layers"})
            for digest in unused:
                store.blob_path(digest).unlink(missing_ok=True)


def pull(ex: Exchange) -> None:
    body = ex.json_body()
    name = parse_name(body.get("model") or body.get("name") or "")
    if name is None:
        raise ApiError(400, "invalid model name")
    progress = Progress(ex, stream_flag(body))
    pull_into(ex, name, progress)
    progress.emit({"status": "success"})
    progress.finish()


def push(ex: Exchange) -> None:
    body = ex.json_body()
    progress = Progress(ex, stream_flag(body))
    progress.emit({"status": "retrieving manifest"})
    progress.fail("you are not authorized to push to this namespace, create the model under a "
                  "namespace you own")


# ---------------------------------------------------------------- copy, delete


def delete(ex: Exchange) -> None:
    body = ex.json_body()
    text = body.get("model") or body.get("name") or ""
    name = parse_name(text)
    if name is None:
        raise ApiError(400, f"name {go_quote(text)} is invalid")
    item = ex.emu.store.find(name)
    if item is None:
        raise ApiError(404, f"model '{text}' not found")
    ex.emu.runtime.unload(item)
    ex.emu.store.delete(item)
    ex.send_empty(200)


def copy(ex: Exchange) -> None:
    body = ex.json_body()
    source, destination = str(body.get("source") or ""), str(body.get("destination") or "")
    src = parse_name(source)
    if src is None:
        raise ApiError(400, f"source {go_quote(source)} is invalid")
    dst = parse_name(destination)
    if dst is None:
        raise ApiError(400, f"destination {go_quote(destination)} is invalid")
    item = ex.emu.store.find(src)
    if item is None:
        raise ApiError(404, f"model {go_quote(source)} not found")
    ex.emu.store.copy(item, dst)
    ex.send_empty(200)


# ---------------------------------------------------------------- blobs


def _checked_digest(raw: str) -> str:
    digest = unquote(raw)
    if not _DIGEST.match(digest):
        raise ApiError(400, "invalid digest format")
    return digest


def head_blob(ex: Exchange, digest: str) -> None:
    digest = _checked_digest(digest)
    if not ex.emu.store.has_blob(digest):
        raise ApiError(404, f"blob {go_quote(digest)} not found")
    ex.send_empty(200)


def post_blob(ex: Exchange, digest: str) -> None:
    """Stream the body to disk while hashing: 201 new, 200 present, 400 mismatch."""
    store = ex.emu.store
    digest = unquote(digest)
    if not _POST_DIGEST.match(digest):
        # Exactly sha256:<64 lowercase hex> (server/routes.go ~1742); the body is not read.
        ex.handler.close_connection = True
        raise ApiError(400, "invalid digest format")
    if store.has_blob(digest):
        # Present already: 200 without reading the body (server/routes.go ~1742).
        ex.handler.close_connection = True
        ex.send_empty(200)
        return
    tmp = store.blobs / f"upload-{os.getpid()}-{time.monotonic_ns()}"
    hasher = digests.ContentHasher()  # real sha256; runs of zeros are looked up, and stay holes on disk
    try:
        with open(tmp, "wb") as out:
            for piece in ex.handler.iter_body():
                hasher.update(piece)
                digests.write_sparse(out, piece)
            out.truncate(hasher.size)
        actual = hasher.digest()
        if actual != "sha256:" + digest[7:].lower():
            raise ApiError(400, f"digest mismatch, expected {go_quote(digest)}, got {go_quote(actual)}")
        os.replace(tmp, store.blob_path(actual))
    finally:
        tmp.unlink(missing_ok=True)
    ex.send_empty(201)


# ---------------------------------------------------------------- create


def human_number(count: int) -> str:
    """Ollama's ``format.HumanNumber`` (parameter sizes such as ``134.52M``).

    >>> human_number(134_515_008), human_number(8_000_000_000), human_number(27_781_427_200)
    ('134.52M', '8B', '27.8B')
    """
    for unit, scale, digits in (("B", 1e9, 1), ("M", 1e6, 2)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f}{unit}" if value.is_integer() else f"{value:.{digits}f}{unit}"
    return f"{count / 1e3:.0f}K" if count >= 1000 else str(count)


def _valid_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _layer(ex: Exchange, media_type: str, data: bytes) -> tuple[dict[str, Any], str]:
    descriptor, new = ex.emu.store.add_bytes(media_type, data)
    verb = "creating new layer" if new else "using existing layer"
    return descriptor, f"{verb} {descriptor['digest']}"


def _from_files(ex: Exchange, files: dict[str, str], progress: Progress) -> tuple[list, dict]:
    progress.emit({"status": "parsing GGUF"})
    digest = next(iter(files.values()))
    path = ex.emu.store.blob_path(digest)
    if not path.is_file():
        progress.fail(f"open {path}: no such file or directory")
    if not gguf.is_gguf(path):
        progress.fail("supplied file was not in GGUF format", 400)
    info = ex.emu.store.read_gguf(digest)
    if info is None:
        progress.fail("invalid file magic")
    arch = info.architecture
    config = {"model_format": "gguf", "model_family": arch, "model_families": [arch],
              "model_type": human_number(info.parameter_count),
              "file_type": gguf.FILE_TYPE_NAMES.get(info.metadata.get("general.file_type"), "unknown"),
              "architecture": "amd64", "os": "linux"}
    layers = [_converted(ex, path, progress)]
    chat_template = info.metadata.get("tokenizer.chat_template")
    if isinstance(chat_template, str) and chat_template:
        # A chat template found in the GGUF picks a template (server/model.go ~93); tools and
        # thinking follow from it.
        caps = ["completion"]
        if "tools" in chat_template:
            caps.append("tools")
        if "<think>" in chat_template or "enable_thinking" in chat_template:
            caps.append("thinking")
        layers.append(_layer(ex, MEDIA_TEMPLATE, default_template(caps).encode()))
    return layers, config


ZERO_DIGEST = "sha256:" + "0" * 64


def _converted(ex: Exchange, path: Path, progress: Progress) -> tuple[dict[str, Any], str]:
    """The model layer rewritten by ``llama-quantize`` COPY (server/create.go ~765, ~942-950,
    ~1007-1070): a temporary copy in ``blobs/``, then a new layer; the upload stays until a prune."""
    total = path.stat().st_size
    progress.emit({"status": "validating GGUF model", "digest": ZERO_DIGEST, "total": total, "completed": 0})
    store = ex.emu.store
    tmp = store.blobs / f"quantize-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with open(path, "rb") as source, open(tmp, "wb") as out:
            while piece := source.read(1 << 20):
                digests.write_sparse(out, piece)
            padding = b"\0" * 32  # the rewritten file differs from the upload (new alignment padding)
            out.seek(total)
            out.write(padding)
        progress.emit({"status": "validating GGUF model", "digest": ZERO_DIGEST, "total": total,
                       "completed": total})
        progress.emit({"status": "verifying conversion"})
        digest = digests.hash_file(tmp)
        new = not store.has_blob(digest)
        if new:
            os.replace(tmp, store.blob_path(digest))
    finally:
        tmp.unlink(missing_ok=True)
    layer = {"mediaType": MEDIA_MODEL, "digest": digest, "size": total + 32}
    return layer, f"{'creating new' if new else 'using existing'} layer {digest}"


def _from_model(ex: Exchange, base_text: str, progress: Progress) -> tuple[list, dict]:
    base_name = parse_name(base_text)
    if base_name is None:
        progress.fail("invalid model name", 400)
    base = ex.emu.store.find(base_name)
    if base is None:
        pull_into(ex, base_name, progress)
        base = ex.emu.store.find(base_name)
    layers = [(layer, f"using existing layer {layer['digest']}") for layer in base.layers]
    return layers, dict(base.config)


def _replace(layers: list, media_type: str, new: tuple[dict[str, Any], str]) -> list:
    return [item for item in layers if item[0]["mediaType"] != media_type] + [new]


def _apply_request(ex: Exchange, body: dict[str, Any], layers: list) -> list:
    for key, media_type in (("template", MEDIA_TEMPLATE), ("system", MEDIA_SYSTEM)):
        if body.get(key):
            layers = _replace(layers, media_type, _layer(ex, media_type, str(body[key]).encode()))
    licenses = body.get("license") or []
    for text in [licenses] if isinstance(licenses, str) else licenses:
        layers.append(_layer(ex, MEDIA_LICENSE, str(text).encode()))
    params = dict(body.get("parameters") or {})
    for layer, _status_text in layers:
        if layer["mediaType"] == MEDIA_PARAMS:
            for key, value in (ex.emu.store.read_json(layer["digest"]) or {}).items():
                params.setdefault(key, value)
    if params:
        layers = _replace(layers, MEDIA_PARAMS, _layer(ex, MEDIA_PARAMS, go_json(params)))
    if body.get("messages"):
        layers = _replace(layers, MEDIA_MESSAGES, _layer(ex, MEDIA_MESSAGES, go_json(body["messages"])))
    return layers


def create(ex: Exchange) -> None:
    body = ex.json_body()
    files = body.get("files") or {}
    for path, digest in files.items():
        if not _valid_relative(path):
            raise ApiError(400, "file path must be relative")
        if not digest:
            raise ApiError(400, "invalid digest format")
    name = parse_name(body.get("model") or body.get("name") or "")
    if name is None:
        raise ApiError(400, "invalid model name")
    progress = Progress(ex, stream_flag(body))
    if body.get("from"):
        layers, config = _from_model(ex, str(body["from"]), progress)
    elif files:
        layers, config = _from_files(ex, files, progress)
    else:
        progress.fail("neither 'from' or 'files' was specified", 400)
    layers = _apply_request(ex, body, layers)
    config_descriptor, _new = ex.emu.store.add_bytes(MEDIA_CONFIG, go_json(config))
    for _layer_descriptor, status in layers:
        progress.emit({"status": status})
    progress.emit({"status": "writing manifest"})
    ex.emu.store.write_manifest(name, config_descriptor, [layer for layer, _ in layers])
    progress.emit({"status": "success"})
    progress.finish()

