"""Bundles of the emulator's big models: their blobs hash to their digests, so the README's air-gapped example
(export on a connected machine, import-bundle and setup on one without a registry) completes on them."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
from pathlib import Path

import pytest
from emulator import digests, preset_models
from emulator.models import MEDIA_MODEL, blob_specs, sparse_weights

from localcodex.adapters.ollama import OllamaServer

REPO = Path(__file__).resolve().parent.parent
GiB = 2**30


def preset(name: str):
    return next(m for m in preset_models() if m.name == name)


def readme_air_gapped_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Offline and air-gapped machines"):]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while piece := fh.read(1 << 22):
            sha.update(piece)
    return "sha256:" + sha.hexdigest()


def test_every_preset_blob_hashes_to_its_digest_and_the_big_ones_are_looked_up() -> None:
    """The committed table answers for every preset (an install never hashes gigabytes), and what it says is the
    sha256 of the content: checked here in full on the smallest sparse preset."""
    for model in preset_models():
        sparse = sparse_weights(model)
        if sparse is None:
            continue
        head, size = sparse
        data = head.rstrip(b"\0")
        wanted = digests.key(hashlib.sha256(data).hexdigest(), len(data), size)
        assert wanted in digests._read(digests.TABLE), f"run `python -m emulator.digests` (in tests/): {model.name}"
    small = preset("qwen3:0.6b")
    head, size = sparse_weights(small)
    sha = hashlib.sha256(head)
    digests.feed_zeros(sha, size - len(head))
    layers, _config = blob_specs(small)
    assert layers[0].media_type == MEDIA_MODEL and layers[0].digest == "sha256:" + sha.hexdigest()


def test_an_installed_model_reads_back_as_its_digests(emulator_factory, tmp_path: Path) -> None:
    model = dataclasses.replace(preset("qwen3:0.6b"), name="small:1", size=40_000_000)
    emu = emulator_factory(installed=[model], models_dir=tmp_path / "m")
    item = emu.store.find("small:1")
    for layer in [item.manifest["config"], *item.layers]:
        assert sha256_of(emu.store.blob_path(layer["digest"])) == layer["digest"]
        assert digests.hash_file(emu.store.blob_path(layer["digest"])) == layer["digest"]


def test_content_hasher_matches_hashlib_on_zero_runs_anywhere() -> None:
    for pieces in ([b"ab", bytes(70000), b"c", bytes(5)], [bytes(10)], [b"x\0\0", bytes(100000)], [b""]):
        hasher = digests.ContentHasher()
        for piece in pieces:
            hasher.update(piece)
        assert hasher.digest() == "sha256:" + hashlib.sha256(b"".join(pieces)).hexdigest()


def test_a_pull_fails_on_a_blob_that_does_not_match_its_digest(cli, emulator_factory, tmp_path: Path) -> None:
    """Ollama verifies every blob after a download; a damaged one is deleted and the pull fails."""
    model = dataclasses.replace(preset("qwen3:0.6b"), name="small:1", size=30_000_000)
    emu = emulator_factory(registry=[model], models_dir=tmp_path / "m")
    layers, _config = blob_specs(model)
    bad = emu.store.blob_path(layers[0].digest)
    bad.write_bytes(b"not the model")
    with bad.open("r+b") as fh:
        fh.truncate(layers[0].size)
    result = cli("pull", "small:1", "--host", emu.url)
    assert result.code != 0 and "digest mismatch" in result.stderr
    assert not bad.exists() and emu.store.find("small:1") is None


def test_the_readme_air_gapped_example_completes_on_an_emulator_model(
    cli, emulator_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's commands, run as written (plus --yes: no terminal here) with the README's tag. The model is
    the preset's qwen3.5:27b (its real header and shape) at 300 MB instead of 17 GB, so the suite stays fast;
    the full-size run is timed in the note (scripts/bundle_timing or by hand)."""
    commands = readme_air_gapped_commands()
    assert [c[:3] for c in commands] == [["localcodex", "models", "export"], ["localcodex", "models", "import-bundle"],
                                         ["localcodex", "setup", "--model"]]
    tag = commands[0][3]
    model = dataclasses.replace(preset(tag), size=300_000_000)
    connected = emulator_factory(installed=[model], models_dir=tmp_path / "connected", vram_bytes=24 * GiB)
    airgapped = emulator_factory(registry=[], models_dir=tmp_path / "airgapped", vram_bytes=24 * GiB)
    monkeypatch.chdir(tmp_path)

    monkeypatch.setenv("OLLAMA_MODELS", str(connected.models_dir))
    monkeypatch.setenv("OLLAMA_HOST", connected.url)
    exported = cli(*commands[0][1:])
    assert exported.code == 0, exported.output
    bundle = tmp_path / commands[0][commands[0].index("--to") + 1]
    assert bundle.stat().st_size >= 300_000_000
    assert bundle.stat().st_blocks * 512 < 50_000_000  # the zeros of the weights are holes, not written disk

    monkeypatch.setenv("OLLAMA_MODELS", str(airgapped.models_dir))
    monkeypatch.setenv("OLLAMA_HOST", airgapped.url)
    imported = cli(*commands[1][1:])
    assert imported.code == 0, imported.output
    assert re.search(rf"installed {re.escape(tag)}", imported.stdout) and "verified" in imported.stdout
    done = cli(*commands[2][1:], "--yes", "--vram", "24GiB", "--no-bench")
    assert done.code == 0, done.output
    assert not [r for r in airgapped.requests if r.path == "/api/pull"]  # nothing was downloaded
    assert (Path.home() / ".codex" / "local_ollama.config.toml").is_file()


def test_a_damaged_bundle_of_an_emulator_model_is_refused(cli, emulator_factory, tmp_path: Path) -> None:
    model = dataclasses.replace(preset("qwen3:0.6b"), name="small:1", size=20_000_000)
    connected = emulator_factory(installed=[model], models_dir=tmp_path / "connected")
    airgapped = emulator_factory(registry=[], models_dir=tmp_path / "airgapped")
    bundle = tmp_path / "small.tar"
    assert cli("models", "export", "small:1", "--to", str(bundle), "--models-dir", str(connected.models_dir)).code == 0
    with bundle.open("r+b") as fh:  # one byte in the zeros of the weights
        fh.seek(bundle.stat().st_size - 4 * 1024 * 1024)
        fh.write(b"\1")
    result = cli("models", "import-bundle", str(bundle), "--host", airgapped.url)
    assert result.code != 0 and "does not match its checksum" in result.stderr
    assert OllamaServer(airgapped.url).find("small:1") is None


def test_emulator_without_flags_serves_setup(cli, tmp_path: Path) -> None:
    """`scripts/ollama-emulator` with no flags (CPU only, nothing installed) and `localcodex setup --yes`."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("ollama_emulator_script", str(REPO / "scripts" / "ollama-emulator"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    script = importlib.util.module_from_spec(spec)
    loader.exec_module(script)
    args = script.parse_args([])
    args.port, args.models_dir = 0, tmp_path / "models"  # where it listens and keeps its models,
    args.decode_rate, args.prompt_rate, args.load_time, args.pull_rate = 2000.0, 1e5, 0.0, 2e11  # and how fast
    with script.build(args) as emu:
        result = cli("setup", "--yes", "--host", emu.url)
        assert result.code == 0, result.output
        assert [m.name.display for m in emu.store.list()]
