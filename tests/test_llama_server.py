"""localcodex against a real llama.cpp llama-server (SmolLM2-135M from PyPI), not an emulator.

The servers are shared by the whole session (tests/conftest.py: llama_8k, llama_16k) because prefill is slow on a
small CPU: a Codex-sized prompt takes 30-60 s on two cores. The tests keep such requests few (one `codex exec`,
one trial, one long bench series). They skip when llama-server is not installed, except in CI, where
scripts/test installs it and a missing server fails the suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from localcodex.adapters import codex_cli
from localcodex.errors import ExitCode

pytestmark = pytest.mark.slow
MODEL = "smollm2:135m"
CODEX = shutil.which("codex")

# llama-server's own per-request log lines: "prompt eval time = 117.26 ms / 31 tokens (…, 264.38 tokens per
# second)" and "eval time = 456.20 ms / 42 tokens (…)"
_TIMING = re.compile(r"\|\s+(prompt eval|eval) time =\s+([\d.]+) ms /\s+(\d+) tokens")


def server_timings(log: Path, since: int = 0) -> list[dict[str, float]]:
    """Per request, in order, what the server itself logged: prompt and decode tokens and milliseconds."""
    requests: list[dict[str, float]] = []
    for match in _TIMING.finditer(log.read_text(errors="replace")[since:]):
        kind, ms, tokens = match.group(1), float(match.group(2)), int(match.group(3))
        if kind == "prompt eval":
            requests.append({"prompt_n": tokens, "prompt_ms": ms})
        elif requests:
            requests[-1].update(predicted_n=tokens, predicted_ms=ms)
    return requests


def probes(result) -> dict[str, dict]:
    return {p["name"]: p for p in result.json()["data"]["probes"]}


def test_server_states_its_context(llama_8k):
    props = llama_8k.get_json("/props")
    assert props["default_generation_settings"]["n_ctx"] == 8192
    models = llama_8k.get_json("/v1/models")
    assert [m["meta"]["n_ctx"] for m in models["data"]] == [8192]
    assert not llama_8k.is_processing()


def test_check_against_an_8k_server(cli, llama_8k):
    result = cli("check", "--base-url", llama_8k.v1, "--model", MODEL, "--json")
    assert result.code == ExitCode.CHECK_FAILED, result.output
    found = probes(result)
    for name in ("reachable", "url", "model", "responses", "chat", "auth"):
        assert found[name]["status"] == "pass", (name, found[name])
    context = found["context"]
    assert context["status"] == "fail" and "16,384" in context["detail"]
    assert "8,192" in context["detail"] and "-c 16384" in context["fix"]
    # the timed request that scales the probes' limits used the server's own counters
    pace = result.json()["data"]["pace"]
    assert pace["source"] == "llama.cpp timings" and pace["prompt_tps"] > 0
    assert found["responses"]["data"]["time_limit_s"] > 60
    assert not llama_8k.is_processing()


def test_check_context_passes_on_a_16k_server(cli, llama_16k):
    result = cli("check", "--base-url", llama_16k.v1, "--model", MODEL, "--json")
    context = probes(result)["context"]
    assert context["status"] == "pass", context
    assert "16,384 tokens" in context["detail"] and "refused" in context["detail"]
    assert result.json()["data"]["context_length"] == 16384


def test_a_probe_that_gives_up_frees_the_server(llama_8k):
    """Giving up closes the connection. On a plain request llama-server notices between two prefill batches and
    cancels the task part-way; on a stream only once the prompt is read, so check waits for its slot to be free
    (`wait_idle`) before it times the next probe."""
    from localcodex.adapters.openai_compat import EndpointTimeout, OpenAICompatClient, Timeouts
    from localcodex.adapters.server_facts import busy_slots, wait_idle
    from localcodex.core.check.run import codex_body, filler_words

    def give_up(stream: bool, words: int) -> None:
        body = codex_body(MODEL, "Reply with OK.", developer=filler_words(words), tools=())
        with OpenAICompatClient(llama_8k.v1) as client, pytest.raises(EndpointTimeout):
            if not stream:
                client.responses(body, timeouts=Timeouts(connect=5, read=3, total=3))
            with client.responses(body, stream=True, timeouts=Timeouts(connect=5, read=3, total=3)) as events:
                for _ in events:
                    pass

    with OpenAICompatClient(llama_8k.v1) as client:
        client.chat_completions({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
        since = len(llama_8k.log.read_text(errors="replace"))
        give_up(stream=False, words=4000)
        # wait_idle's limits are hang guards: prefill runs at ~20 tok/s on a 2-core machine under heavy load
        assert wait_idle(client, 600) is True
        log = llama_8k.log.read_text(errors="replace")[since:]
        assert "cancel task" in log
        released = [int(n) for n in re.findall(r"stop processing: n_tokens = (\d+)", log)]
        assert released and released[-1] < 4000  # stopped part-way through the prompt

        give_up(stream=True, words=1000)  # read to the end before the server notices: keep it short
        assert wait_idle(client, 600) is True and busy_slots(client) == 0
    assert not llama_8k.is_processing()


def test_bench_fits_the_context_and_agrees_with_the_server(cli, llama_8k):
    """Default prompt sizes (short, 8192) against `-c 8192`: the long series is fitted to the context instead
    of failing, and every rate is the server's own figure (as its log states it, within 5 %). One run per series
    and 32 answer tokens keep it to one long prefill (scripts/bench_llama.py runs the full defaults)."""
    since = len(llama_8k.log.read_text(errors="replace"))
    result = cli("bench", MODEL, "--base-url", llama_8k.v1, "--runs", "1", "--num-predict", "32", "--json",
                 "--no-save")
    assert result.code == 0, result.output
    data = result.json()["data"]
    assert data["status"] == "ok"
    model = data["models"][0]
    assert model["context_length"] == 8192
    assert any("8192-token context" in n for n in model["notes"])
    long = [s for s in model["series"] if s["prompt_target"] > 1000]
    assert len(long) == 1 and long[0]["status"] == "ok" and 4000 < long[0]["prompt_tokens"] <= 8192 - 32
    assert {s["source"] for s in model["series"]} == {"llama.cpp"}
    logged = server_timings(llama_8k.log, since)
    runs = data["runs"]
    assert len(logged) == len(runs)
    for run, own in zip(runs, logged, strict=True):
        assert run["source"] == "llama.cpp"
        assert run["prompt_tps"] == pytest.approx(own["prompt_n"] / own["prompt_ms"] * 1e3, rel=0.05)
        if run["decode_tps"] is not None:
            assert run["decode_tps"] == pytest.approx(own["predicted_n"] / own["predicted_ms"] * 1e3, rel=0.05)


@pytest.mark.codex
@pytest.mark.skipif(CODEX is None, reason="the Codex CLI is not installed")
def test_provider_add_reads_the_context_and_codex_answers(cli, llama_8k, tmp_path: Path):
    home = Path(os.environ["CODEX_HOME"])
    # Codex's own ~4,300-token system prompt costs 30 s of prefill here idle and many minutes on a loaded 2-core
    # machine; a one-line instructions file keeps the request ~800 tokens, and what is proven stays the same: the
    # profile `provider add` wrote reaches the server and Codex prints the model's answer.
    short = tmp_path / "instructions.md"
    short.write_text("Answer in one short sentence.\n")
    (home / "config.toml").write_text(f"model_instructions_file = {json.dumps(str(short))}\n"
                                      + codex_cli.QUIET_CONFIG)
    added = cli("provider", "add", "llama-cpp", "--base-url", llama_8k.v1, "--model", MODEL)
    assert added.code == 0, added.output
    profile = (home / "llama_cpp.config.toml").read_text()
    assert "model_context_window = 8192" in profile
    override = cli("provider", "add", "llama-cpp", "--base-url", llama_8k.v1, "--model", MODEL,
                   "--context", "4096", "--profile", "small")
    assert override.code == 0 and "model_context_window = 4096" in (home / "small.config.toml").read_text()
    run = codex_cli.run_exec("Say hi", profile="llama_cpp", codex_home=home, timeout=400, cwd=tmp_path,
                             env=dict(os.environ))
    assert run.returncode == 0 and not run.timed_out, run.stderr[-2000:]
    assert run.stdout.strip(), run.stderr[-2000:]


@pytest.mark.codex
@pytest.mark.skipif(CODEX is None, reason="the Codex CLI is not installed")
def test_trial_runs_against_llama_server(cli, llama_8k, tmp_path: Path):
    """SmolLM2 is far too small to pass; the trial must still end with a verdict, not a crash."""
    home = Path(os.environ["CODEX_HOME"])
    (home / "config.toml").write_text(codex_cli.QUIET_CONFIG)
    assert cli("provider", "add", "llama-cpp", "--base-url", llama_8k.v1, "--model", MODEL).code == 0
    result = cli("trial", "-p", "llama_cpp", "--timeout", "120", "--workdir", tmp_path / "scratch", "--json")
    # pass, a verdict against the model (6), or a step that ran past its limit on a busy CPU (10): never a crash
    assert result.code in (ExitCode.OK, ExitCode.CHECK_FAILED, ExitCode.TIMEOUT), result.output
    assert "Traceback" not in result.output
    steps = result.json()["data"]["steps"]
    assert steps and all(s["status"] in ("pass", "fail", "error", "timeout", "skipped") for s in steps)


def test_configure_reads_the_context_the_server_states(cli, llama_8k):
    home = Path(os.environ["CODEX_HOME"])
    result = cli("configure", "--base-url", llama_8k.v1, "--model", MODEL, "--profile", "llama_cfg", "--json")
    assert result.code == 0, result.output
    assert result.json()["data"]["context_source"].startswith("server: GET /props")
    assert "model_context_window = 8192" in (home / "llama_cfg.config.toml").read_text()
