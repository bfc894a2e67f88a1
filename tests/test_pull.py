"""`localcodex pull` against the emulator: the disk check before any byte moves, progress for people (live and
plain) and machines (JSON lines), every way a pull can end (unknown model, registry unreachable, disk full,
a failure halfway, server down, Ctrl-C), and already-installed models."""

from __future__ import annotations

import io
import json
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from emulator import Fault, preset_models
from emulator.models import blob_specs

from localcodex.adapters.ollama import OllamaServer
from localcodex.core.pull import PullEvent, PullPlan, classify, pull
from localcodex.domain.catalog import load_catalog as REAL_CATALOG
from localcodex.errors import ExitCode, LocalcodexError, NoFit, NotFound, Offline, ServerError, UsageError

QWEN = "qwen3.5:27b"
QWEN_SIZE = 17_383_020_544  # the emulator's preset: all layers + config
TINY = "tiny-coder:1b"


def preset(name: str):
    return next(m for m in preset_models() if m.name == name)


# -- a fake registry on loopback (the emulator serves Ollama's API, not the registry's) ------------------------


class _Registry(BaseHTTPRequestHandler):
    manifests: ClassVar[dict[str, bytes]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = self.manifests.get(self.path)
        if body is None or "manifest.v2+json" not in self.headers.get("Accept", ""):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def no_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the packaged catalog knows no model, so the size must come from the registry."""
    import localcodex.domain.catalog

    empty = types.SimpleNamespace(get=lambda name: None)
    monkeypatch.setattr(localcodex.domain.catalog, "load_catalog", lambda: empty)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, no_catalog: None) -> Iterator[type[_Registry]]:
    """Serves `/v2/<ns>/<model>/manifests/<tag>` for every emulator preset, built the way the emulator builds
    the models it pulls (same digests and sizes); `LOCALCODEX_REGISTRY` points at it. The catalog is hidden."""
    handler = type("Registry", (_Registry,), {"manifests": {}, "hits": []})
    for model in preset_models():
        layers, config = blob_specs(model)
        doc = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": config.descriptor(), "layers": [spec.descriptor() for spec in layers]}
        base, tag = model.name.split(":")
        handler.manifests[f"/v2/library/{base}/manifests/{tag}"] = json.dumps(doc).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("LOCALCODEX_REGISTRY", f"http://127.0.0.1:{server.server_address[1]}")
    yield handler
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_real_registry(monkeypatch: pytest.MonkeyPatch, dead_url: str) -> None:
    """Never ask the real registry from a test: unless `registry` is used, the lookup fails fast."""
    monkeypatch.setenv("LOCALCODEX_REGISTRY", dead_url)


def pulls(emu) -> list:
    return [r for r in emu.requests if r.path == "/api/pull"]


def installed(emu) -> set[str]:
    return {m.name for m in OllamaServer(emu.url).list()}


# -- pure pieces ---------------------------------------------------------------------------------------------


def test_statuses_map_to_phases() -> None:
    assert classify("pulling manifest") == "manifest"
    assert classify("pulling 6a0746a1ec1a") == "layer"
    assert classify("pulling model") == "layer"  # safetensors models report one aggregate
    assert [classify(s) for s in ("verifying sha256 digest", "writing manifest", "removing any unused layers",
                                  "success")] == ["verify", "write", "cleanup", "success"]


# -- the disk check ------------------------------------------------------------------------------------------


def test_too_little_disk_refuses_before_any_byte(emulator, registry, tmp_path: Path) -> None:
    server = OllamaServer(emulator.url)
    with pytest.raises(NoFit) as err:
        pull(server, QWEN, disk_free=5_000_000_000)
    assert "not enough disk" in err.value.message
    assert "17.4 GB to download" in err.value.message and "5.0 GB free" in err.value.message
    assert err.value.exit_code == ExitCode.NO_FIT
    assert pulls(emulator) == []  # Ollama was never asked to download
    assert not any((emulator.models_dir / "blobs").glob("*partial*"))
    assert registry.hits == ["/v2/library/qwen3.5/manifests/27b"]


def test_enough_disk_pulls_and_reports_the_registry_size(emulator_factory, registry) -> None:
    emu = emulator_factory(pull_rate=1e12)
    seen: list = []
    result = pull(OllamaServer(emu.url), QWEN, disk_free=50_000_000_000, on_progress=seen.append)
    assert result.action == "pulled" and result.size_source == "registry"
    assert result.download_bytes == QWEN_SIZE == result.size
    assert result.disk is not None and result.disk.checked and result.disk.needed == QWEN_SIZE
    assert isinstance(seen[0], PullPlan) and seen[0].download_bytes == QWEN_SIZE
    assert QWEN in installed(emu)


def test_the_measured_disk_is_where_ollama_keeps_models(emulator_factory, registry, monkeypatch) -> None:
    """Without an override, free space is measured in OLLAMA_MODELS (a folder that may not exist yet)."""
    from localcodex.adapters import ollama_store

    measured: list[Path] = []
    monkeypatch.setattr(ollama_store, "free_disk", lambda p: (measured.append(p) or p, 1_000))
    emu = emulator_factory()
    with pytest.raises(NoFit):
        pull(OllamaServer(emu.url), QWEN)
    from localcodex.paths import ollama_models_dir

    assert measured == [ollama_models_dir()]


def test_size_unknown_pulls_anyway_and_says_the_disk_was_not_checked(emulator) -> None:
    result = pull(OllamaServer(emulator.url), TINY)  # the registry is unreachable in this test
    assert result.action == "pulled" and result.download_bytes is None and result.size_source == "unknown"
    assert result.disk is not None and not result.disk.checked
    assert any("download size unknown: registry not reachable" in n for n in result.notes)
    assert "disk not checked" in result.disk.reason


def test_catalog_size_is_used_without_asking_the_registry(emulator, dead_url, monkeypatch) -> None:
    """qwen3.5:27b is in the packaged catalog as "17GB": the check counts the most that rounds to it."""
    asked: list[str] = []
    from localcodex.adapters import registry as registry_adapter

    monkeypatch.setattr(registry_adapter, "lookup_manifest", lambda name, **kw: asked.append(name))
    with pytest.raises(NoFit) as err:
        pull(OllamaServer(emulator.url), QWEN, disk_free=17_200_000_000)
    assert "17.0 GB (at most 17.5 GB) to download, 17.2 GB free" in err.value.message
    assert asked == [] and pulls(emulator) == []
    result = pull(OllamaServer(emulator.url), QWEN, disk_free=17_600_000_000)
    assert result.size_source == "catalog" and result.download_bytes == 17_000_000_000 and result.disk.checked


def test_a_model_missing_from_the_catalog_falls_back_to_the_registry(emulator, registry, monkeypatch) -> None:
    import localcodex.domain.catalog

    monkeypatch.setattr(localcodex.domain.catalog, "load_catalog", REAL_CATALOG)  # not the fixture's empty one
    assert REAL_CATALOG().get(TINY) is None and REAL_CATALOG().get(QWEN) is not None
    with pytest.raises(NoFit):
        pull(OllamaServer(emulator.url), TINY, disk_free=1)
    assert registry.hits == ["/v2/library/tiny-coder/manifests/1b"]


def test_remote_server_disk_is_not_checked() -> None:
    from localcodex.core.pull import _check_disk, _Size

    server = OllamaServer("http://gpu-box.lan:11434")
    check = _check_disk(server, Path("/nowhere"), _Size(10**12, "registry", None), None, already_installed=False)
    assert not check.checked and "another machine" in check.reason


def test_blobs_already_on_disk_do_not_count(emulator_factory, registry) -> None:
    """Re-pulling an installed model needs no new disk: every blob is in the local store."""
    emu = emulator_factory(installed=[preset(QWEN)])
    result = pull(OllamaServer(emu.url), QWEN, force=True, disk_free=1, models_dir=emu.models_dir)
    assert result.disk is not None and result.disk.checked and result.disk.needed == 0
    assert all(layer.reused for layer in result.layers) and result.downloaded_bytes == 0


# -- through the CLI: progress for people and machines ---------------------------------------------------------


def test_cli_plain_progress_is_throttled(cli, emulator_factory, registry, monkeypatch) -> None:
    from localcodex.adapters import ollama_store

    monkeypatch.setattr(ollama_store, "free_disk", lambda p: (p, 10**12))
    emu = emulator_factory(pull_rate=QWEN_SIZE / 1.5)  # ~25 progress lines of 60 ms for the big layer
    result = cli("pull", QWEN, "--host", emu.url)
    assert result.code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"pulling {QWEN}: 17.4 GB (registry); 17.4 GB to download, 1.0 TB free")
    big = [line for line in lines if "GB / 17.4 GB" in line]
    assert 2 <= len(big) <= 11  # a line per 10 % at most, not one per 60 ms event
    assert "  17.4 GB  done  " in result.stderr  # the layer's last line, whatever Ollama's last tick said
    assert "verifying sha256 digest" in lines and "writing manifest" in lines
    assert len(lines) < 30
    assert result.stdout.startswith(f"pulled {QWEN}: 17.4 GB on disk, 17.4 GB downloaded in ")
    assert QWEN in installed(emu)


def test_cli_json_events_and_envelope(cli, emulator_factory, registry, monkeypatch) -> None:
    from localcodex.adapters import ollama_store

    monkeypatch.setattr(ollama_store, "free_disk", lambda p: (p, 10**12))
    emu = emulator_factory(pull_rate=QWEN_SIZE / 1.0)
    result = cli("pull", QWEN, "--host", emu.url, "--json")
    assert result.code == 0, result.output
    doc = result.json()
    assert doc["status"] == "ok" and doc["command"] == "pull"
    assert doc["data"]["action"] == "pulled" and doc["data"]["download_bytes"] == QWEN_SIZE
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events[0]["event"] == "plan" and events[0]["disk"]["checked"] is True
    phases = [e["phase"] for e in events[1:]]
    assert phases[0] == "manifest" and phases[-3:] == ["verify", "write", "success"]
    big = [e for e in events if e.get("total") and e["total"] > 10**10]
    assert 2 <= len(big) <= 6  # throttled to ~2 a second (+ the last one)


def test_rich_live_display_on_a_terminal(emulator_factory, registry) -> None:
    from rich.console import Console

    from localcodex.render.progress import RichPullProgress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    emu = emulator_factory(pull_rate=QWEN_SIZE / 1.2)
    with RichPullProgress(console, refresh_per_second=20) as display:
        pull(OllamaServer(emu.url), QWEN, disk_free=10**12, on_progress=display)
    text = buffer.getvalue()
    layers, config = blob_specs(preset(QWEN))
    for spec in [*layers, config]:
        assert spec.digest[7:19] in text  # one row per layer
    assert "17.4 GB" in text and ("MB/s" in text or "GB/s" in text)
    assert "pulling manifest" in text and "verifying sha256 digest" in text and "writing manifest" in text
    assert "✓" in text
    assert "\x1b[" in text  # redrawn in place, as a live display does


def test_cli_already_installed_does_nothing(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)])
    result = cli("pull", TINY, "--host", emu.url)
    assert result.code == 0
    assert "already installed" in result.stderr and "--force" in result.stderr
    assert pulls(emu) == []


def test_cli_force_pulls_again(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)])
    result = cli("pull", TINY, "--host", emu.url, "--force")
    assert result.code == 0, result.output
    assert len(pulls(emu)) == 1
    assert "already on disk" in result.stderr


# -- how pulls end badly -------------------------------------------------------------------------------------


def test_unknown_model(cli, emulator) -> None:
    result = cli("pull", "no-such-model:1b", "--host", emulator.url)
    assert result.code == ExitCode.NOT_FOUND
    assert "no-such-model:1b is not in the registry" in result.stderr
    assert "pull model manifest: file does not exist" in result.stderr
    assert "ollama.com/library" in result.stderr


def test_malformed_name_is_refused_before_asking_anything(cli, emulator) -> None:
    result = cli("pull", "not a name", "--host", emulator.url)
    assert result.code == ExitCode.USAGE and "invalid model name" in result.stderr
    assert emulator.requests == []


def test_server_down(cli, dead_url) -> None:
    result = cli("pull", TINY, "--host", dead_url)
    assert result.code == ExitCode.OLLAMA_UNAVAILABLE
    assert f"cannot reach Ollama at {dead_url}" in result.stderr
    assert "ollama serve" in result.stderr


def test_failure_halfway_gives_one_clear_message_and_resumes(cli, emulator_factory) -> None:
    emu = emulator_factory(pull_rate=QWEN_SIZE / 1.0)
    emu.inject(Fault("pull_fail", path="/api/pull"))
    first = cli("pull", QWEN, "--host", emu.url)
    assert first.code == ExitCode.SERVER_ERROR
    errors = [line for line in first.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: pull of {QWEN} failed: Ollama at {emu.url} said: max retries exceeded: unexpected EOF"]
    assert "resume" in first.stderr
    seen: list = []
    pull(OllamaServer(emu.url), QWEN, on_progress=seen.append)
    firsts = {}
    for event in seen:
        if isinstance(event, PullEvent) and event.phase == "layer":
            firsts.setdefault(event.digest, event)
    big = max(firsts.values(), key=lambda e: e.total or 0)
    assert (big.completed or 0) >= QWEN_SIZE // 3  # resumed from the partial download, not from zero


def test_connection_lost_in_the_middle(cli, emulator_factory) -> None:
    emu = emulator_factory(pull_rate=QWEN_SIZE / 0.5)
    emu.inject(Fault("reset", path="/api/pull", after=3))
    result = cli("pull", QWEN, "--host", emu.url)
    assert result.code == ExitCode.SERVER_ERROR
    text = " ".join(result.stderr.split())
    assert f"the connection to Ollama at {emu.url} broke" in text and "resume" in text
    assert QWEN not in installed(emu)


def test_disk_full_in_the_middle(cli, emulator_factory) -> None:
    emu = emulator_factory(pull_rate=QWEN_SIZE / 0.5)
    emu.inject(Fault("disk_full", path="/api/pull"))
    result = cli("pull", QWEN, "--host", emu.url)
    assert result.code == ExitCode.NO_FIT
    text = " ".join(result.stderr.split())  # long paths wrap
    assert "the disk filled up while pulling" in text and "no space left on device" in text


@pytest.mark.parametrize("reason", [
    'pull model manifest: Get "https://registry.ollama.ai/v2/library/qwen3.5/manifests/27b": '
    "dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: no such host",
    "Get \"https://registry.ollama.ai/v2/\": dial tcp 104.21.75.227:443: i/o timeout",
    "dial tcp [2606:4700::6812:1]:443: connect: network is unreachable",
])
def test_registry_unreachable_points_to_the_airgapped_import(cli, emulator, reason: str) -> None:
    emulator.inject(Fault("pull_fail", path="/api/pull", after=0, message=reason))
    result = cli("pull", TINY, "--host", emulator.url)
    assert result.code == ExitCode.OFFLINE
    assert "cannot reach the model registry" in result.stderr
    assert "localcodex models import" in result.stderr and "import-bundle" in result.stderr


def test_error_classes() -> None:
    """Each classified failure carries its own exit code (what scripts branch on)."""
    assert NotFound.exit_code == ExitCode.NOT_FOUND and Offline.exit_code == ExitCode.OFFLINE
    assert NoFit.exit_code == ExitCode.NO_FIT and ServerError.exit_code == ExitCode.SERVER_ERROR
    assert UsageError.exit_code == ExitCode.USAGE


# -- Ctrl-C --------------------------------------------------------------------------------------------------


def test_ctrl_c_closes_the_stream_and_says_rerun_resumes(emulator_factory) -> None:
    emu = emulator_factory(pull_rate=QWEN_SIZE / 3.0)
    events: list = []

    def on_progress(event) -> None:
        events.append(event)
        if isinstance(event, PullEvent) and event.phase == "layer" and (event.completed or 0) > 10**9:
            raise KeyboardInterrupt

    with pytest.raises(LocalcodexError) as err:
        pull(OllamaServer(emu.url), QWEN, on_progress=on_progress)
    assert err.value.exit_code == ExitCode.INTERRUPTED == 130
    assert "resume" in (err.value.hint or "")
    partial = next((emu.models_dir / "blobs").glob("*-partial"))
    time.sleep(0.3)  # the emulator notices the closed connection at its next 60 ms line
    size = partial.stat().st_size
    time.sleep(0.4)
    assert partial.stat().st_size == size  # nothing is downloading any more
    assert QWEN not in installed(emu)


def test_ctrl_c_through_the_cli_exits_130(cli, emulator_factory, monkeypatch) -> None:
    from localcodex.render import progress

    def interrupt(self, event) -> None:
        if isinstance(event, PullEvent) and event.phase == "layer":
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.PlainPullProgress, "__call__", interrupt)
    emu = emulator_factory(pull_rate=QWEN_SIZE / 2.0)
    result = cli("pull", QWEN, "--host", emu.url)
    assert result.code == 130
    assert f"pull of {QWEN} interrupted" in result.stderr and "resume" in result.stderr
