"""The client is right against real Ollama behaviour (shared/reference/ollama-corrections.md 1-10).

Each test fails on the client's earlier assumptions, which the lenient emulator used to share.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from emulator import Emulator, FakeModel, Fault, preset_models
from emulator import gguf as gguf_writer

from localcodex.adapters.ollama import OllamaServer
from localcodex.errors import ExitCode, NoFit, UsageError

PRESETS = {m.name: m for m in preset_models()}


def with_ctx(name: str, num_ctx: int) -> FakeModel:
    model = PRESETS[name]
    return dataclasses.replace(model, parameters={**model.parameters, "num_ctx": num_ctx})


def probes(result) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in result.json()["data"]["probes"]}


# 1 ------------------------------------------------------------------ the context probe's filler


def test_context_probe_filler_is_rendered_by_templates_that_drop_developer(cli, emulator_factory) -> None:
    """qwen2.5-coder's template drops `developer` messages: filler there would count zero and the probe would
    report a silent cut although 32k of context is plenty."""
    emu = emulator_factory(installed=[with_ctx("qwen2.5-coder:7b", 32768)])
    result = cli("check", "--json", "--host", emu.url, "--model", "qwen2.5-coder:7b")
    context = probes(result)["context"]
    assert context["status"] == "pass", context
    long = max((r for r in emu.requests if r.path == "/v1/responses"), key=lambda r: len(r.body or b""))
    roles = {item.get("role"): len(json.dumps(item)) for item in long.json["input"]}
    assert roles["user"] > 10 * roles["developer"], "the filler sits in a user message"


# 2 ------------------------------------------------------------------ variant verification by weights


def test_variant_verified_when_ps_names_the_base_model(emulator_factory) -> None:
    from localcodex.core.variant import ensure_variant, verify_variant

    emu = emulator_factory(installed=[PRESETS["qwen3:0.6b"]], context_length_env=32768)
    server = OllamaServer(emu.url)
    name = ensure_variant(server, "qwen3:0.6b", 32768).name
    server.generate("qwen3:0.6b", "hi", options={"num_predict": 1})  # the base loads the runner first
    checked = verify_variant(server, name, 32768)
    assert [m.name for m in server.ps()] == ["qwen3:0.6b"]
    assert checked.status == "ok" and checked.context_length == 32768, checked.message


# 3 ------------------------------------------------------------------ a /v1 stream cut without its terminator


def test_bench_counts_a_chat_stream_without_done_as_failed(emulator_factory) -> None:
    from localcodex.adapters.http_errors import StreamCut
    from localcodex.core.bench.run import BenchRequest
    from localcodex.invocation import Invocation
    from localcodex.wiring import Live

    emu = emulator_factory(installed=[PRESETS["llama3.2:3b"]])
    emu.inject(Fault("http_500", path="/v1/chat/completions", after=2, message="runner crashed"))
    def endpoint():  # as bench builds it (the wiring), no key
        return Live(Invocation.build(env={})).bench_endpoint(BenchRequest(models=("llama3.2:3b",),
                                                                         base_url=f"{emu.url}/v1"))

    sample = endpoint().measure("llama3.2:3b", "Say hi.", 16, 1, 30.0)
    assert isinstance(sample.error, StreamCut)
    assert "ended without data: [DONE]" in sample.error.message
    clean = endpoint().measure("llama3.2:3b", "Say hi.", 16, 1, 30.0)
    assert clean.error is None


def test_check_says_the_chat_stream_was_cut(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[with_ctx("qwen3.5:27b", 65536)])
    emu.inject(Fault("http_500", path="/v1/chat/completions", after=2, message="runner crashed"))
    result = cli("check", "--json", "--host", emu.url, "--model", "qwen3.5:27b")
    chat = probes(result)["chat"]
    assert chat["status"] == "fail"
    assert "without a finish_reason or data: [DONE]" in chat["detail"]
    assert "failed in the middle of the answer" in chat["detail"]


# 4 ------------------------------------------------------------------ 403 from the allowed-hosts check


class _HostCheck(http.server.BaseHTTPRequestHandler):
    """What Ollama on loopback answers to a non-local Host header: 403, empty body."""

    protocol_version = "HTTP/1.1"

    def _refuse(self) -> None:
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_HEAD = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def host_check_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostCheck)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_check_diagnoses_a_403_empty_body_as_the_host_check(cli, host_check_server) -> None:
    result = cli("check", "--json", "--base-url", f"{host_check_server}/v1", "--model", "m")
    assert result.code == ExitCode.CHECK_FAILED
    url = probes(result)["url"]
    assert url["status"] == "fail" and url["data"]["host_check"] is True
    assert "allowed-host check" in url["detail"] and "key" not in url["detail"]
    assert "Host" in url["fix"] and "not a key problem" in url["fix"] and "--env-key" not in url["fix"]


def test_http_error_hint_for_an_empty_403_is_the_host_check(host_check_server) -> None:
    from localcodex.adapters.openai_compat import HTTPStatusError, OpenAICompatClient

    with OpenAICompatClient(f"{host_check_server}/v1") as client, pytest.raises(HTTPStatusError) as err:
        client.models()
    assert "not a key problem" in (err.value.hint or "") and "OLLAMA_ORIGINS" in (err.value.hint or "")


# 6 ------------------------------------------------------------------ parameters as Go floats


def test_parameters_in_go_float_format_are_read(emulator_factory) -> None:
    from localcodex.core.variant import base_parameters

    model = dataclasses.replace(PRESETS["qwen3:0.6b"], name="long:1m", context_length=2_097_152,
                                parameters={"num_ctx": 1_048_576, "temperature": 0.6, "top_k": 20})
    emu = emulator_factory(installed=[model])
    details = OllamaServer(emu.url).show("long:1m")
    assert details.parameters["num_ctx"] == "1.048576e+06"
    assert details.num_ctx == 1_048_576
    params = base_parameters(details)
    assert params == {"num_ctx": 1_048_576, "temperature": 0.6, "top_k": 20}
    assert isinstance(params["num_ctx"], int)


# 7 ------------------------------------------------------------------ // in a base URL


def test_check_reports_a_double_slash_base_url(cli, emulator_factory) -> None:
    emu = emulator_factory(installed=[with_ctx("qwen3.5:27b", 65536)])
    result = cli("check", "--json", "--base-url", f"{emu.url}//v1", "--model", "qwen3.5:27b")
    url = probes(result)["url"]
    assert url["status"] == "fail" and url["data"]["mistake"] == "double slash"
    assert url["data"]["suggested"] == f"{emu.url}/v1"


def test_configure_refuses_a_double_slash_base_url() -> None:
    from localcodex.domain.urls import normalize_base_url

    with pytest.raises(UsageError) as err:
        normalize_base_url("http://127.0.0.1:11434//v1")
    assert "//" in err.value.message and "http://127.0.0.1:11434/v1" in (err.value.hint or "")
    assert normalize_base_url("http://127.0.0.1:11434/v1/") == "http://127.0.0.1:11434/v1"


def test_doctor_rule_reports_a_double_slash_base_url() -> None:
    from localcodex.domain.urls import BaseUrlMistake, repair_base_url

    repaired = repair_base_url("http://localhost:11434//v1")
    assert repaired.mistake is BaseUrlMistake.DOUBLE_SLASH and repaired.fixed == "http://localhost:11434/v1"


# 8 ------------------------------------------------------------------ GGUF import


def _gguf(chat_template: str) -> bytes:
    metadata = {"general.architecture": "llama", "llama.context_length": 2048, "llama.block_count": 2,
                "llama.embedding_length": 8, "llama.attention.head_count": 2, "general.file_type": 0,
                "tokenizer.chat_template": chat_template}
    return gguf_writer.encode(metadata, [("token_embd.weight", (8, 4), struct.pack("<32f", *range(32)))])


def test_gguf_import_takes_tools_from_ollama(emulator: Emulator, tmp_path) -> None:
    from localcodex.core.transfer.run import import_gguf

    path = tmp_path / "tools.gguf"
    path.write_bytes(_gguf("{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{% endfor %}"))
    result = import_gguf(OllamaServer(emulator.url), path, "local/tools")
    assert "tools" in result.capabilities
    assert not [w for w in result.warnings if "tools" in w]


def test_gguf_import_checks_the_disk_for_twice_the_file(emulator: Emulator, tmp_path, monkeypatch) -> None:
    from localcodex.adapters import ollama_store
    from localcodex.core.transfer.run import import_gguf

    path = tmp_path / "tools.gguf"
    path.write_bytes(_gguf("{{ messages }}"))
    size = path.stat().st_size
    monkeypatch.setattr(ollama_store, "free_disk", lambda where: (where, 2 * size - 1))
    with pytest.raises(NoFit) as err:
        import_gguf(OllamaServer(emulator.url), path, "local/big", models_dir=tmp_path)
    assert "twice the file" in err.value.message
    assert not [r for r in emulator.requests if r.path.startswith("/api/blobs")], "checked before any upload"
    monkeypatch.setattr(ollama_store, "free_disk", lambda where: (where, 2 * size))
    assert import_gguf(OllamaServer(emulator.url), path, "local/big", models_dir=tmp_path).name


# 9 ------------------------------------------------------------------ the resume note


def test_resume_note_is_honest_about_pruning(cli, emulator_factory) -> None:
    emu = emulator_factory()
    emu.inject(Fault("pull_fail", path="/api/pull"))
    result = cli("pull", "qwen3:0.6b", "--host", emu.url)
    assert result.code == ExitCode.SERVER_ERROR
    text = " ".join(result.stderr.split())
    assert "resume" in text and "older than an hour when it restarts" in text
