"""`localcodex models …` against the emulator: context variants (created, verified in /api/ps, idempotent,
spill warnings, old servers), the installed list, GGUF import with a real model file, and bundles moved between
two emulators with separate model folders."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import pytest
from emulator import preset_models
from test_gguf import SMOLLM2, needs_smollm2

from localcodex.adapters.ollama import OllamaServer, RunningModel
from localcodex.core.variant import ensure_variant, variant_name, verify_variant, weights_blob
from localcodex.errors import ExitCode, NotFound, UsageError

GiB = 1024**3
QWEN, TINY = "qwen3.5:27b", "tiny-coder:1b"


def preset(name: str):
    return next(m for m in preset_models() if m.name == name)


def creates(emu) -> list:
    return [r for r in emu.requests if r.method == "POST" and r.path == "/api/create"]


def uploads(emu) -> list:
    return [r for r in emu.requests if r.method == "POST" and r.path.startswith("/api/blobs/")]


# -- variant names -------------------------------------------------------------------------------------------


def test_variant_names_are_predictable() -> None:
    assert variant_name("qwen3.5:27b", 65536) == "qwen3.5:27b-ctx64k"
    assert variant_name("qwen3.5:27b", 131072) == "qwen3.5:27b-ctx128k"
    assert variant_name("QWEN3.5:27b", 65536) == "QWEN3.5:27b-ctx64k"
    assert variant_name("library/qwen3.5:27b", 65536) == "qwen3.5:27b-ctx64k"
    assert variant_name("qwen3.5", 40000) == "qwen3.5:latest-ctx40000"
    assert variant_name("me/coder:q8", 24576) == "me/coder:q8-ctx24k"
    assert variant_name(variant_name("qwen3.5:27b", 32768), 65536) == "qwen3.5:27b-ctx64k"


@pytest.mark.parametrize("bad", [0, -1])
def test_variant_needs_a_positive_context(bad: int) -> None:
    with pytest.raises(UsageError):
        variant_name("qwen3.5:27b", bad)


def test_variant_tag_too_long() -> None:
    with pytest.raises(UsageError, match="longer than Ollama allows"):
        variant_name("m:" + "t" * 78, 65536)


# -- ensure_variant / verify_variant -------------------------------------------------------------------------


def test_variant_created_keeps_base_parameters_and_is_idempotent(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(QWEN)], vram_bytes=80 * GiB)
    server = OllamaServer(emu.url)
    first = ensure_variant(server, QWEN, 65536)
    assert (first.name, first.action, first.trained_context) == ("qwen3.5:27b-ctx64k", "created", 262144)
    shown = server.show(first.name)
    assert shown.num_ctx == 65536
    base = server.show(QWEN)
    for key in ("presence_penalty", "temperature", "top_k", "top_p"):
        assert shown.parameters[key] == base.parameters[key]  # the base's other parameters are kept
    assert weights_blob(shown) == weights_blob(base) is not None  # same weights, no copy
    assert shown.capabilities == base.capabilities
    assert len(creates(emu)) == 1
    second = ensure_variant(server, QWEN, 65536)
    assert second.action == "unchanged" and second.name == first.name
    assert len(creates(emu)) == 1  # the second call sent no /api/create


def test_a_pinned_batch_is_part_of_the_variant(emulator_factory) -> None:
    """setup passes the fit engine's pinned num_batch; a different batch makes the variant stale."""
    emu = emulator_factory(installed=[preset(QWEN)])
    server = OllamaServer(emu.url)
    made = ensure_variant(server, QWEN, 65536, num_batch=512)
    assert made.action == "created" and server.show(made.name).parameters["num_batch"] == "512"
    assert ensure_variant(server, QWEN, 65536, num_batch=512).action == "unchanged"
    assert ensure_variant(server, QWEN, 65536, num_batch=256).action == "updated"
    assert len(creates(emu)) == 2


def test_a_stale_variant_is_recreated(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(QWEN)], vram_bytes=80 * GiB)
    server = OllamaServer(emu.url)
    list(server.create("qwen3.5:27b-ctx64k", from_=QWEN, parameters={"num_ctx": 65536, "temperature": 0.1}))
    result = ensure_variant(server, QWEN, 65536)
    assert result.action == "updated"
    assert server.show(result.name).parameters["temperature"] == "1"


def test_verify_reads_the_loaded_context_from_ps(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(QWEN)], vram_bytes=80 * GiB)
    server = OllamaServer(emu.url)
    name = ensure_variant(server, QWEN, 65536).name
    check = verify_variant(server, name, 65536)
    assert check.status == "ok" and check.context_length == 65536
    assert check.size and check.size_vram == check.size and check.warnings == ()
    generate = [r for r in emu.requests if r.path == "/api/generate"]
    assert len(generate) == 1 and "num_ctx" not in (generate[0].json.get("options") or {})


def test_verify_warns_when_the_model_spills_to_cpu(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(QWEN)], vram_bytes=12 * GiB)
    server = OllamaServer(emu.url)
    name = ensure_variant(server, QWEN, 32768).name
    check = verify_variant(server, name, 32768)
    assert check.status == "ok"
    assert check.size_vram == 12 * GiB < (check.size or 0)
    assert len(check.warnings) == 1 and "spilled" in check.warnings[0] and "to the CPU" in check.warnings[0]


def test_verify_on_a_cpu_only_machine(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)], vram_bytes=0)
    server = OllamaServer(emu.url)
    check = verify_variant(server, ensure_variant(server, TINY, 8192).name, 8192)
    assert check.status == "ok" and check.size_vram == 0
    assert "entirely on the CPU" in check.warnings[0]


def test_old_server_cannot_verify(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)], vram_bytes=8 * GiB, version="0.9.6")
    server = OllamaServer(emu.url)
    check = verify_variant(server, ensure_variant(server, TINY, 8192).name, 8192)
    assert check.status == "unverifiable" and check.context_length is None
    assert "cannot be verified" in check.message


def test_context_beyond_training_is_refused(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)])
    with pytest.raises(UsageError, match="trained for 8192 tokens"):
        ensure_variant(OllamaServer(emu.url), TINY, 16384)
    assert creates(emu) == []


def test_variant_of_a_model_not_installed(emulator) -> None:
    with pytest.raises(NotFound) as err:
        ensure_variant(OllamaServer(emulator.url), QWEN, 65536)
    assert "localcodex pull qwen3.5:27b" in (err.value.hint or "")


def test_small_context_warns_for_codex(emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)])
    result = ensure_variant(OllamaServer(emu.url), TINY, 4096)
    assert any("Codex" in w for w in result.warnings)


# -- `models context` through the CLI ------------------------------------------------------------------------


def test_cli_context_creates_verifies_and_then_reuses(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(QWEN)], vram_bytes=80 * GiB)
    first = cli("models", "context", QWEN, "--ctx", "65536", "--host", emu.url)
    assert first.code == 0, first.output
    assert "created qwen3.5:27b-ctx64k (from qwen3.5:27b, num_ctx 65536)" in first.stdout
    assert "verify: ok: qwen3.5:27b-ctx64k loaded with 65536 tokens of context" in first.stdout
    assert "all in VRAM" in first.stdout
    second = cli("models", "context", QWEN, "--ctx", "65536", "--host", emu.url, "--json")
    doc = second.json()
    assert second.code == 0 and doc["data"]["variant"]["action"] == "unchanged"
    assert doc["data"]["verification"]["status"] == "ok" and doc["data"]["verification"]["context_length"] == 65536
    assert len(creates(emu)) == 1


def test_cli_context_spill_is_a_warning_not_a_failure(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(QWEN)], vram_bytes=12 * GiB)
    result = cli("models", "context", QWEN, "--ctx", "32768", "--host", emu.url, "--json")
    assert result.code == 0
    assert any("spilled" in w for w in result.json()["warnings"])


def test_cli_context_no_verify_loads_nothing(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)])
    result = cli("models", "context", TINY, "--ctx", "8192", "--no-verify", "--host", emu.url)
    assert result.code == 0 and "verify" not in result.stdout
    assert not [r for r in emu.requests if r.path in ("/api/generate", "/api/chat")]


def test_cli_context_mismatch_fails_the_check(cli, emulator_factory, monkeypatch) -> None:
    """A server that loads the model with another context than it carries: exit 6, the numbers named."""
    emu = emulator_factory(installed=[preset(TINY)])
    monkeypatch.setattr(OllamaServer, "ps", lambda self: [RunningModel("tiny-coder:1b-ctx8k", 10, 10, 4096)])
    result = cli("models", "context", TINY, "--ctx", "8192", "--host", emu.url)
    assert result.code == ExitCode.CHECK_FAILED
    assert "loaded with 4096 tokens of context, not 8192" in result.output


def test_cli_context_old_server(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(TINY)], version="0.9.6")
    result = cli("models", "context", TINY, "--ctx", "8192", "--host", emu.url)
    assert result.code == 0 and "cannot be verified" in " ".join(result.stderr.split())


def test_cli_context_errors(cli, emulator_factory, dead_url) -> None:
    emu = emulator_factory(installed=[preset(TINY)])
    assert cli("models", "context", TINY, "--ctx", "65536", "--host", emu.url).code == ExitCode.USAGE
    assert cli("models", "context", QWEN, "--ctx", "65536", "--host", emu.url).code == ExitCode.NOT_FOUND
    assert cli("models", "context", TINY, "--ctx", "8192", "--host", dead_url).code == ExitCode.OLLAMA_UNAVAILABLE


# -- models list ---------------------------------------------------------------------------------------------


def test_models_list(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[preset(QWEN), preset(TINY)])
    result = cli("models", "list", "--host", emu.url)
    assert result.code == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {QWEN, TINY}
    assert "8192" in rows[TINY] and "tools" in rows[TINY]
    assert "default" in rows[QWEN] and "262144" in rows[QWEN] and "vision" in rows[QWEN] and "17.4 GB" in rows[QWEN]
    doc = cli("models", "list", "--host", emu.url, "--json").json()
    by_name = {row["name"]: row for row in doc["data"]}
    assert by_name[TINY]["num_ctx"] == 8192 and by_name[QWEN]["num_ctx"] is None
    assert by_name[QWEN]["quantization"] == "Q4_K_M" and "thinking" in by_name[QWEN]["capabilities"]


def test_models_list_never_cuts_a_name_when_piped(cli, emulator_factory, monkeypatch) -> None:
    emu = emulator_factory(installed=[preset(TINY)])
    ensure_variant(OllamaServer(emu.url), TINY, 8192)
    monkeypatch.setenv("COLUMNS", "40")
    result = cli("models", "list", "--host", emu.url)
    assert "tiny-coder:1b-ctx8k " in result.stdout and "…" not in result.stdout


def test_models_list_empty(cli, emulator) -> None:
    result = cli("models", "list", "--host", emulator.url)
    assert result.code == 0 and "no models installed" in result.stderr


# -- GGUF import ---------------------------------------------------------------------------------------------


@needs_smollm2
def test_import_the_real_gguf(cli, emulator) -> None:
    result = cli("models", "import", str(SMOLLM2), "--name", "smollm2:135m", "--ctx", "8192", "--host", emulator.url)
    assert result.code == 0, result.output
    assert "imported smollm2:135m from SmolLM2-135M-Instruct.Q4_1.gguf (98.4 MB)" in result.stdout
    assert "llama · 0.13B parameters · Q4_1 · trained context 8192 · chat template" in result.stdout
    assert "--ctx 8,192 is little for Codex" in result.stderr and "16,384 or more" in result.stderr
    digest = "sha256:" + hashlib.sha256(SMOLLM2.read_bytes()).hexdigest()
    heads = [r for r in emulator.requests if r.method == "HEAD" and r.path.startswith("/api/blobs/")]
    assert [r.path for r in heads] == [f"/api/blobs/{digest}"]
    assert [r.path for r in uploads(emulator)] == [f"/api/blobs/{digest}"]
    create = creates(emulator)[0].json
    assert create["files"] == {"SmolLM2-135M-Instruct.Q4_1.gguf": digest}
    assert create["parameters"] == {"num_ctx": 8192}
    shown = OllamaServer(emulator.url).show("smollm2:135m")
    assert shown.num_ctx == 8192 and shown.architecture == "llama" and shown.context_length == 8192
    # a second import of the same file skips the upload
    again = cli("models", "import", str(SMOLLM2), "--name", "smollm2:copy", "--host", emulator.url, "--json")
    assert again.code == 0 and again.json()["data"]["uploaded"] is False
    assert len(uploads(emulator)) == 1
    # the same name again needs --force
    clash = cli("models", "import", str(SMOLLM2), "--name", "smollm2:135m", "--host", emulator.url)
    assert clash.code == ExitCode.USAGE and "--force" in clash.stderr
    assert cli("models", "import", str(SMOLLM2), "--name", "smollm2:135m", "--host", emulator.url, "--force").code == 0


@needs_smollm2
def test_import_refuses_a_context_beyond_training(cli, emulator) -> None:
    result = cli("models", "import", str(SMOLLM2), "--name", "s:1", "--ctx", "32768", "--host", emulator.url)
    assert result.code == ExitCode.USAGE and "trained for 8192 tokens" in result.stderr
    assert emulator.requests == []


@pytest.mark.parametrize("content", [b"", b"GGUF\x03\x00\x00\x00" + b"\x01" * 5, bytes(range(256)) * 64],
                         ids=["empty", "cut-header", "random"])
def test_import_of_a_broken_file_is_refused_before_any_request(cli, emulator, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    result = cli("models", "import", str(bad), "--name", "bad:1", "--host", emulator.url)
    assert result.code == ExitCode.USAGE
    assert "bad.gguf" in result.stderr and ("not a GGUF file" in result.stderr or "truncated" in result.stderr)
    assert emulator.requests == []


@needs_smollm2
def test_import_of_a_truncated_real_file(cli, emulator, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(SMOLLM2.read_bytes()[: 60_000_000])
    result = cli("models", "import", str(cut), "--name", "cut:1", "--host", emulator.url)
    assert result.code == ExitCode.USAGE and "truncated" in result.stderr
    assert emulator.requests == []


# -- bundles -------------------------------------------------------------------------------------------------


@pytest.fixture
def two_machines(emulator_factory, tmp_path: Path):
    """A connected machine with the (materialized) tiny model installed, and an empty air-gapped one."""
    connected = emulator_factory(installed=[preset(TINY)], models_dir=tmp_path / "connected")
    airgapped = emulator_factory(models_dir=tmp_path / "airgapped")
    return connected, airgapped


def test_bundle_round_trip(cli, two_machines, tmp_path: Path) -> None:
    a, b = two_machines
    bundle = tmp_path / "tiny.tar"
    out = cli("models", "export", TINY, "--to", str(bundle), "--models-dir", str(a.models_dir))
    assert out.code == 0, out.output
    assert f"exported {TINY} to {bundle}" in " ".join(out.stdout.split())
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile("localcodex-bundle.json"))
    assert names[:2] == ["localcodex-bundle.json", "manifest.json"]
    manifest = json.loads((a.models_dir / "manifests/registry.ollama.ai/library/tiny-coder/1b").read_bytes())
    referenced = {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
    assert {blob["digest"] for blob in index["blobs"]} == referenced  # the config blob too
    assert len(names) == 2 + len(referenced)

    result = cli("models", "import-bundle", str(bundle), "--host", b.url)
    assert result.code == 0, result.output
    assert f"installed {TINY}" in result.stdout and "verified" in result.stdout
    sa, sb = OllamaServer(a.url).show(TINY), OllamaServer(b.url).show(TINY)
    assert sb.parameters == sa.parameters and sb.num_ctx == 8192
    assert sb.template == sa.template and sb.model_info == sa.model_info
    # Ollama (0.30+) rewrites GGUF weights from `files` into a new layer (llama-quantize COPY), so the weights
    # blob need not keep its digest; what the weights describe must match.
    assert weights_blob(sb) is not None
    assert OllamaServer(b.url).show(TINY).capabilities == sa.capabilities
    answer = OllamaServer(b.url).generate(TINY, "hello", options={"num_predict": 3})
    assert answer.done


def test_bundle_import_under_another_name_and_name_clash(cli, two_machines, tmp_path: Path) -> None:
    a, b = two_machines
    bundle = tmp_path / "tiny.tar"
    assert cli("models", "export", TINY, "--to", str(bundle), "--models-dir", str(a.models_dir)).code == 0
    assert cli("models", "import-bundle", str(bundle), "--host", b.url, "--name", "mine:1").code == 0
    assert cli("models", "import-bundle", str(bundle), "--host", b.url).code == 0
    clash = cli("models", "import-bundle", str(bundle), "--host", b.url)
    assert clash.code == ExitCode.USAGE and "already installed" in clash.stderr
    assert {m.name for m in OllamaServer(b.url).list()} == {"mine:1", TINY}


def _rewrite_member(src: Path, dest: Path, member: str, change) -> None:
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read()
            if info.name.startswith(member):
                data = change(data)
            tout.addfile(info, io.BytesIO(data))


def test_a_damaged_bundle_installs_nothing(cli, two_machines, tmp_path: Path) -> None:
    a, b = two_machines
    good, bad = tmp_path / "good.tar", tmp_path / "bad.tar"
    assert cli("models", "export", TINY, "--to", str(good), "--models-dir", str(a.models_dir)).code == 0
    model_digest = OllamaServer(a.url).show(TINY)
    blob = "blobs/sha256-" + weights_blob(model_digest)
    _rewrite_member(good, bad, blob, lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]))
    result = cli("models", "import-bundle", str(bad), "--host", b.url)
    assert result.code == ExitCode.USAGE
    assert "does not match its checksum" in result.stderr and "nothing was installed" in result.stderr
    assert uploads(b) == [] and creates(b) == []


def test_a_truncated_or_foreign_bundle(cli, two_machines, tmp_path: Path) -> None:
    a, b = two_machines
    good = tmp_path / "good.tar"
    assert cli("models", "export", TINY, "--to", str(good), "--models-dir", str(a.models_dir)).code == 0
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = cli("models", "import-bundle", str(cut), "--host", b.url)
    assert result.code == ExitCode.USAGE and ("cut short" in result.stderr or "missing" in result.stderr)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    assert "is not a tar file" in cli("models", "import-bundle", str(junk), "--host", b.url).stderr
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(good, arcname="something.bin")
    assert "not a localcodex bundle" in cli("models", "import-bundle", str(plain), "--host", b.url).stderr
    assert uploads(b) == [] and creates(b) == []


def test_export_errors(cli, two_machines, tmp_path: Path) -> None:
    a, _ = two_machines
    missing = cli("models", "export", "nope:1", "--to", str(tmp_path / "x.tar"), "--models-dir", str(a.models_dir))
    assert missing.code == ExitCode.NOT_FOUND and "nope:1" in missing.stderr
    target = tmp_path / "exists.tar"
    target.write_bytes(b"keep me")
    clash = cli("models", "export", TINY, "--to", str(target), "--models-dir", str(a.models_dir))
    assert clash.code == ExitCode.USAGE and target.read_bytes() == b"keep me"
    forced = cli("models", "export", TINY, "--to", str(target), "--models-dir", str(a.models_dir), "--force")
    assert forced.code == 0 and tarfile.is_tarfile(target)
    assert not list(tmp_path.glob("*.partial"))


def test_export_catches_a_damaged_store(cli, two_machines, tmp_path: Path) -> None:
    a, _ = two_machines
    blob = a.models_dir / "blobs" / ("sha256-" + weights_blob(OllamaServer(a.url).show(TINY)))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    result = cli("models", "export", TINY, "--to", str(tmp_path / "t.tar"), "--models-dir", str(a.models_dir))
    assert result.code != 0 and "store is damaged" in " ".join(result.stderr.split())
    assert not (tmp_path / "t.tar").exists() and not (tmp_path / "t.tar.partial").exists()


def test_layers_the_api_cannot_rebuild_go_into_the_local_store(cli, two_machines, tmp_path: Path) -> None:
    """A manifest with an adapter layer: installed by writing blobs first and the manifest last, byte for byte."""
    a, b = two_machines
    path = a.models_dir / "manifests/registry.ollama.ai/library/tiny-coder/1b"
    manifest = json.loads(path.read_bytes())
    adapter = b"fake lora adapter"
    digest = "sha256:" + hashlib.sha256(adapter).hexdigest()
    (a.models_dir / "blobs" / digest.replace(":", "-")).write_bytes(adapter)
    manifest["layers"].append({"mediaType": "application/vnd.ollama.image.adapter", "digest": digest,
                               "size": len(adapter)})
    path.write_bytes(json.dumps(manifest).encode())
    bundle = tmp_path / "tiny.tar"
    assert cli("models", "export", TINY, "--to", str(bundle), "--models-dir", str(a.models_dir)).code == 0
    result = cli("models", "import-bundle", str(bundle), "--host", b.url, "--models-dir", str(b.models_dir), "--json")
    assert result.code == 0, result.output
    assert result.json()["data"]["method"] == "store"
    written = b.models_dir / "manifests/registry.ollama.ai/library/tiny-coder/1b"
    assert written.read_bytes() == path.read_bytes()
    for blob in [manifest["config"], *manifest["layers"]]:  # never a manifest without its blobs
        assert (b.models_dir / "blobs" / blob["digest"].replace(":", "-")).is_file()
    assert TINY in {m.name for m in OllamaServer(b.url).list()}
    assert creates(b) == [] and uploads(b) == []


# -- the fit estimate of an import (recorded machines, not this one) -------------------------------------------


def _big_gguf(path: Path, weights: int) -> Path:
    """A GGUF whose header describes `weights` bytes of F32 data; the data is a hole (sparse file)."""
    from test_gguf import _kv, write_gguf

    extra = [_kv("llama.embedding_length", 4, struct.pack("<I", 8192)),
             _kv("llama.attention.head_count_kv", 4, struct.pack("<I", 8))]
    write_gguf(path, extra_kv=extra, tensors=[("w", (weights // 4,), 0)], data=b"")
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size + weights)
    return path


@needs_smollm2
def test_import_estimates_the_fit_before_uploading(emulator) -> None:
    from machines import load_machine

    from localcodex.core.transfer.run import import_gguf

    result = import_gguf(OllamaServer(emulator.url), SMOLLM2, "smol:1", 8192, measure=lambda: load_machine("rtx4090"))
    assert result.fit is not None and result.fit.fits and result.fit.full and result.fit.placement == "gpu"
    assert result.fit.num_ctx == 8192 and 98_000_000 < result.fit.need_bytes < 2 * GiB
    assert not any("fit" in w for w in result.warnings)


def test_fit_estimate_of_a_model_too_big_for_the_machine(tmp_path: Path) -> None:
    """From the header alone (nothing is hashed or uploaded): partial offload, or no fit at all."""
    from machines import load_machine

    from localcodex.core.transfer.gguf import read_gguf
    from localcodex.core.transfer.run import _fit_warnings, estimate_fit

    info = read_gguf(_big_gguf(tmp_path / "big.gguf", 40 * 10**9))
    partial = estimate_fit(info, "big:1", 4096, load_machine("rtx4090"))
    assert partial is not None and partial.placement == "partial" and 0 < partial.gpu_fraction < 1
    assert "fits on the GPU, the rest runs on the CPU" in _fit_warnings(partial)[0]
    none = estimate_fit(info, "big:1", 4096, load_machine("cpu-16g"))
    assert none is not None and not none.fits
    assert "does not fit this machine" in _fit_warnings(none)[0]
    chosen = estimate_fit(info, "big:1", None, load_machine("rtx4090"))  # no --ctx: the engine's choice
    assert chosen is not None and chosen.num_ctx >= 4096
