"""The OpenAI-compatible client: typed transport errors naming the URL, deadlines that hold, timestamps for
streamed events, and a key that never shows."""

from __future__ import annotations

import time

import pytest
from emulator import Emulator, Fault, preset_models

from localcodex.adapters.openai_compat import (
    ConnectionRefused,
    ConnectionReset,
    DNSFailure,
    EndpointTimeout,
    HTTPStatusError,
    MalformedAnswer,
    MissingEnvKey,
    OpenAICompatClient,
    Timeouts,
    TLSFailure,
)
from localcodex.errors import ExitCode

MODEL = next(m for m in preset_models() if m.name == "llama3.2:3b")


@pytest.fixture
def emu(emulator_factory) -> Emulator:
    return emulator_factory(installed=[MODEL])


def client(emu_or_url, **kw) -> OpenAICompatClient:
    url = emu_or_url if isinstance(emu_or_url, str) else emu_or_url.url
    return OpenAICompatClient(f"{url}/v1", **kw)


def chat_body(text: str = "Reply with exactly: one two three four five six seven eight") -> dict:
    return {"model": MODEL.name, "messages": [{"role": "user", "content": text}],
            "stream_options": {"include_usage": True}}


def test_streamed_chat_events_carry_increasing_timestamps(emulator_factory):
    emu = emulator_factory(installed=[MODEL], decode_rate=100.0)  # one token every 10 ms
    with client(emu) as c, c.chat_completions(chat_body(), stream=True) as stream:
        events = list(stream)
        sent_at = stream.sent_at
    assert events[-1].done
    stamps = [e.received_at for e in events]
    assert stamps == sorted(stamps) and stamps[0] > sent_at
    content = [e for e in events if not e.done and (e.json()["choices"] or [{}])[0].get("delta", {}).get("content")]
    assert len(content) >= 8
    spread = content[-1].received_at - content[0].received_at
    assert spread >= (len(content) - 1) * 0.010 * 0.5  # the tokens arrived over time, not in one burst


def test_models_lists_ids_and_null_data_is_empty(emulator_factory):
    full = emulator_factory(installed=[MODEL])
    empty = emulator_factory()
    assert client(full).models() == ["llama3.2:3b"]
    assert client(empty).models() == []


def test_http_error_carries_the_server_message(emu):
    with pytest.raises(HTTPStatusError) as err:
        client(emu).responses({"model": "nope:1b", "input": "hi"})
    assert err.value.status == 404
    assert str(err.value) == f"{emu.url}/v1/responses answered HTTP 404: model 'nope:1b' not found"


def test_http_error_before_a_stream_raises_at_once(emu):
    with pytest.raises(HTTPStatusError) as err:
        client(emu).chat_completions({**chat_body(), "model": "nope:1b"}, stream=True)
    assert err.value.status == 404 and err.value.exit_code == ExitCode.SERVER_ERROR


def test_connection_refused_names_the_url(dead_url):
    with pytest.raises(ConnectionRefused) as err:
        client(dead_url).models()
    assert err.value.url == f"{dead_url}/v1/models" and err.value.kind == "refused"
    assert err.value.exit_code == ExitCode.OLLAMA_UNAVAILABLE


def test_dns_failure_names_the_host():
    with pytest.raises(DNSFailure) as err:
        client("http://no-such-host.invalid:11434").models()
    assert "'no-such-host.invalid'" in str(err.value)


def test_tls_against_plain_http_suggests_http(emu):
    with pytest.raises(TLSFailure) as err:
        client(emu.url.replace("http://", "https://")).models()
    assert "use http:// instead of https://" in err.value.hint


def test_silence_is_a_read_timeout(emu):
    emu.inject(Fault("stall", path="/v1/models", seconds=60))
    started = time.perf_counter()
    with pytest.raises(EndpointTimeout) as err:
        client(emu).models(timeouts=Timeouts(connect=1, read=0.5, total=10))
    emu.clear_faults()
    assert err.value.phase == "read" and time.perf_counter() - started < 20  # the stall is 60 s
    assert err.value.exit_code == ExitCode.TIMEOUT


def test_deadline_cuts_a_stream_that_stalls_midway(emu):
    """Only the total deadline can stop this one: the read timeout alone is 60 s."""
    emu.inject(Fault("stall", path="/v1/chat/completions", after=2, seconds=60))
    started = time.perf_counter()
    with pytest.raises(EndpointTimeout) as err, client(emu).chat_completions(
        chat_body(), stream=True, timeouts=Timeouts(connect=1, read=60, total=1)
    ) as stream:
        list(stream)
    emu.clear_faults()
    assert err.value.phase == "deadline" and "did not finish within 1 s" in str(err.value)
    assert time.perf_counter() - started < 20  # the stall is 60 s; loose for a loaded machine


def test_reset_mid_stream(emu):
    emu.inject(Fault("reset", path="/v1/chat/completions", after=2))
    with pytest.raises(ConnectionReset) as err, client(emu).chat_completions(chat_body(), stream=True) as stream:
        list(stream)
    assert "in the middle of the answer" in str(err.value)


def test_malformed_json(emu):
    emu.inject(Fault("malformed_json", path="/v1/models"))
    with pytest.raises(MalformedAnswer) as err:
        client(emu).models()
    assert f"{emu.url}/v1/models answered with malformed JSON" in str(err.value)


def test_key_from_env_is_sent_and_never_shown(emu):
    secret = "sk-test-0123456789abcdef"
    c = client(emu, api_key_env="MY_KEY", env={"MY_KEY": secret})
    c.models()
    assert emu.requests[-1].headers["authorization"] == f"Bearer {secret}"
    assert secret not in repr(c) and secret not in str(c._http.headers) and c.sends_key


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_or_blank_key_fails_like_codex(value, emu):
    env = {} if value is None else {"MY_KEY": value}
    with pytest.raises(MissingEnvKey) as err:
        client(emu, api_key_env="MY_KEY", env=env)
    assert str(err.value) == "Missing environment variable: `MY_KEY`."
    assert emu.requests == []
