"""`localcodex check` against the Ollama emulator (and a small non-Ollama OpenAI-compatible server): every probe
passes for a good model; each fault, URL mistake and unfit model gives the intended message and exit code."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator import Emulator, FakeModel, Fault, Reply, preset_models
from openai_fake import FakeOpenAI

from localcodex.errors import ExitCode

PROBE_ORDER = ["reachable", "url", "server", "model", "responses", "tools", "context", "chat", "auth"]
PRESETS = {m.name: m for m in preset_models()}


def with_ctx(name: str, num_ctx: int) -> FakeModel:
    """A preset whose Modelfile carries `PARAMETER num_ctx` (what a context variant has)."""
    model = PRESETS[name]
    return dataclasses.replace(model, parameters={**model.parameters, "num_ctx": num_ctx})


GOOD = with_ctx("qwen3.5:27b", 65536)


@pytest.fixture
def emu(emulator_factory) -> Emulator:
    """An Ollama 0.32.15 with a good model (qwen3.5:27b at 65,536 context), a model without tools, a prose
    tool-caller, and a model left at the server default context (4,096: no VRAM)."""
    return emulator_factory(installed=[GOOD, PRESETS["gemma3:4b"], with_ctx("qwen2.5-coder:7b", 32768),
                                       PRESETS["llama3.2:3b"]])


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


def probes(result) -> dict[str, dict[str, Any]]:
    doc = result.json()
    return {p["name"]: p for p in doc["data"]["probes"]}


def statuses(result) -> dict[str, str]:
    return {name: p["status"] for name, p in probes(result).items()}


def check_json(cli, *args: str):
    return cli("check", "--json", *args)


# -- the good path ----------------------------------------------------------------------------------------------


def test_good_model_passes_every_probe(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == 0, result.output
    assert statuses(result) == dict.fromkeys(PROBE_ORDER, "pass")
    doc = result.json()
    assert doc["status"] == "ok" and doc["errors"] == []
    data = doc["data"]
    assert data["server"] == "ollama" and data["server_version"] == "0.32.15"
    assert data["suggested_base_url"] == f"{emu.url}/v1"
    assert data["context_length"] == 65536
    found = probes(result)
    assert "65,536" in found["context"]["detail"] and "/api/ps" in found["context"]["detail"]
    assert found["tools"]["data"]["call"]["name"] == "read_file"


def test_requests_are_shaped_like_codex(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == 0, result.output
    posts = [r for r in emu.requests if r.method == "POST" and r.path == "/v1/responses"]
    streamed = [r for r in posts if r.json.get("stream") is True]
    assert any(r.json.get("stream") is False for r in posts) and streamed
    for body in (r.json for r in posts):
        assert body["store"] is False
        assert body["include"] == ["reasoning.encrypted_content"]
        assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
        assert body["reasoning"] == {"summary": "auto"}
        assert [i["role"] for i in body["input"][:3]] == ["developer", "user", "user"]
    assert all(t["type"] == "function" for t in streamed[0].json["tools"])
    assert all(r.headers.get("accept") == "text/event-stream" for r in streamed)
    round_trip = [r.json for r in streamed if any(i.get("type") == "function_call_output" for i in r.json["input"])]
    assert round_trip, "the tool output was never sent back"
    call = next(i for i in round_trip[0]["input"] if i.get("type") == "function_call")
    output = next(i for i in round_trip[0]["input"] if i.get("type") == "function_call_output")
    assert call["call_id"] == output["call_id"] and call["name"] == "read_file"
    chat = next(r.json for r in emu.requests if r.path == "/v1/chat/completions")
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


def test_json_lists_every_probe_with_status_duration_and_detail(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    listed = result.json()["data"]["probes"]
    assert [p["name"] for p in listed] == PROBE_ORDER
    for probe in listed:
        assert probe["status"] in ("pass", "warn", "fail", "skip")
        assert isinstance(probe["duration_s"], float) and probe["duration_s"] >= 0
        assert probe["detail"] and probe["title"]
    assert result.json()["data"]["counts"] == {"pass": 9, "warn": 0, "fail": 0, "skip": 0}


def test_human_table_shows_symbols_durations_and_fixes(cli, emu):
    good = cli("check", "--host", emu.url, "--model", "qwen3.5:27b")
    assert good.code == 0
    assert good.stdout.count("✓") == 9 and "Codex can use this endpoint" in good.stdout
    assert f'base_url = "{emu.url}/v1"' in good.stdout
    bad = cli("check", "--host", emu.url, "--model", "llama3.2:3b")
    assert bad.code == ExitCode.CHECK_FAILED
    lines = bad.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if "Context" in line and "✗" in line)
    end = next(i for i in range(row + 1, len(lines)) if lines[i].lstrip()[:1] in ("✓", "!", "✗", "–"))
    assert any("fix: `localcodex models context llama3.2:3b" in line for line in lines[row:end])
    assert " s " in lines[row]  # the duration column


def test_model_defaults_to_the_local_ollama_profile(cli, emu, hermetic_env):
    (hermetic_env / ".codex" / "local_ollama.config.toml").write_text(
        'model = "qwen3.5:27b"\nmodel_provider = "local_ollama"\n', encoding="utf-8")
    result = check_json(cli, "--host", emu.url)
    assert result.code == 0, result.output
    assert result.json()["data"]["model"] == "qwen3.5:27b"


def test_without_model_or_profile_it_is_a_usage_error(cli, emu):
    result = check_json(cli, "--host", emu.url)
    assert result.code == ExitCode.USAGE
    assert "--model" in result.json()["errors"][0]["message"]
    assert emu.requests == []


# -- unfit models -----------------------------------------------------------------------------------------------


def test_model_without_tools_fails(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "gemma3:4b")
    assert result.code == ExitCode.CHECK_FAILED
    model = probes(result)["model"]
    assert model["status"] == "fail" and "cannot call tools" in model["detail"]
    assert "localcodex recommend" in model["fix"]
    assert statuses(result)["responses"] == "skip"
    assert probes(result)["tools"]["detail"] == "not run: Model present failed"


def test_model_not_pulled_fails_with_pull_fix(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "qwen3-coder:30b")
    assert result.code == ExitCode.CHECK_FAILED
    model = probes(result)["model"]
    assert model["status"] == "fail" and "not listed" in model["detail"]
    assert "localcodex pull qwen3-coder:30b" in model["fix"]


def test_prose_tool_caller_warns_that_codex_edits_will_fail(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "qwen2.5-coder:7b")
    assert result.code == 0, result.output  # a warning is not a failure
    tools = probes(result)["tools"]
    assert tools["status"] == "warn"
    assert "Codex edits will fail with this model" in tools["detail"]
    assert "as text" in tools["detail"]


def test_prose_without_any_call_also_warns(cli, emu):
    emu.responder = lambda req: Reply(text="The file probably says hello.")
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    tools = probes(result)["tools"]
    assert tools["status"] == "warn" and "without calling read_file" in tools["detail"]


def test_call_of_an_unknown_function_fails(cli, emu):
    def responder(req):
        if req.tools and "notes.txt" in req.last_user_text and not req.function_outputs:
            return Reply(tool_calls=[("delete_everything", {"path": "/"})])
        return Reply(text="ready")

    emu.responder = responder
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    tools = probes(result)["tools"]
    assert tools["status"] == "fail" and "'delete_everything', a function it was not given" in tools["detail"]


def test_context_4096_fails_with_the_variant_fix(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "llama3.2:3b")
    assert result.code == ExitCode.CHECK_FAILED
    context = probes(result)["context"]
    assert context["status"] == "fail"
    assert "4,096" in context["detail"] and "cut it silently" in context["detail"]
    assert context["data"]["truncated"] is True and context["data"]["loaded_context"] == 4096
    assert context["fix"].startswith("`localcodex models context llama3.2:3b --ctx 16384`")
    assert result.json()["errors"][0]["hint"] == context["fix"]


def test_min_context_option_raises_the_bar(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b", "--min-context", "100000")
    assert result.code == ExitCode.CHECK_FAILED
    context = probes(result)["context"]
    assert context["status"] == "fail" and "100,000" in context["detail"]
    assert "--ctx 131072" in context["fix"]


def test_truncation_detected_from_usage_without_ollama(cli):
    server = FakeOpenAI(context=8192).start()
    try:
        result = check_json(cli, "--base-url", f"{server.url}/v1", "--model", "local-model")
    finally:
        server.stop()
    assert result.code == ExitCode.CHECK_FAILED
    context = probes(result)["context"]
    assert context["status"] == "fail" and "arrived as 8,192 input tokens" in context["detail"]
    assert "-c 16384" in context["fix"]


def test_context_refusal_is_reported_with_the_server_words(cli):
    server = FakeOpenAI(context=8192, refuse_overflow=True).start()
    try:
        result = check_json(cli, "--base-url", f"{server.url}/v1", "--model", "local-model")
    finally:
        server.stop()
    context = probes(result)["context"]
    assert context["status"] == "fail" and "maximum context length is 8192 tokens" in context["detail"]


# -- faults -----------------------------------------------------------------------------------------------------


def test_refused_connection(cli, dead_url):
    result = check_json(cli, "--host", dead_url, "--model", "qwen3.5:27b")
    assert result.code == ExitCode.OLLAMA_UNAVAILABLE  # as bench and pull say for a server that is not there
    reach = probes(result)["reachable"]
    port = dead_url.rsplit(":", 1)[1]
    assert reach["status"] == "fail"
    assert reach["detail"] == f"connection refused at {dead_url}/v1/models: nothing listens on 127.0.0.1:{port}"
    assert "ollama serve" in reach["fix"]
    rest = statuses(result)
    assert all(rest[n] == "skip" for n in PROBE_ORDER[1:])
    assert probes(result)["url"]["detail"] == "not run: Reachable failed"
    assert probes(result)["auth"]["detail"] == "not run: Reachable failed"


def test_http_500_on_responses(cli, emu):
    emu.inject(Fault("http_500", path="/v1/responses", message="model runner crashed"))
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    responses = probes(result)["responses"]
    assert responses["status"] == "fail"
    assert "HTTP 500: model runner crashed" in responses["detail"]
    assert "high demand" in responses["detail"]  # what Codex would show instead
    assert statuses(result)["tools"] == "skip"
    assert statuses(result)["chat"] == "pass"  # independent of /responses


def test_reset_mid_stream(cli, emu):
    emu.inject(Fault("reset", path="/v1/chat/completions", after=3))
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    chat = probes(result)["chat"]
    assert chat["status"] == "fail" and chat["data"]["error"] == "reset"
    assert "was reset in the middle of the answer" in chat["detail"]
    assert f"{emu.url}/v1/chat/completions" in chat["detail"]


def test_reset_of_a_plain_answer(cli, emu):
    emu.inject(Fault("reset", path="/v1/responses"))
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    responses = probes(result)["responses"]
    assert responses["status"] == "fail" and "was reset" in responses["detail"]


def test_malformed_json(cli, emu):
    emu.inject(Fault("malformed_json", path="/v1/responses"))
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    responses = probes(result)["responses"]
    assert responses["status"] == "fail" and "malformed JSON" in responses["detail"]


def test_malformed_event_in_a_stream(cli, emu):
    emu.inject(Fault("malformed_json", path="/v1/chat/completions", after=2))
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    chat = probes(result)["chat"]
    assert chat["status"] == "fail" and "not JSON" in chat["detail"]


def test_stall_times_out_and_check_does_not_hang(cli, emu):
    emu.inject(Fault("stall", path="/v1/responses", seconds=60))
    started = time.perf_counter()
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b", "--timeout", "1")
    elapsed = time.perf_counter() - started
    emu.clear_faults()
    assert result.code == ExitCode.TIMEOUT  # a probe hit its time limit: exit 10, naming it and the limit
    responses = probes(result)["responses"]
    assert responses["status"] == "fail" and responses["data"]["error"] == "timeout"
    # the limit is --timeout plus twice what the probe's requests take at the measured pace (fast here)
    limit = responses["data"]["time_limit_s"]
    assert 1 <= limit < 10 and f"within {limit:.2f} s" in responses["detail"] and "--timeout" in responses["fix"]
    error = result.json()["errors"][0]
    assert error["code"] == "timeout" and "Responses API" in error["message"] and f"{limit:g} s" in error["message"]
    assert responses["duration_s"] < limit + 2  # ends at its limit, not at the 60 s stall
    assert elapsed < 40  # the stall lasts 60 s


def test_stall_in_the_middle_of_a_stream_hits_the_deadline(cli, emu):
    emu.inject(Fault("stall", path="/v1/chat/completions", after=2, seconds=60))
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b", "--timeout", "1")
    emu.clear_faults()
    chat = probes(result)["chat"]
    assert chat["status"] == "fail" and chat["data"]["error"] == "timeout"
    assert chat["duration_s"] < 3


@pytest.mark.parametrize("version", ["0.12.11", "0.13.2"])
def test_old_ollama_fails_with_upgrade(cli, emulator_factory, version):
    emu = emulator_factory(version=version, installed=[GOOD])
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    server = probes(result)["server"]
    assert server["status"] == "fail" and "upgrade Ollama" in server["detail"]
    assert f"Ollama {version} is too old" in server["detail"]
    assert "0.13.4" in server["fix"]
    assert probes(result)["responses"]["detail"] == "not run: Server and version failed"
    assert probes(result)["tools"]["detail"] == "not run: Server and version failed"


def test_ollama_0_13_3_warns_that_codex_oss_wants_0_13_4(cli, emulator_factory):
    emu = emulator_factory(version="0.13.3", installed=[GOOD])
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b")
    assert result.code == 0, result.output
    server = probes(result)["server"]
    assert server["status"] == "warn" and "requires 0.13.4" in server["detail"]


# -- URL mistakes -----------------------------------------------------------------------------------------------


def test_ollama_port_without_v1(cli, emu):
    result = check_json(cli, "--base-url", emu.url, "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    url = probes(result)["url"]
    assert url["status"] == "fail" and url["data"]["mistake"] == "Ollama port without /v1"
    assert "Ollama's native API" in url["detail"] and f"Codex would POST {emu.url}/responses" in url["detail"]
    assert url["fix"] == f'use base_url = "{emu.url}/v1"'
    assert result.json()["data"]["suggested_base_url"] == f"{emu.url}/v1"
    assert statuses(result)["model"] == "skip"


def test_missing_v1_on_another_server(cli, fake_openai):
    result = check_json(cli, "--base-url", fake_openai.url, "--model", "local-model")
    url = probes(result)["url"]
    assert url["status"] == "fail" and url["data"]["mistake"] == "missing /v1"
    assert url["fix"] == f'use base_url = "{fake_openai.url}/v1"'


def test_doubled_v1(cli, emu):
    result = check_json(cli, "--base-url", f"{emu.url}/v1/v1", "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    url = probes(result)["url"]
    assert url["data"]["mistake"] == "doubled /v1" and "/v1 appears twice" in url["detail"]
    assert "404 page not found" in url["detail"]
    assert url["fix"] == f'use base_url = "{emu.url}/v1"'


def test_endpoint_pasted_into_base_url(cli, emu):
    result = check_json(cli, "--base-url", f"{emu.url}/v1/responses", "--model", "qwen3.5:27b")
    url = probes(result)["url"]
    assert url["data"]["mistake"] == "endpoint path in base_url"
    assert url["fix"] == f'use base_url = "{emu.url}/v1"'


def test_trailing_slash_warns_and_still_passes(cli, emu):
    result = check_json(cli, "--base-url", f"{emu.url}/v1/", "--model", "qwen3.5:27b")
    assert result.code == 0, result.output
    url = probes(result)["url"]
    assert url["status"] == "warn" and "trailing slash" in url["detail"]
    assert url["fix"] == f'use base_url = "{emu.url}/v1"'
    assert all(s == "pass" for n, s in statuses(result).items() if n != "url")


class _PlainHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def plain_http(tmp_path) -> Iterator[str]:
    """A plain web server (not an API) on another port: what answers when the port is wrong."""
    folder = tmp_path / "www"
    folder.mkdir()

    def handler(*args: Any, **kw: Any) -> _PlainHandler:
        return _PlainHandler(*args, directory=str(folder), **kw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_wrong_port_says_what_answered_and_where_ollama_is(cli, emu, plain_http, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", emu.url)
    result = check_json(cli, "--base-url", f"{plain_http}/v1", "--model", "qwen3.5:27b")
    assert result.code == ExitCode.CHECK_FAILED
    assert statuses(result)["reachable"] == "pass"
    url = probes(result)["url"]
    assert url["status"] == "fail" and url["data"]["mistake"] == "wrong server or port"
    assert "HTTP 404" in url["detail"] and "SimpleHTTP" in url["detail"]
    assert f"Ollama 0.32.15 answers at {emu.url}/v1" in url["detail"]
    assert url["fix"] == f'use base_url = "{emu.url}/v1"'


def test_wrong_port_with_nothing_listening_points_at_ollama(cli, emu, dead_url, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", emu.url)
    result = check_json(cli, "--base-url", f"{dead_url}/v1", "--model", "qwen3.5:27b")
    reach = probes(result)["reachable"]
    assert reach["status"] == "fail" and reach["data"]["error"] == "refused"
    assert f'Ollama 0.32.15 answers at {emu.url}/v1: use base_url = "{emu.url}/v1"' in reach["fix"]


def test_dns_failure(cli):
    result = check_json(cli, "--base-url", "http://localcodex-check.invalid:11434/v1", "--model", "m")
    assert result.code == ExitCode.OLLAMA_UNAVAILABLE
    reach = probes(result)["reachable"]
    assert reach["data"]["error"] == "dns"
    assert "cannot resolve the host name 'localcodex-check.invalid'" in reach["detail"]


def test_tls_error_on_a_plain_http_port(cli, emu):
    https = emu.url.replace("http://", "https://")
    result = check_json(cli, "--base-url", f"{https}/v1", "--model", "qwen3.5:27b")
    assert result.code == ExitCode.OLLAMA_UNAVAILABLE
    reach = probes(result)["reachable"]
    assert reach["data"]["error"] == "tls" and "TLS handshake" in reach["detail"]
    assert "use http:// instead of https://" in reach["fix"]
    assert f'use base_url = "{emu.url}/v1"' in reach["fix"]


def test_base_url_without_scheme(cli, emu):
    bare = emu.url.removeprefix("http://")
    result = check_json(cli, "--base-url", f"{bare}/v1", "--model", "qwen3.5:27b")
    reach = probes(result)["reachable"]
    assert reach["status"] == "fail" and "no http://" in reach["detail"]
    assert reach["fix"] == f'use base_url = "{emu.url}/v1"'


# -- other servers, auth ----------------------------------------------------------------------------------------


def test_non_ollama_server_skips_ollama_only_probes(cli, fake_openai):
    result = check_json(cli, "--base-url", f"{fake_openai.url}/v1", "--model", "local-model")
    assert result.code == 0, result.output
    found = probes(result)
    assert found["server"]["status"] == "skip"
    assert "not Ollama (fake-openai/1.0)" in found["server"]["detail"]
    assert {n: p["status"] for n, p in found.items() if n != "server"} == dict.fromkeys(
        [n for n in PROBE_ORDER if n != "server"], "pass")
    assert result.json()["data"]["server"] == "openai-compatible"
    assert not any(r["path"].startswith("/api/") and r["path"] != "/api/version" for r in fake_openai.requests)


def test_server_without_the_responses_api(cli):
    server = FakeOpenAI(responses_api=False).start()
    try:
        result = check_json(cli, "--base-url", f"{server.url}/v1", "--model", "local-model")
    finally:
        server.stop()
    assert result.code == ExitCode.CHECK_FAILED
    found = probes(result)
    assert found["responses"]["status"] == "fail"
    assert "HTTP 404" in found["responses"]["detail"] and "Codex retries 5 times" in found["responses"]["detail"]
    assert found["tools"]["detail"] == "not run: Responses API failed"
    assert found["chat"]["status"] == "pass"


def test_stream_without_response_completed_fails_like_codex(cli):
    server = FakeOpenAI(drop_completed=True).start()
    try:
        result = check_json(cli, "--base-url", f"{server.url}/v1", "--model", "local-model")
    finally:
        server.stop()
    responses = probes(result)["responses"]
    assert responses["status"] == "fail"
    assert "the stream ended without response.completed" in responses["detail"]


def test_env_key_unset_fails_before_any_request(cli, emu):
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b", "--env-key", "LOCALCODEX_TEST_KEY")
    assert result.code == ExitCode.CHECK_FAILED
    auth = probes(result)["auth"]
    assert auth["status"] == "fail"
    assert auth["detail"].startswith("Missing environment variable: `LOCALCODEX_TEST_KEY`.")
    assert all(statuses(result)[n] == "skip" for n in PROBE_ORDER[:-1])
    assert emu.requests == []


def test_env_key_is_sent_as_bearer_and_never_printed(cli, emu, monkeypatch):
    secret = "sk-local-5f1e2d3c4b5a"
    monkeypatch.setenv("LOCALCODEX_TEST_KEY", secret)
    for json_mode in (True, False):
        args = ["check", "--host", emu.url, "--model", "qwen3.5:27b", "--env-key", "LOCALCODEX_TEST_KEY"]
        result = cli(*args, *(["--json"] if json_mode else []))
        assert result.code == 0, result.output
        assert secret not in result.stdout and secret not in result.stderr
    v1 = [r for r in emu.requests if r.path.startswith("/v1/")]
    assert v1 and all(r.headers.get("authorization") == f"Bearer {secret}" for r in v1)
    auth = probes(check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b", "--env-key", "LOCALCODEX_TEST_KEY"))
    assert auth["auth"]["status"] == "pass" and "$LOCALCODEX_TEST_KEY" in auth["auth"]["detail"]


def test_server_that_wants_a_key(cli, monkeypatch):
    server = FakeOpenAI(api_key="right-key").start()
    try:
        without = check_json(cli, "--base-url", f"{server.url}/v1", "--model", "local-model")
        monkeypatch.setenv("LOCALCODEX_TEST_KEY", "wrong-key")
        wrong = check_json(cli, "--base-url", f"{server.url}/v1", "--model", "local-model",
                           "--env-key", "LOCALCODEX_TEST_KEY")
        monkeypatch.setenv("LOCALCODEX_TEST_KEY", "right-key")
        right = check_json(cli, "--base-url", f"{server.url}/v1", "--model", "local-model",
                           "--env-key", "LOCALCODEX_TEST_KEY")
    finally:
        server.stop()
    assert without.code == ExitCode.CHECK_FAILED
    assert probes(without)["url"]["status"] == "fail" and "HTTP 401" in probes(without)["url"]["detail"]
    assert probes(without)["auth"]["status"] == "fail" and "--env-key" in probes(without)["auth"]["fix"]
    assert probes(wrong)["auth"]["status"] == "fail"
    assert "$LOCALCODEX_TEST_KEY was refused" in probes(wrong)["auth"]["fix"]
    assert "wrong-key" not in wrong.output
    assert right.code == 0, right.output


def test_exit_code_process_level(cli_process, emu):
    ok = cli_process("check", "--host", emu.url, "--model", "qwen3.5:27b", "--json")
    assert ok.code == 0, ok.stderr
    bad = cli_process("check", "--host", emu.url, "--model", "gemma3:4b", "--json")
    assert bad.code == ExitCode.CHECK_FAILED
    doc = json.loads(bad.stdout)
    assert doc["status"] == "error" and doc["errors"][0]["code"] == "check_failed"
    assert doc["errors"][0]["message"].startswith("Model present: gemma3:4b cannot call tools")
    events = [json.loads(line) for line in bad.stderr.splitlines() if line.startswith("{")]
    assert [e["name"] for e in events if e.get("event") == "probe"] == PROBE_ORDER


# -- the real Codex CLI agrees ----------------------------------------------------------------------------------

codex_cli = pytest.mark.skipif(shutil.which("codex") is None, reason="the Codex CLI is not installed")


def run_codex(codex_home: Path, base_url: str, *, env_key: str | None = None) -> subprocess.CompletedProcess[str]:
    """`codex exec` with a custom provider at `base_url`, failing fast (no retries) instead of reconnecting."""
    key_line = f'env_key = "{env_key}"\n' if env_key else ""
    (codex_home / "config.toml").write_text(
        'model = "qwen3.5:27b"\nmodel_provider = "local_ollama"\ncheck_for_update_on_startup = false\n'
        'web_search = "disabled"\n[agents]\nenabled = false\n[features]\nunbounded_connection_retries = false\n'
        f'[model_providers.local_ollama]\nname = "Local Ollama"\nbase_url = "{base_url}"\n{key_line}'
        "request_max_retries = 0\nstream_max_retries = 0\n", encoding="utf-8")
    return subprocess.run(
        ["codex", "exec", "--skip-git-repo-check", "Reply with exactly: pong"], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=90, cwd=codex_home, env=dict(os.environ),
    )


@pytest.mark.codex
@codex_cli
def test_codex_fails_on_an_unset_env_key_with_the_same_words(cli, emu, hermetic_env):
    result = check_json(cli, "--host", emu.url, "--model", "qwen3.5:27b", "--env-key", "LOCALCODEX_TEST_KEY")
    words = probes(result)["auth"]["detail"].split(" Codex stops")[0]
    codex = run_codex(hermetic_env / ".codex", f"{emu.url}/v1", env_key="LOCALCODEX_TEST_KEY")
    assert codex.returncode != 0
    assert words == "Missing environment variable: `LOCALCODEX_TEST_KEY`." and words in codex.stderr
    assert not [r for r in emu.requests if r.path.startswith("/v1/")]


@pytest.mark.codex
@codex_cli
def test_codex_fails_on_the_mistaken_url_and_works_on_the_suggested_one(cli, emu, hermetic_env):
    result = check_json(cli, "--base-url", f"{emu.url}/v1/v1", "--model", "qwen3.5:27b")
    suggested = result.json()["data"]["suggested_base_url"]
    assert result.code == ExitCode.CHECK_FAILED and suggested == f"{emu.url}/v1"
    wrong = run_codex(hermetic_env / ".codex", f"{emu.url}/v1/v1")
    assert wrong.returncode != 0 and "404" in wrong.stderr
    right = run_codex(hermetic_env / ".codex", suggested)
    assert right.returncode == 0, right.stderr
    assert "pong" in right.stdout


@pytest.mark.codex
@codex_cli
def test_codex_trims_a_trailing_slash_so_it_is_only_a_warning(cli, emu, hermetic_env):
    result = check_json(cli, "--base-url", f"{emu.url}/v1/", "--model", "qwen3.5:27b")
    assert probes(result)["url"]["status"] == "warn" and result.code == 0
    emu.requests.clear()
    codex = run_codex(hermetic_env / ".codex", f"{emu.url}/v1/")
    assert codex.returncode == 0, codex.stderr
    assert [r.path for r in emu.requests if r.method == "POST"] == ["/v1/responses"]
