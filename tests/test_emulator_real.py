"""The emulator behaves as real Ollama does where a lenient stand-in would hide client bugs.

One test per item of shared/reference/ollama-corrections.md 1-10; each fails on the emulator's
earlier, friendlier behaviour.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import time

import httpx
import ollama
from emulator import Emulator, FakeModel, Fault, preset_models
from emulator import gguf as gguf_writer

FILLER = "lorem ipsum dolor sit amet " * 1500  # ~40 KB, ~10,000 tokens


def models(*names: str) -> list[FakeModel]:
    by_name = {m.name: m for m in preset_models()}
    return [by_name[n] for n in names]


def responses(emu: Emulator, body: dict) -> httpx.Response:
    return httpx.post(f"{emu.url}/v1/responses", json=body, timeout=30)


def input_tokens(emu: Emulator, model: str, developer: str) -> int:
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": developer}]},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say OK."}]}]
    r = responses(emu, {"model": model, "input": items})
    assert r.status_code == 200, r.text
    return r.json()["usage"]["input_tokens"]


def raw(emu: Emulator, payload: bytes, half_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if not half_close and b"\r\n\r\n" in data:
                break
    return data


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


# 1 ------------------------------------------------------------------ developer role


def test_developer_message_vanishes_on_templates_that_do_not_render_it(emulator_factory) -> None:
    emu = emulator_factory(installed=models("qwen3:0.6b", "qwen2.5-coder:7b", "qwen3.5:27b"))
    for dropping in ("qwen3:0.6b", "qwen2.5-coder:7b"):
        small, big = input_tokens(emu, dropping, "x"), input_tokens(emu, dropping, FILLER)
        assert small == big < 50, f"{dropping}: the developer text counts zero, no truncation"
    small, big = input_tokens(emu, "qwen3.5:27b", "x"), input_tokens(emu, "qwen3.5:27b", FILLER[:2000])
    assert big > small + 400, "qwen3.5 renders developer messages"


# 2 ------------------------------------------------------------------ /api/ps names the first model


def test_ps_keeps_the_name_of_the_model_that_loaded_the_runner(emulator_factory) -> None:
    emu = emulator_factory(installed=models("qwen3:0.6b"), context_length_env=8192)
    c = ollama.Client(host=emu.url)
    c.create("qwen3:0.6b-ctx8k", from_="qwen3:0.6b", parameters={"num_ctx": 8192})
    c.chat(model="qwen3:0.6b", messages=[{"role": "user", "content": "hi"}])
    c.chat(model="qwen3:0.6b-ctx8k", messages=[{"role": "user", "content": "hi"}])
    loaded = httpx.get(f"{emu.url}/api/ps").json()["models"]
    assert [(m["name"], m["context_length"]) for m in loaded] == [("qwen3:0.6b", 8192)]
    variant = c.show("qwen3:0.6b-ctx8k")
    assert variant.modelfile is not None
    # another num_ctx means another runner: then the variant's name shows
    c.chat(model="qwen3:0.6b-ctx8k", messages=[{"role": "user", "content": "hi"}], options={"num_ctx": 4096})
    loaded = httpx.get(f"{emu.url}/api/ps").json()["models"]
    assert [(m["name"], m["context_length"]) for m in loaded] == [("qwen3:0.6b-ctx8k", 4096)]


# 3 ------------------------------------------------------------------ errors after a /v1 stream started


def test_chat_stream_error_is_an_empty_chunk_without_terminator(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    emu.inject(Fault("http_500", path="/v1/chat/completions", after=2, message="runner crashed"))
    body = {"model": "llama3.2:3b", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{emu.url}/v1/chat/completions", json=body, timeout=30)
    data = sse_data(r.text)
    assert r.status_code == 200 and len(data) == 3
    assert "[DONE]" not in data and "runner crashed" not in r.text
    last = json.loads(data[-1])
    assert last["choices"][0]["delta"]["content"] == "" and last["choices"][0]["finish_reason"] is None
    assert all(json.loads(d)["choices"][0]["finish_reason"] is None for d in data)


def test_responses_stream_error_sends_nothing_more(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    emu.inject(Fault("http_500", path="/v1/responses", after=4, message="runner crashed"))
    r = responses(emu, {"model": "llama3.2:3b", "stream": True, "input": "hi"})
    kinds = [json.loads(d)["type"] for d in sse_data(r.text)]
    assert r.status_code == 200 and len(kinds) == 4
    assert "response.failed" not in kinds and "response.completed" not in kinds
    assert "runner crashed" not in r.text


# 4 ------------------------------------------------------------------ Host check


def test_non_local_host_header_gets_403_with_empty_body(emulator: Emulator) -> None:
    r = httpx.get(f"{emulator.url}/api/version", headers={"Host": "ollama.example.com"})
    assert (r.status_code, r.content) == (403, b"")
    r = httpx.post(f"{emulator.url}/v1/responses", headers={"Host": "ollama.example.com:443"}, json={})
    assert (r.status_code, r.content) == (403, b"")
    for host in ("localhost:11434", "127.0.0.1", "box.local", "10.1.2.3:80", "[::1]:11434"):
        assert httpx.get(f"{emulator.url}/api/version", headers={"Host": host}).status_code == 200, host


# 5 ------------------------------------------------------------------ overflow


def test_overflow_is_a_400_for_native_templates_and_without_context_shift(emulator_factory) -> None:
    native = FakeModel(name="native:1b", native_template=True)
    noshift = FakeModel(name="deepseek:1b", architecture="deepseek2", context_shift=False)
    emu = emulator_factory(installed=[native, noshift, *models("llama3.2:3b")])
    messages = [{"role": "user", "content": FILLER}]
    options = {"num_ctx": 2048}
    for name, message in (("native:1b", "exceeds the available context size (2048 tokens), try increasing it"),
                          ("deepseek:1b", "the prompt is longer than the context length currently available")):
        r = httpx.post(f"{emu.url}/api/chat", json={"model": name, "messages": messages, "options": options,
                                                    "stream": False}, timeout=30)
        assert r.status_code == 400 and message in r.json()["error"], (name, r.text)
    r = httpx.post(f"{emu.url}/api/chat", json={"model": "llama3.2:3b", "messages": messages,
                                                "options": options, "stream": False}, timeout=30)
    assert r.status_code == 200 and r.json()["prompt_eval_count"] < 2048, "rendered by Ollama: cut silently"


# 6 ------------------------------------------------------------------ parameters formatting


def test_show_parameters_use_go_float_format_in_random_order(emulator_factory) -> None:
    model = FakeModel(name="big-ctx:1b", parameters={"num_ctx": 1048576, "temperature": 0.6, "top_k": 20,
                                                      "top_p": 0.95})
    emu = emulator_factory(installed=[model])
    orders = set()
    for _ in range(30):
        text = httpx.post(f"{emu.url}/api/show", json={"model": "big-ctx:1b"}).json()["parameters"]
        lines = text.splitlines()
        orders.add(tuple(line.split()[0] for line in lines))
    assert "num_ctx                        1.048576e+06" in lines
    assert "top_k                          20" in lines and "top_p                          0.95" in lines
    assert len(orders) > 1, "map order, not sorted"


# 7 ------------------------------------------------------------------ non-canonical paths


def test_non_canonical_paths_get_301_even_for_post(emulator: Emulator) -> None:
    body = b'{"model":"x","messages":[]}'
    for path, location in ((b"//v1/chat/completions", b"/v1/chat/completions"),
                           (b"/./api/tags", b"/api/tags"), (b"/v1//responses", b"/v1/responses")):
        answer = raw(emulator, b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s"
                     % (path, len(body), body))
        head = answer.split(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 301") and b"Location: " + location in head, answer
    assert not [r for r in emulator.requests if r.path.startswith("/v1/chat")], "nothing was answered"


# 8 ------------------------------------------------------------------ create from GGUF


def _gguf(chat_template: str | None) -> bytes:
    metadata = {"general.architecture": "llama", "llama.context_length": 2048, "llama.block_count": 2,
                "llama.embedding_length": 8, "llama.attention.head_count": 2, "general.file_type": 0}
    if chat_template is not None:
        metadata["tokenizer.chat_template"] = chat_template
    return gguf_writer.encode(metadata, [("token_embd.weight", (8, 4), struct.pack("<32f", *range(32)))])


def test_gguf_create_validates_converts_and_derives_capabilities(emulator: Emulator, tmp_path) -> None:
    c = ollama.Client(host=emulator.url)
    with_tools = tmp_path / "tools.gguf"
    with_tools.write_bytes(_gguf("{% if tools %}{{ tools | tojson }}{% endif %}{{ messages }}"))
    digest = c.create_blob(with_tools)
    progress = list(c.create("local/tools", files={"tools.gguf": digest}, stream=True))
    statuses = [p.status for p in progress]
    assert statuses[:4] == ["parsing GGUF", "validating GGUF model", "validating GGUF model",
                            "verifying conversion"]
    validating = progress[2]
    assert validating.digest == "sha256:" + "0" * 64
    assert validating.total == validating.completed == with_tools.stat().st_size
    assert statuses[-1] == "success"
    show = c.show("local/tools")
    assert "tools" in show.capabilities
    layer = json.loads((emulator.models_dir / "manifests/registry.ollama.ai/local/tools/latest")
                       .read_text())["layers"][0]["digest"]
    assert layer != digest, "the model layer is a converted copy"
    assert (emulator.models_dir / "blobs" / digest.replace(":", "-")).exists(), "the upload stays"

    plain = tmp_path / "plain.gguf"
    plain.write_bytes(_gguf("{{ messages }}"))
    c.create("local/plain", files={"plain.gguf": c.create_blob(plain)})
    assert "tools" not in c.show("local/plain").capabilities


# 9 ------------------------------------------------------------------ pruning at start-up


def test_old_partial_and_non_digest_files_are_pruned_at_start(tmp_path) -> None:
    blobs = tmp_path / "models" / "blobs"
    blobs.mkdir(parents=True)
    hexdigest = hashlib.sha256(b"x").hexdigest()
    old_partial = blobs / f"sha256-{hexdigest}-partial"
    old_other = blobs / "upload-123"
    fresh_partial = blobs / f"sha256-{'1' * 64}-partial"
    blob = blobs / f"sha256-{hexdigest}"
    for path in (old_partial, old_other, fresh_partial, blob):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for path in (old_partial, old_other, blob):
        os.utime(path, (two_hours_ago, two_hours_ago))
    with Emulator(models_dir=tmp_path / "models"):
        assert not old_partial.exists() and not old_other.exists()
        assert fresh_partial.exists() and blob.exists()


# 10 ----------------------------------------------------------------- strict input


def test_unknown_responses_items_and_content_types_are_400(emulator_factory) -> None:
    emu = emulator_factory(installed=models("llama3.2:3b"))
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    r = responses(emu, {"model": "llama3.2:3b", "input": [user, {"type": "item_reference", "id": "rs_1"}]})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == 'input[1]: unknown input item type: "item_reference"'
    odd = {"type": "message", "role": "user", "content": [{"type": "input_audio", "text": "hi"}]}
    r = responses(emu, {"model": "llama3.2:3b", "input": [odd]})
    assert r.status_code == 400 and "input_audio" in r.json()["error"]["message"]
    assert responses(emu, {"model": "llama3.2:3b", "input": [user]}).status_code == 200


def test_blob_post_digest_format_and_existing_blob(emulator: Emulator) -> None:
    data = b"hello blob"
    hexdigest = hashlib.sha256(data).hexdigest()
    for bad in (f"sha256:{hexdigest.upper()}", f"sha256-{hexdigest}"):
        r = httpx.post(f"{emulator.url}/api/blobs/{bad}", content=data)
        assert (r.status_code, r.json()) == (400, {"error": "invalid digest format"}), bad
    assert httpx.post(f"{emulator.url}/api/blobs/sha256:{hexdigest}", content=data).status_code == 201
    # present already: answered at once, although the announced body never arrives
    answer = raw(emulator, b"POST /api/blobs/sha256:%s HTTP/1.1\r\nHost: localhost\r\n"
                 b"Content-Length: 100000000\r\n\r\nhello" % hexdigest.encode(), half_close=False)
    assert answer.startswith(b"HTTP/1.1 200")
