"""Pull a model through Ollama, after making sure it can land.

Before a byte moves: the name is validated, the download size is found (the packaged catalog, else the
registry manifest), and it is compared with the free disk where Ollama keeps models (only meaningful when the
server runs on this machine). A pull that cannot fit is refused with `NoFit`; one whose size cannot be known
goes ahead with a note saying the disk was not checked.

During the pull, Ollama's NDJSON statuses become typed `PullEvent`s for the caller's display. A mid-stream
`{"error": …}` becomes one error carrying the server's reason, classified: unknown model → NotFound,
registry unreachable → Offline (pointing at the air-gapped import), disk full → NoFit. Ctrl-C closes the
stream (Ollama cancels the download and keeps the finished parts, so re-running resumes, until a restart of
Ollama prunes parts older than an hour).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from localcodex.adapters.ollama import OllamaServer, normalize_name
from localcodex.domain.progress import DiskCheck, Phase, PullEvent, PullPlan
from localcodex.domain.units import format_bytes
from localcodex.errors import ExitCode, LocalcodexError, NoFit, NotFound, Offline, ServerError

# Fragments of Go's network errors that mean "the registry cannot be reached from the server".
OFFLINE_MARKERS = (
    "dial tcp",
    "no such host",
    "connection refused",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "temporary failure in name resolution",
    "server misbehaving",
    "tls handshake timeout",
    "lookup registry",
)
AIRGAP_HINT = (
    "on a machine without internet, bring the model in as a file: `localcodex models import FILE.gguf --name NAME`, "
    "or export it on a connected machine (`localcodex models export NAME --to bundle.tar`) and run "
    "`localcodex models import-bundle bundle.tar` here"
)
# Ollama deletes `-partial` files older than an hour when it starts (PruneLayers: server/images.go ~874-919,
# called from server/routes.go ~1963), so the parts survive a restart of Ollama only within that hour.
RESUME_NOTE = ("run the same command again to resume: Ollama keeps the parts already downloaded, but deletes "
               "parts older than an hour when it restarts, so resume before restarting Ollama")


@dataclass(frozen=True)
class LayerSummary:
    digest: str
    size: int | None
    reused: bool  # already on disk: nothing was downloaded for it


@dataclass(frozen=True)
class PullResult:
    model: str
    host: str
    action: Literal["pulled", "already_installed"]
    download_bytes: int | None
    size_source: str
    disk: DiskCheck | None
    layers: tuple[LayerSummary, ...] = ()
    downloaded_bytes: int = 0  # bytes of layers that were not on disk before (an upper bound on resumes)
    seconds: float = 0.0
    size: int | None = None  # installed size afterwards (/api/tags)
    digest: str | None = None
    notes: tuple[str, ...] = ()


ProgressCallback = Callable[["PullPlan | PullEvent"], None]


@dataclass(frozen=True)
class _Size:
    total: int | None
    source: str
    missing: int | None  # bytes of blobs not yet in the local store (registry manifest + local server only)
    note: str | None = None
    upper: int | None = None  # the most it can be, when `total` is a rounded figure (the catalog's)


def pull(
    server: OllamaServer,
    model: str,
    *,
    force: bool = False,
    disk_free: int | None = None,
    expected_size: int | None = None,
    models_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> PullResult:
    """Pull `model` into the Ollama at `server`, refusing up front when the disk cannot hold it.

    `disk_free` overrides the measured free space (tests, or a caller that measured already); `expected_size`
    overrides the catalog/registry size; `models_dir` overrides where the local store is looked for.
    """
    emit = on_progress or (lambda _event: None)
    name = normalize_name(model)
    installed = server.find(name)
    if installed is not None and not force:
        return PullResult(
            model=name, host=server.host.native, action="already_installed", download_bytes=None,
            size_source="unknown", disk=None, size=installed.size, digest=installed.digest,
            notes=(f"{name} is already installed ({format_bytes(installed.size, decimal=True)}); "
                   "pass --force to pull it again",),
        )
    store = models_dir or _models_dir()
    size = _download_size(name, expected_size, store if server.host.is_local else None)
    disk = _check_disk(server, store, size, disk_free, already_installed=installed is not None)
    emit(PullPlan(model=name, download_bytes=size.total, size_source=size.source, disk=disk))
    start = time.monotonic()
    layers = _stream(server, name, emit)
    after = server.find(name)
    notes = (size.note,) if size.note else () if disk.checked else (disk.reason,)
    return PullResult(
        model=name, host=server.host.native, action="pulled", download_bytes=size.total, size_source=size.source,
        disk=disk, layers=tuple(layers.values()), downloaded_bytes=sum(s.size or 0 for s in layers.values()
                                                                        if not s.reused),
        seconds=time.monotonic() - start, size=after.size if after else None, digest=after.digest if after else None,
        notes=notes,
    )


def _models_dir() -> Path:
    from localcodex.paths import ollama_models_dir

    return ollama_models_dir()


# -- before the pull -------------------------------------------------------------------------------------------


def catalog_size(name: str) -> tuple[int, int] | None:
    """The download size the packaged catalog knows for `name` — its figure and the largest size that
    rounds to it (ollama.com shows "17GB") — or None when the model is not in the catalog."""
    from localcodex.domain.catalog import load_catalog

    entry = load_catalog().get(name)
    if entry is None or not entry.download_bytes:
        return None
    return entry.download_bytes, max(entry.download_bytes, entry.download_bytes_max)


def _download_size(name: str, expected: int | None, local_store: Path | None) -> _Size:
    if expected is not None:
        return _Size(expected, "given", None)
    known = catalog_size(name)
    if known is not None:
        return _Size(known[0], "catalog", None, upper=known[1])
    from localcodex.adapters.registry import lookup_manifest

    found = lookup_manifest(name)
    if found.size is None:
        return _Size(None, "unknown", None, f"download size unknown: {found.error} ({found.url})")
    missing = None
    if local_store is not None:
        from localcodex.adapters.ollama_store import has_blob

        missing = sum(layer.size for layer in found.layers if not has_blob(local_store, layer.digest))
    return _Size(found.size, "registry", missing)


def _check_disk(
    server: OllamaServer, store: Path, size: _Size, disk_free: int | None, *, already_installed: bool
) -> DiskCheck:
    if not server.host.is_local and disk_free is None:
        return DiskCheck(False, None, None, size.total,
                         f"disk not checked: the server at {server.host.native} is on another machine")
    needed = size.missing if size.missing is not None else (size.upper or size.total)
    if needed is None:
        return DiskCheck(False, str(store), disk_free, None, "disk not checked: the download size is unknown")
    if already_installed and size.missing is None:
        return DiskCheck(False, str(store), disk_free, needed,
                         "disk not checked: the model is on disk already, only changed layers download")
    where, free = str(store), disk_free
    if free is None:
        from localcodex.adapters.ollama_store import free_disk

        measured_at, free = free_disk(store)
        where = str(measured_at)
    amount = format_bytes(needed, decimal=True)
    if size.upper and size.total and size.upper > size.total and needed == size.upper:
        amount = f"{format_bytes(size.total, decimal=True)} (at most {amount})"
    reason = f"{amount} to download, {format_bytes(free, decimal=True)} free in {store}"
    if needed > free:
        raise NoFit(
            f"not enough disk for the download: {reason}",
            f"free {format_bytes(needed - free, decimal=True)} or more in {store} (or move Ollama's models with "
            "OLLAMA_MODELS), or pick a smaller model (`localcodex recommend`)",
            data={"needed": needed, "free": free, "path": where},
        )
    return DiskCheck(True, where, free, needed, reason)


# -- the pull stream -------------------------------------------------------------------------------------------


def classify(status: str) -> Phase:
    """Map one of Ollama's pull statuses to a phase.

    >>> [classify(s) for s in ("pulling manifest", "pulling 6a0746a1ec1a", "verifying sha256 digest")]
    ['manifest', 'layer', 'verify']
    >>> [classify(s) for s in ("writing manifest", "removing unused layers", "success", "something new")]
    ['write', 'cleanup', 'success', 'status']
    """
    text = status.strip().lower()
    if text == "pulling manifest":
        return "manifest"
    if text.startswith("pulling "):
        return "layer"
    if text.startswith("verifying"):
        return "verify"
    if text.startswith("writing"):
        return "write"
    if text.startswith("removing"):
        return "cleanup"
    if text == "success":
        return "success"
    return "status"


def _stream(server: OllamaServer, name: str, emit: ProgressCallback) -> dict[str, LayerSummary]:
    layers: dict[str, LayerSummary] = {}
    stream = server.pull(name)
    close = getattr(stream, "close", lambda: None)  # a generator: closing it ends the HTTP stream
    finished = False
    try:
        for part in stream:
            event = PullEvent(classify(part.status), part.status, part.digest, part.total, part.completed)
            finished = finished or event.phase == "success"
            if event.phase == "layer":
                key = event.digest or event.status
                if key not in layers:  # first sight: a blob already on disk arrives complete in one line
                    reused = bool(event.total) and event.completed == event.total
                    layers[key] = LayerSummary(key, event.total, reused)
                elif event.total and layers[key].size != event.total:
                    layers[key] = LayerSummary(key, event.total, layers[key].reused)
            emit(event)
    except KeyboardInterrupt:
        close()
        raise LocalcodexError(
            f"pull of {name} interrupted", RESUME_NOTE, code="interrupted", exit_code=ExitCode.INTERRUPTED
        ) from None
    except ServerError as err:
        close()
        raise pull_failure(server, name, err) from err
    if not finished:
        raise ServerError(f"the pull of {name} ended before Ollama at {server.host.native} reported success",
                          f"{RESUME_NOTE}; if it keeps happening, see the Ollama server log")
    return layers


def server_reason(err: LocalcodexError) -> str:
    """The server's own words for a failure: the `error` field the client read, else our message."""
    reason = getattr(err.__cause__, "error", None)
    return str(reason).strip() if reason else err.message


def pull_failure(server: OllamaServer, name: str, err: ServerError) -> LocalcodexError:
    """One clear error for a pull the server gave up on, classified by its reason."""
    url = server.host.native
    if getattr(err.__cause__, "error", None) is None:  # not the server's words: the connection itself failed
        return ServerError(err.message, RESUME_NOTE)
    reason = server_reason(err)
    low = reason.lower()
    if "file does not exist" in low or "manifest unknown" in low:
        return NotFound(
            f"{name} is not in the registry (Ollama at {url}: {reason})",
            "check the name and tag on https://ollama.com/library, or list what fits with `localcodex recommend`",
        )
    if any(marker in low for marker in OFFLINE_MARKERS):
        return Offline(f"Ollama at {url} cannot reach the model registry: {reason}", AIRGAP_HINT)
    if "no space left" in low or "disk full" in low:
        return NoFit(f"the disk filled up while pulling {name}: {reason}",
                     f"free disk space where Ollama keeps models, then {RESUME_NOTE}")
    if "newer version of ollama" in low or ": 412:" in low:
        return ServerError(f"{name} needs a newer Ollama than the one at {url}: {reason}",
                           "update Ollama (https://ollama.com/download), then pull again")
    if "invalid model name" in low:
        return ServerError(f"Ollama at {url} rejected the name {name!r}: {reason}",
                           "use a name such as `qwen3.5:27b`")
    return ServerError(f"pull of {name} failed: Ollama at {url} said: {reason}",
                       f"{RESUME_NOTE}; if it keeps failing, see the Ollama server log")
