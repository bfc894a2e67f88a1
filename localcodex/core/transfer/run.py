"""Models without a registry: import a GGUF file, and move an installed model between machines as a bundle.

- `import_gguf`: read the GGUF header (is it a model, what is it), hash the file, upload it as a blob unless the
  server has it (`HEAD /api/blobs/…`), then `/api/create` with `files={name: digest}` and, if asked, `num_ctx`.
- `export_bundle`: read the model's manifest and every blob it references (config included) straight from
  Ollama's store into one tar with a checksummed index (adapters/bundle.py). No server needed.
- `import_bundle`: verify every checksum first, install nothing from a damaged bundle; then install through the
  API (GGUF layers uploaded as blobs, `/api/create` with the manifest's template/system/params/license), which
  works for a local or remote server. Layers the API cannot rebuild (adapters, safetensors tensors, drafts) are
  written into the local store instead — blobs first, manifest last, never blobs alone (fact sheet §6: blobs
  without a manifest are deleted when Ollama starts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from localcodex import __version__
from localcodex.adapters import bundle, ollama_store
from localcodex.adapters.bundle import BundleError, BundleReader
from localcodex.adapters.ollama import InstalledModel, ModelDetails, OllamaServer, normalize_name
from localcodex.adapters.ollama_store import StoreError, free_disk
from localcodex.core.detect import detect
from localcodex.core.ports import Live
from localcodex.core.recommend.context import choose_context
from localcodex.core.recommend.fit import place
from localcodex.core.recommend.live import from_show
from localcodex.core.transfer.gguf import GGUFArray, GGUFInfo, GGUFSummary, read_gguf
from localcodex.core.variant import CREATE_LIMIT
from localcodex.domain.machine import Machine
from localcodex.domain.progress import TransferCallback, TransferEvent
from localcodex.domain.units import format_bytes
from localcodex.errors import NoFit, ServerError, UsageError
from localcodex.paths import ollama_models_dir

MEDIA = "application/vnd.ollama.image."
GGUF_LAYERS = {MEDIA + "model": "model.gguf", MEDIA + "projector": "projector.gguf"}
TEXT_LAYERS = {MEDIA + "template", MEDIA + "system", MEDIA + "license", MEDIA + "params", MEDIA + "messages"}
CONFIG_MEDIA = "application/vnd.docker.container.image.v1+json"
CONFIG_FIELDS = ("renderer", "parser", "requires")
_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")
UPLOAD_GRACE = 600.0  # seconds every upload gets, whatever its size
UPLOAD_FLOOR_RATE = 5e6  # bytes/s: the slowest link an upload is allowed to take (a crowded Wi-Fi)


@dataclass(frozen=True)
class ImportFit:
    """How the file would sit in this machine's memory (the fit engine on the header's figures)."""

    num_ctx: int  # the context evaluated: --ctx, else the one the fit engine would choose
    placement: str  # fit.PLACEMENTS: unified, gpu, multi_gpu, partial, cpu, none
    fits: bool
    full: bool  # all on GPU / unified memory (or in RAM on a machine without a usable GPU)
    gpu_fraction: float
    need_bytes: int  # weights + KV cache + compute buffer at num_ctx
    reason: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class GGUFImportResult:
    name: str
    digest: str
    size: int
    uploaded: bool  # False when the server had the blob already
    replaced: bool  # a model with this name existed and was replaced (--force)
    num_ctx: int | None
    gguf: GGUFSummary
    capabilities: tuple[str, ...]
    fit: ImportFit | None = None  # None: no machine to measure (remote server) or too few header figures
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportResult:
    name: str
    path: str
    size: int  # bytes written
    blobs: int
    manifest_digest: str  # sha256 of the manifest: the ID `ollama list` shows


@dataclass(frozen=True)
class BundleImportResult:
    name: str
    source_name: str
    method: Literal["api", "store"]
    blobs: int
    uploaded: int  # blobs sent (or written); the rest were present
    size: int
    replaced: bool
    warnings: tuple[str, ...] = ()


def _noop(_event: TransferEvent) -> None:
    return None


class _Counter:
    """Turns byte counts into throttled-by-the-display TransferEvents."""

    def __init__(self, emit: TransferCallback, phase: Any, total: int | None, item: str = "") -> None:
        self.emit, self.phase, self.total, self.item, self.done = emit, phase, total, item, 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.emit(TransferEvent(self.phase, self.done, self.total, self.item))

    def wrap(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for block in chunks:
            self(len(block))
            yield block


# -- GGUF file -----------------------------------------------------------------------------------------------


def import_gguf_here(
    live: Live, path: str | Path, name: str, num_ctx: int | None = None, *, force: bool = False,
    on_progress: TransferCallback | None = None, timeout: float = 900.0, limit: float | None = None,
) -> GGUFImportResult:
    """`models import`: the machine is measured (`detect`) when the server runs on it, for the fit estimate.
    `timeout` bounds each read; `limit` (--timeout) all the server work together (else each step's own)."""

    server, inv = live.ollama(timeout=min(timeout, limit) if limit else timeout), live.inv
    measure = (lambda: detect(ollama_host=inv.host, env=inv.env)) if inv.host.is_local else None
    store = ollama_models_dir(inv.env) if inv.host.is_local else None
    with server.deadline(limit, f"importing {name}"):
        return import_gguf(server, path, name, num_ctx, force=force, measure=measure, on_progress=on_progress,
                           models_dir=store)


def transfer_limit(size: int) -> float:
    """The total time limit of uploading `size` bytes: ten minutes plus 5 MB/s (a 20 GB file: 75 minutes).

    >>> transfer_limit(0), transfer_limit(20 * 10**9)
    (600.0, 4600.0)
    """
    return UPLOAD_GRACE + size / UPLOAD_FLOOR_RATE


def import_gguf(
    server: OllamaServer, path: str | Path, name: str, num_ctx: int | None = None, *,
    force: bool = False, measure: Callable[[], Machine] | None = None, on_progress: TransferCallback | None = None,
    models_dir: Path | None = None,
) -> GGUFImportResult:
    """Create model `name` from a local GGUF file. The header is validated before anything else happens;
    then, with `measure` (what gives this machine, e.g. `detect`), the fit is estimated before any upload, and
    with `models_dir` (Ollama's store, when the server runs here) the disk is checked for twice the file.
    Capabilities come from Ollama's `/api/show` after the create: it derives them from the file's template."""
    from localcodex.adapters import ollama_store

    emit = on_progress or _noop
    path = Path(path)
    model = normalize_name(name)
    info = read_gguf(path)
    _check_importable(info.summary(), num_ctx)
    fit = estimate_fit(info, model, num_ctx, measure()) if measure is not None else None
    existing = server.find(model)
    if existing is not None and not force:
        raise UsageError(f"a model named {model} is already installed", "pick another --name, or --force to replace it")
    if models_dir is not None:
        _check_import_disk(models_dir, info.file_size)
    digest = ollama_store.sha256_file(path, _Counter(emit, "hash", info.file_size, path.name))
    uploaded = not server.has_blob(digest)
    if uploaded:
        counter = _Counter(emit, "upload", info.file_size, path.name)
        with server.deadline(transfer_limit(info.file_size), f"uploading {path.name}"):
            server.upload_blob(digest, counter.wrap(ollama_store.read_chunks(path)), size=info.file_size)
    emit(TransferEvent("create", 0, None, model))
    parameters = {"num_ctx": num_ctx} if num_ctx else None
    with server.deadline(CREATE_LIMIT, f"creating {model}"):
        _finish(model, server.create(model, files={_file_name(path): digest}, parameters=parameters))
    caps = server.show(model).capabilities
    return GGUFImportResult(
        name=model, digest=digest, size=info.file_size, uploaded=uploaded, replaced=existing is not None,
        num_ctx=num_ctx, gguf=info.summary(), capabilities=caps, fit=fit,
        warnings=_gguf_warnings(info.summary(), caps) + _fit_warnings(fit) + _context_warnings(num_ctx),
    )


def _check_import_disk(models_dir: Path, size: int) -> None:
    """Ollama stores the upload, then rewrites the weights into a new layer with `llama-quantize` COPY (server/
    create.go ~765, ~942-950, ~1007-1070), and the upload stays until a prune: about twice the file's size."""
    from localcodex.adapters.ollama_store import free_disk

    where, free = free_disk(models_dir)
    needed = 2 * size
    if needed > free:
        raise NoFit(f"importing needs about {format_bytes(needed, decimal=True)} (twice the file: Ollama keeps the "
                    f"upload and writes a converted copy), only {format_bytes(free, decimal=True)} is free in {where}",
                    f"free {format_bytes(needed - free, decimal=True)} or more there (or move Ollama's models with "
                    "OLLAMA_MODELS)", data={"needed": needed, "free": free, "path": str(where)})


def _context_warnings(num_ctx: int | None) -> tuple[str, ...]:
    from localcodex.core.variant import CODEX_MIN_CONTEXT

    if num_ctx and num_ctx < CODEX_MIN_CONTEXT:
        return (f"--ctx {num_ctx:,} is little for Codex, which sends 4–6k tokens of instructions before any work: "
                f"it needs {CODEX_MIN_CONTEXT:,} or more",)
    return ()


def estimate_fit(info: GGUFInfo, name: str, num_ctx: int | None, machine: Machine) -> ImportFit | None:
    """The fit engine on the header's figures: at --ctx, or at the context it would choose for Codex."""

    installed = InstalledModel(name=name, size=info.file_size, digest="", modified_at="",
                               quantization_level=info.quantization)
    model, notes = from_show(installed, _details_from_header(info, name))
    if model is None:
        return None
    if num_ctx:
        fit, notes = place(model, num_ctx, machine), notes
    else:
        choice = choose_context(model, machine)
        fit = choice.fit or place(model, min(model.context_length, choice.target), machine)
        notes = (*notes, *choice.notes)
    return ImportFit(num_ctx=fit.need.num_ctx, placement=fit.placement, fits=fit.fits, full=fit.full,
                     gpu_fraction=fit.gpu_fraction, need_bytes=fit.need.total, reason=fit.reason, notes=notes)


def _details_from_header(info: GGUFInfo, name: str) -> ModelDetails:
    """What `/api/show` would say about this file, from its header (arrays as lists, like `model_info`)."""

    model_info = {k: (list(v.values or ()) if isinstance(v, GGUFArray) else v) for k, v in info.metadata.items()}
    return ModelDetails(
        name=name, architecture=info.architecture, parameter_count=info.parameter_count,
        context_length=info.context_length, num_ctx=None, capabilities=(), family=info.architecture,
        quantization_level=info.quantization, block_count=info.block_count, head_count=info.head_count,
        head_count_kv=info.head_count_kv, embedding_length=info.embedding_length, key_length=info.key_length,
        value_length=info.value_length, model_info=model_info,
    )


def _fit_warnings(fit: ImportFit | None) -> tuple[str, ...]:
    if fit is None or fit.full:
        return ()
    need = format_bytes(fit.need_bytes)
    if not fit.fits:
        return (f"at {fit.num_ctx} tokens of context this model needs {need} and does not fit this machine"
                f"{': ' + fit.reason if fit.reason else ''}",)
    return (f"at {fit.num_ctx} tokens of context this model needs {need}: only {round(100 * fit.gpu_fraction)}% "
            "of it fits on the GPU, the rest runs on the CPU (slow)",)


def _check_importable(info: GGUFSummary, num_ctx: int | None) -> None:
    if info.kind in ("adapter", "projector", "mmproj"):
        raise UsageError(f"{info.path} is a {info.kind}, not a model",
                         "import the base model's GGUF; adapters and projectors are not models of their own")
    if not info.architecture:
        raise UsageError(f"{info.path} does not say its architecture (general.architecture)",
                         "it is not a model llama.cpp or Ollama can load")
    if num_ctx is not None and num_ctx <= 0:
        raise UsageError(f"--ctx must be a positive number of tokens, not {num_ctx}", "e.g. --ctx 32768")
    if num_ctx and info.context_length and num_ctx > info.context_length:
        raise UsageError(f"{info.path} was trained for {info.context_length} tokens; --ctx {num_ctx} is more",
                         f"use --ctx {info.context_length} or less")


def _gguf_warnings(info: GGUFSummary, caps: tuple[str, ...]) -> tuple[str, ...]:
    warnings = []
    if not info.has_chat_template:
        warnings.append("the file has no chat template (tokenizer.chat_template): chat requests may be "
                        "formatted wrongly; add a TEMPLATE with `ollama create`")
    if caps and "tools" not in caps:
        warnings.append("Ollama does not list `tools` for this model: Codex cannot use it (it needs tool calls)")
    return tuple(warnings)


def _file_name(path: Path) -> str:
    """A `files` key Ollama accepts: relative, no `:` or `\\`, ending in .gguf so the type is clear."""
    stem = _SAFE_FILE.sub("-", path.name).strip("-.") or "model"
    return stem if stem.lower().endswith(".gguf") else f"{stem}.gguf"


def _finish(model: str, statuses: Iterator[str]) -> None:
    last = ""
    for status in statuses:
        last = status
    if last != "success":
        raise ServerError(f"creating {model} did not finish: Ollama's last status was {last!r}")


# -- export --------------------------------------------------------------------------------------------------


def export_bundle(
    models_dir: Path, name: str, dest_tar: Path, *, overwrite: bool = False,
    on_progress: TransferCallback | None = None,
) -> ExportResult:
    """Write model `name` from the Ollama store at `models_dir` into the bundle `dest_tar`."""
    import hashlib


    emit = on_progress or _noop
    model = normalize_name(name)
    stored = ollama_store.read_manifest(models_dir, model)
    blobs = tuple(bundle.BundleBlob(str(b["digest"]), int(b["size"]), str(b.get("mediaType", "")))
                  for b in stored.blobs)
    paths = {b.digest: ollama_store.blob_path(models_dir, b.digest) for b in blobs}
    _check_blobs_present(models_dir, model, blobs, paths)
    dest_tar = Path(dest_tar)
    _check_destination(dest_tar, overwrite, sum(b.size for b in blobs))
    index = bundle.BundleIndex(
        name=model, manifest_sha256=hashlib.sha256(stored.raw).hexdigest(), manifest_size=len(stored.raw),
        blobs=blobs, created=datetime.now(timezone.utc).isoformat(timespec="seconds"), localcodex=__version__,
    )
    counter = _Counter(emit, "write", index.total_size, dest_tar.name)
    try:
        bundle.write_bundle(dest_tar, index, stored.raw, paths, counter)
    except OSError as exc:
        raise UsageError(f"cannot write {dest_tar}: {exc.strerror or exc}", "choose another --to path") from exc
    return ExportResult(name=model, path=str(dest_tar), size=dest_tar.stat().st_size, blobs=len(blobs),
                        manifest_digest=index.manifest_sha256)


def _check_blobs_present(models_dir: Path, model: str, blobs: tuple[Any, ...], paths: dict[str, Path]) -> None:

    for blob in blobs:
        path = paths[blob.digest]
        if not path.is_file():
            raise StoreError(f"the store at {models_dir} lacks blob {blob.digest} of {model}",
                             f"pull the model again (`localcodex pull {model} --force`), then export")
        if path.stat().st_size != blob.size:
            raise StoreError(f"blob {blob.digest} of {model} is {path.stat().st_size} bytes, the manifest says "
                             f"{blob.size}", f"pull the model again (`localcodex pull {model} --force`)")


def _check_destination(dest: Path, overwrite: bool, size: int) -> None:

    if dest.is_dir():
        raise UsageError(f"{dest} is a folder", "give a file name, e.g. --to model.tar")
    if dest.exists() and not overwrite:
        raise UsageError(f"{dest} exists already", "choose another --to path, or --force to overwrite it")
    if not dest.parent.is_dir():
        raise UsageError(f"the folder {dest.parent} does not exist", "create it first, or choose another --to path")
    _, free = free_disk(dest.parent)
    if size > free:
        raise NoFit(f"the bundle needs {format_bytes(size, decimal=True)}, only {format_bytes(free, decimal=True)} "
                    f"is free in {dest.parent}", "choose a --to path on a disk with more room")


# -- import a bundle -----------------------------------------------------------------------------------------


def import_bundle(
    server: OllamaServer, tar: str | Path, *, name: str | None = None, force: bool = False,
    models_dir: Path | None = None, on_progress: TransferCallback | None = None,
) -> BundleImportResult:
    """Install the model in bundle `tar` on `server` (as `name`, default the bundle's own), checksums first."""

    emit = on_progress or _noop
    reader = BundleReader(Path(tar)).open()
    source = reader.index.name
    model = normalize_name(name or source)
    existing = server.find(model)
    if existing is not None and not force:
        raise UsageError(f"a model named {model} is already installed", "pass --name NEW, or --force to replace it")
    manifest = reader.manifest()
    _check_manifest_matches_index(reader)
    verify = _Counter(emit, "verify", reader.index.total_size, Path(tar).name)
    texts = _verify_all(reader, verify)
    unsupported = sorted({str(layer.get("mediaType")) for layer in manifest["layers"]}
                         - set(GGUF_LAYERS) - TEXT_LAYERS)
    if unsupported:
        return _install_into_store(server, reader, model, source, unsupported, models_dir, emit,
                                   replaced=existing is not None)
    return _install_through_api(server, reader, manifest, texts, model, source, emit, replaced=existing is not None)


def _check_manifest_matches_index(reader: Any) -> None:
    manifest = reader.manifest()
    referenced = {str(b["digest"]) for b in [manifest.get("config") or {}, *manifest["layers"]] if b.get("digest")}
    indexed = {b.digest for b in reader.index.blobs}
    if referenced - indexed:
        raise UsageError(f"{reader.path} lacks blob {sorted(referenced - indexed)[0]} that its manifest needs",
                         "export the bundle again", code="bad_bundle")


def _verify_all(reader: Any, counter: _Counter) -> dict[str, bytes]:
    """Hash every blob; keep the small text layers and the config in memory for the create request."""
    import hashlib


    small: dict[str, bytes] = {}
    for blob, chunks in reader.blobs():
        sha = hashlib.sha256()
        keep = blob.media_type in TEXT_LAYERS or blob.media_type == CONFIG_MEDIA
        parts: list[bytes] = []
        for block in chunks:
            sha.update(block)
            counter(len(block))
            if keep:
                parts.append(block)
        if f"sha256:{sha.hexdigest()}" != blob.digest:
            raise BundleError(f"blob {blob.digest} in {reader.path} does not match its checksum: the bundle is "
                              "damaged; nothing was installed", "copy the bundle again, or export it again")
        if keep:
            small[blob.digest] = b"".join(parts)
    return small


def _create_body(manifest: dict[str, Any], texts: dict[str, bytes], model: str) -> dict[str, Any]:
    """The `/api/create` request that rebuilds the manifest's model from uploaded blobs."""
    files: dict[str, str] = {}
    body: dict[str, Any] = {"model": model, "stream": True}
    licenses: list[str] = []
    for i, layer in enumerate(manifest["layers"]):
        media, digest = str(layer["mediaType"]), str(layer["digest"])
        if media in GGUF_LAYERS:
            files[f"{i:02d}-{GGUF_LAYERS[media]}"] = digest
            continue
        text = texts[digest].decode("utf-8")
        if media == MEDIA + "params":
            body["parameters"] = json.loads(text)
        elif media == MEDIA + "messages":
            body["messages"] = json.loads(text)
        elif media == MEDIA + "license":
            licenses.append(text)
        else:
            body[media.removeprefix(MEDIA)] = text
    body["files"] = files
    if licenses:
        body["license"] = licenses if len(licenses) > 1 else licenses[0]
    config_digest = (manifest.get("config") or {}).get("digest")
    config = json.loads(texts.get(config_digest, b"{}") or b"{}") if config_digest else {}
    body.update({key: config[key] for key in CONFIG_FIELDS if config.get(key)})
    return body


def _install_through_api(
    server: OllamaServer, reader: Any, manifest: dict[str, Any], texts: dict[str, bytes], model: str, source: str,
    emit: TransferCallback, *, replaced: bool,
) -> BundleImportResult:
    body = _create_body(manifest, texts, model)
    wanted = set(body["files"].values())
    to_send = {d for d in wanted if not server.has_blob(d)}
    total = sum(b.size for b in reader.index.blobs if b.digest in to_send)
    counter = _Counter(emit, "upload", total, Path(reader.path).name)
    for blob, chunks in reader.blobs():
        if blob.digest in to_send:
            with server.deadline(transfer_limit(blob.size), f"uploading blob {blob.digest[:19]}"):
                server.upload_blob(blob.digest, counter.wrap(chunks), size=blob.size)
        else:
            for _ in chunks:  # tar is sequential: skip over this member's bytes
                pass
    emit(TransferEvent("create", 0, None, model))
    with server.deadline(CREATE_LIMIT, f"creating {model}"):
        _finish(model, server.create_request(body))
    return BundleImportResult(name=model, source_name=source, method="api", blobs=len(reader.index.blobs),
                              uploaded=len(to_send), size=reader.index.total_size, replaced=replaced)


def _install_into_store(
    server: OllamaServer, reader: Any, model: str, source: str, unsupported: list[str], models_dir: Path | None,
    emit: TransferCallback, *, replaced: bool,
) -> BundleImportResult:

    store = models_dir or ollama_models_dir()
    kinds = ", ".join(u.removeprefix(MEDIA) for u in unsupported)
    if not server.host.is_local:
        raise UsageError(f"the bundle holds layers Ollama's API cannot rebuild ({kinds}) and the server at "
                         f"{server.host.native} is on another machine",
                         "run import-bundle on the machine that runs Ollama")
    if not ollama_store.writable(store):
        raise UsageError(f"the bundle holds layers Ollama's API cannot rebuild ({kinds}), and {store} is not "
                         "writable by this user", f"run as the user that owns {store}")
    counter = _Counter(emit, "write", reader.index.total_size, Path(reader.path).name)
    written = 0
    for blob, chunks in reader.blobs():  # blobs first ...
        if ollama_store.has_blob(store, blob.digest):
            for _ in chunks:
                pass
            continue
        ollama_store.write_blob(store, blob.digest, counter.wrap(chunks))
        written += 1
    ollama_store.write_manifest(store, model, reader.manifest_raw)  # ... the manifest last
    if server.find(model) is None:
        raise ServerError(f"{model} was written into {store}, but the Ollama at {server.host.native} does not list "
                          "it", f"check that this Ollama uses {store} (OLLAMA_MODELS), then restart it")
    return BundleImportResult(name=model, source_name=source, method="store", blobs=len(reader.index.blobs),
                              uploaded=written, size=reader.index.total_size, replaced=replaced,
                              warnings=(f"installed by writing into {store}: the API cannot rebuild {kinds}",))
