"""`localcodex bench` against the Ollama emulator, whose rates are known: every figure the benchmark reports is
checked against the emulator's configured truth (with tolerances that hold on a loaded 2-core machine)."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
import time
from dataclasses import replace

import pytest
from emulator import Fault, preset_models

from localcodex.core.bench.run import BenchEvent, BenchRequest, RunResult, bench
from localcodex.errors import ExitCode, NotFound, OllamaUnavailable
from localcodex.invocation import Invocation
from localcodex.wiring import Live


def bench_at(request: BenchRequest, *args, **kwargs):
    """`bench()` against the endpoint the request names, wired as the command wires it (environment: none)."""
    return bench(request, *args, endpoint=Live(Invocation.build(env={})).bench_endpoint(request), **kwargs)

MODEL = "llama3.2:3b"
DECODE, PROMPT, LOAD = 200.0, 20000.0, 0.25


def preset(name: str, **changes):
    return replace(next(m for m in preset_models() if m.name == name), **changes)


@pytest.fixture
def emu(emulator_factory):
    """One model installed, at rates slow enough that timing is measurable and fast enough for a test."""
    return emulator_factory(installed=[preset(MODEL)], decode_rate=DECODE, prompt_rate=PROMPT, load_time=LOAD)


def measured(report) -> list[RunResult]:
    return [r for r in report.runs if r.phase == "measure"]


def generate_requests(emu) -> list[dict]:
    return [r.json for r in emu.requests if r.path == "/api/generate"]


def inject_on_run(emu, fault: Fault, run: int = 2):
    """A progress callback that arms `fault` once, when the first series' measured run `run - 1` has completed
    (so it hits run `run`)."""
    armed: list[bool] = []

    def on_progress(event: BenchEvent) -> None:
        if not armed and event.run is not None and event.run.phase == "measure" and event.run.run == run - 1:
            armed.append(True)
            emu.inject(fault)

    return on_progress


# -- what is measured, and how ----------------------------------------------------------------------------------


def test_rates_ttft_and_load_match_the_emulator(emu):
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0, 2048), num_predict=24, host=emu.url))
    assert report.status == "ok" and report.api == "ollama" and report.server_version == emu.version
    short, long = report.models[0].series
    for s in (short, long):
        assert s.decode_tps.median == pytest.approx(DECODE, rel=0.01)  # server counters
        assert s.prompt_tps.median == pytest.approx(PROMPT, rel=0.01)
        assert s.eval_tokens == 24
    for run in measured(report):
        # client-side token arrivals: a loaded machine delays and bunches them, so the bounds are wide; a client that
        # counted the prompt's time, or an emulator that did not pace, would be far outside them
        assert DECODE / 2 < run.stream_tps < DECODE * 2
        truth = run.prompt_eval_count / PROMPT  # the first token leaves when prompt processing ends
        assert truth <= run.ttft_s < truth + 2.0
        assert run.done_reason == "length" and (run.load_duration or 0) < LOAD * 1e9  # warm: no load again
    # the long prompt really is long, and its prefill shows in the wall TTFT
    assert long.prompt_tokens == pytest.approx(2048, rel=0.03)
    assert long.ttft_s.median > short.ttft_s.median + 0.08


def test_warm_up_is_reported_apart_and_never_counted(emu):
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0,), num_predict=8, host=emu.url))
    model = report.models[0]
    warm = model.warmup
    assert warm.phase == "warmup" and warm.ok
    assert LOAD - 0.01 <= warm.load_duration / 1e9 < LOAD + 2.0  # measured by the emulator: never shorter
    assert warm.ttft_s >= LOAD  # cold: the load is in its time to first token
    series = model.series[0]
    assert series.runs_ok == len(measured(report)) >= 3  # the warm-up is not among them
    assert series.ttft_s.max < LOAD  # so no cold start leaks into the medians


def test_requests_are_deterministic_and_defeat_the_prompt_cache(emu):
    bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0, 1024), num_predict=8, host=emu.url))
    bodies = generate_requests(emu)
    assert len(bodies) >= 1 + 1 + 3 + 3  # warm-up, calibration, two series
    for body in bodies:
        assert body["options"]["temperature"] == 0 and body["options"]["seed"] == 42
        assert body["keep_alive"] == "10m"
    assert {b["options"]["num_predict"] for b in bodies[2:]} == {8}
    starts = [b["prompt"][:24] for b in bodies]
    assert len(set(starts)) == len(starts)  # a fresh nonce at the start of every prompt


def test_a_series_stops_early_once_the_spread_is_tight(emu):
    """The emulator's rates are exact, so decode and prefill agree at once; TTFT carries this machine's noise.
    The series must stop at the first run (from the third) where every measure agrees, and not before."""
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0, 600), num_predict=8, host=emu.url))
    for series in report.models[0].series:
        runs = [r for r in measured(report) if r.prompt_target == series.prompt_target]
        ttft = [r.ttft_s for r in runs]
        agreed = [k for k in range(3, 6)
                  if max(ttft[:k]) - min(ttft[:k]) < max(0.005, 0.02 * statistics.median(ttft[:k]))]
        assert series.runs_ok == len(runs) == (agreed[0] if agreed else 5)
        assert series.early_stop == (len(runs) < 5)
        assert series.decode_tps.relative_range < 0.02 and series.prompt_tps.relative_range < 0.02
    # Whether TTFT agrees by the third run depends on this machine's load, so no assertion on which path was
    # taken: the rule itself is pinned by the doctests of bench.stats.is_tight.


def test_runs_overrides_the_early_stop(emu):
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0,), num_predict=8, runs=6, host=emu.url))
    series = report.models[0].series[0]
    assert series.runs_ok == 6 and not series.early_stop
    assert series.decode_tps.p10 is not None and series.decode_tps.p90 is not None  # enough runs for percentiles


def test_a_wide_spread_keeps_measuring(emulator_factory):
    """On the OpenAI-compatible path the decode rate comes from token arrivals: a stall in run 2 widens the
    spread, so the series runs all five times."""
    emu = emulator_factory(installed=[preset(MODEL)], decode_rate=DECODE, prompt_rate=PROMPT)
    stall = Fault("stall", path="/v1/chat/completions", after=4, seconds=0.3)
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0,), num_predict=16, base_url=f"{emu.url}/v1"),
                   inject_on_run(emu, stall))
    series = report.models[0].series[0]
    assert report.status == "ok"
    assert series.runs_ok == 5 and not series.early_stop
    assert series.decode_tps.min < 0.6 * series.decode_tps.max


def test_prompts_are_sized_to_the_models_tokenizer(emu):
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0, 700, 3000), num_predict=8, host=emu.url))
    model = report.models[0]
    assert model.calibration is not None and model.calibration.phase == "calibration"
    sizes = {s.prompt_target: s.prompt_tokens for s in model.series}
    assert sizes[700] == pytest.approx(700, rel=0.03)
    assert sizes[3000] == pytest.approx(3000, rel=0.03)
    assert sizes[0] < 100  # the short prompt stays short


def test_prompts_are_capped_at_the_loaded_context(emu):
    """The emulator (like Ollama below 24 GiB of VRAM) loads the model with num_ctx 4096: an 8k prompt would
    be cut silently, so it is capped and the user is told."""
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(8192,), num_predict=32, host=emu.url))
    model = report.models[0]
    assert model.context_length == 4096
    series = model.series[0]
    assert series.prompt_target == 4096 - 32 - 16
    assert 3900 < series.prompt_tokens <= 4096 - 32
    assert any("capped" in n and "4096" in n for n in model.notes)


def test_parallel_requests_report_per_request_and_total_rates(emu):
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0,), num_predict=20, parallel=(1, 2), runs=2,
                                host=emu.url))
    single, double = report.models[0].series
    assert (single.parallel, double.parallel) == (1, 2)
    batch = [r for r in measured(report) if r.parallel == 2 and r.run == 1]
    assert sorted(r.slot for r in batch) == [0, 1]
    assert batch[0].aggregate_tps == batch[1].aggregate_tps > 0
    # the emulator, like Ollama with OLLAMA_NUM_PARALLEL=1, serves one request at a time: the second waits,
    # the total does not grow, and the report says why
    ttfts = sorted(r.ttft_s for r in batch)
    assert ttfts[1] > ttfts[0] + 0.5 * 20 / DECODE
    assert double.aggregate_tps.median == pytest.approx(single.aggregate_tps.median, rel=0.35)
    assert double.concurrency == pytest.approx(1.0, abs=0.25)
    assert any("one after another" in n for n in double.notes)
    assert double.decode_tps.median == pytest.approx(DECODE, rel=0.01)  # each request still decodes at full rate


def test_several_models_are_compared(emulator_factory, cli):
    emu = emulator_factory(installed=[preset(MODEL, decode_rate=300.0), preset("qwen2.5-coder:7b", decode_rate=100.0)],
                           prompt_rate=PROMPT)
    result = cli("bench", MODEL, "qwen2.5-coder:7b", "--host", emu.url, "--prompt-tokens", "short",
                 "--num-predict", "16")
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    bars = {line.split("·")[0].strip(): line.count("█") for line in lines if "█" in line}
    assert bars[MODEL] == 40 and 12 <= bars["qwen2.5-coder:7b"] <= 15  # 100/300 of the longest bar
    table = next(i for i, line in enumerate(lines) if "decode tok/s" in line)
    assert any(MODEL in line and "300" in line for line in lines[table:])
    assert any("qwen2.5-coder:7b" in line and "100" in line for line in lines[table:])
    assert "warm-up (cold start, not counted)" in result.stdout


def test_a_thinking_model_counts_its_thinking_tokens(emulator_factory):
    emu = emulator_factory(installed=[preset("qwen3:0.6b")], decode_rate=DECODE, prompt_rate=PROMPT)
    report = bench_at(BenchRequest(models=("qwen3:0.6b",), prompt_tokens=(0,), num_predict=12, host=emu.url))
    run = measured(report)[0]
    assert run.stream_tokens == 12 and run.ttft_s is not None
    assert report.models[0].series[0].decode_tps.median == pytest.approx(DECODE, rel=0.01)


# -- any OpenAI-compatible endpoint ------------------------------------------------------------------------------


def test_base_url_mode_times_tokens_on_the_client(emulator_factory, cli, monkeypatch):
    emu = emulator_factory(installed=[preset(MODEL)], decode_rate=DECODE, prompt_rate=PROMPT)
    monkeypatch.setenv("MY_GATEWAY_KEY", "sk-test-123")
    result = cli("bench", MODEL, "--base-url", f"{emu.url}/v1", "--env-key", "MY_GATEWAY_KEY",
                 "--prompt-tokens", "short,1500", "--num-predict", "20", "--json")
    assert result.code == 0, result.output
    doc = result.json()
    data = doc["data"]
    assert data["api"] == "openai" and data["server_version"] is None
    short, long = data["models"][0]["series"]
    assert DECODE / 2 < short["decode_tps"]["median"] < DECODE * 2  # client-side: loose for a loaded machine
    assert long["prompt_tokens"] == pytest.approx(1500, rel=0.03)  # sized from usage.prompt_tokens
    truth = long["prompt_tokens"] / PROMPT
    assert truth <= long["ttft_s"]["median"] < truth + 2.0
    runs = [r for r in data["runs"] if r["phase"] == "measure"]
    assert all(r["source"] == "client" and r["eval_duration"] is None for r in runs)
    chats = [r for r in emu.requests if r.path == "/v1/chat/completions"]
    body = chats[-1].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 20 and body["temperature"] == 0 and body["seed"] == 42
    assert chats[-1].headers["authorization"] == "Bearer sk-test-123"
    # the key is used, never kept
    assert "sk-test-123" not in result.stdout + result.stderr
    assert data["settings"]["env_key"] == "MY_GATEWAY_KEY"  # where the key comes from, never the key
    receipts = cli("receipts", "show", str(data["receipt_id"]), "--json")
    assert "sk-test-123" not in receipts.stdout


def test_env_key_that_is_not_set_is_one_clear_error(emulator_factory, cli):
    emu = emulator_factory(installed=[preset(MODEL)])
    result = cli("bench", MODEL, "--base-url", f"{emu.url}/v1", "--env-key", "NOT_SET_ANYWHERE")
    assert result.code == ExitCode.CONFIG
    assert not [r for r in emu.requests if r.path == "/v1/chat/completions"]
    assert "NOT_SET_ANYWHERE" in result.stderr and "Traceback" not in result.output


# -- failures ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    Fault("http_500", path="/api/generate", after=3, message="CUDA error: out of memory"),
    Fault("reset", path="/api/generate", after=3),
    Fault("http_500", path="/api/generate", status=500, message="llama runner process has terminated"),
])
def test_a_server_failing_mid_run_fails_the_run_not_the_tool(emu, fault):
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0, 1024), num_predict=16, host=emu.url),
                   inject_on_run(emu, fault))
    assert report.status == "failed"
    first = report.models[0].series[0]
    assert first.status == "failed" and first.runs_ok == 1 and first.runs_failed == 1
    assert first.decode_tps.median == pytest.approx(DECODE, rel=0.01)  # what was measured is kept
    failed = [r for r in report.runs if not r.ok]
    assert len(failed) == 1 and failed[0].run == 2 and failed[0].error
    assert report.failures[0].code == "server_error"
    if fault.message:
        assert fault.message in failed[0].error
    # the other prompt size still ran
    assert report.models[0].series[1].status == "ok"


def test_a_stalled_server_times_out_as_a_failed_run(emu):
    started = time.monotonic()
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0,), num_predict=16, host=emu.url, timeout=0.5),
                   inject_on_run(emu, Fault("stall", path="/api/generate", after=4, seconds=30.0)))
    assert time.monotonic() - started < 10  # the stall lasts 30 s; the run gives up after half a second
    assert report.status == "failed"
    (failure,) = report.failures
    assert failure.code == "timeout" and failure.run == 2 and "did not answer within" in failure.message
    failed = report.runs[-1]
    assert failed.stream_tokens == 4 and failed.ttft_s is not None  # what arrived before the stall is kept


def test_failure_exit_code_and_json_envelope(emu, cli):
    emu.inject(Fault("reset", path="/api/generate", after=2, times=None))
    result = cli("bench", MODEL, "--host", emu.url, "--prompt-tokens", "short", "--json")
    assert result.code == ExitCode.SERVER_ERROR
    doc = result.json()
    assert doc["status"] == "error" and doc["data"]["status"] == "failed"
    assert doc["errors"][0]["code"] == "server_error" and MODEL in doc["errors"][0]["message"]


def test_a_server_that_is_not_there(cli, dead_url):
    result = cli("bench", MODEL, "--host", dead_url)
    assert result.code == ExitCode.OLLAMA_UNAVAILABLE
    assert "cannot reach Ollama" in result.stderr and "Traceback" not in result.output
    with pytest.raises(OllamaUnavailable):
        bench_at(BenchRequest(models=(MODEL,), host=dead_url))


def test_a_model_that_is_not_installed(emu, cli):
    with pytest.raises(NotFound):
        bench_at(BenchRequest(models=("qwen3-coder:30b",), host=emu.url))
    result = cli("bench", "qwen3-coder:30b", "--host", emu.url)
    assert result.code == ExitCode.NOT_FOUND and "localcodex pull" in result.stderr
    assert not [r for r in emu.requests if r.path == "/api/generate"]  # nothing was run


@pytest.mark.parametrize("args", [["--runs", "0"], ["--parallel", "0"], ["--parallel", "a"], ["--num-predict", "1"],
                                  ["--json", "--csv"]])
def test_bad_options_are_usage_errors(cli, args):
    result = cli("bench", MODEL, *args)
    assert result.code == ExitCode.USAGE and "Traceback" not in result.output


# -- output formats ----------------------------------------------------------------------------------------------


def test_json_output_and_progress_events(emu, cli):
    result = cli("bench", MODEL, "--host", emu.url, "--prompt-tokens", "short,512", "--num-predict", "8", "--json")
    assert result.code == 0, result.output
    doc = result.json()
    assert doc["command"] == "bench" and doc["status"] == "ok"
    data = doc["data"]
    series = data["models"][0]["series"]
    assert [s["prompt_target"] for s in series] == [0, 512]
    assert series[0]["decode_tps"]["median"] == pytest.approx(DECODE, rel=0.01)
    assert data["models"][0]["warmup"]["phase"] == "warmup"
    assert data["receipt_id"] and data["machine"]
    events = [json.loads(line) for line in result.stderr.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and "warmup" in kinds and kinds.count("series") == 2
    measured_events = sum(1 for e in events if e["event"] == "run" and e["run"]["phase"] == "measure")
    assert measured_events == sum(s["runs_ok"] for s in series) >= 6


def test_csv_output_is_the_per_run_table(emu, cli):
    result = cli("bench", MODEL, "--host", emu.url, "--prompt-tokens", "short", "--num-predict", "8", "--csv")
    assert result.code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    phases = [r["phase"] for r in rows]
    assert phases[0] == "warmup" and set(phases[1:]) == {"measure"} and 3 <= len(phases[1:]) <= 5
    decode = [float(r["decode_tps"]) for r in rows if r["phase"] == "measure"]
    assert statistics.median(decode) == pytest.approx(DECODE, rel=0.01)
    assert all(int(r["eval_duration"]) > 0 and int(r["eval_count"]) == 8 for r in rows[1:])
    assert rows[0]["load_duration"] and int(rows[0]["load_duration"]) >= 0.2e9


def test_human_output(emu, cli):
    result = cli("bench", MODEL, "--host", emu.url, "--prompt-tokens", "short,1k", "--num-predict", "8")
    assert result.code == 0, result.output
    out = result.stdout
    assert f"Ollama {emu.version} at {emu.url}" in out
    table = out[out.index("measured"):]
    for header in ("prompt", "decode", "tok/s", "TTFT", "cold", "load", "runs", "[p10–p90]"):
        assert header in table
    row = next(line for line in table.splitlines() if line.strip().startswith(MODEL))
    assert "200 [200–200]" in row and "20000" in row and re.search(r"[345]/5$", row.rstrip())
    assert out.count("█") > 0
    assert "% of" in table and "ceiling" in table  # a local Ollama: set against the speed model's ceiling
    assert "sizing prompts" in result.stderr  # progress goes to stderr


def test_no_save_keeps_no_receipt(emu, cli, tmp_path):
    result = cli("bench", MODEL, "--host", emu.url, "--prompt-tokens", "short", "--num-predict", "4", "--no-save",
                 "--json")
    assert result.code == 0 and result.json()["data"]["receipt_id"] is None
    assert not (tmp_path / "localcodex-data" / "receipts.sqlite3").exists()


def test_a_ceiling_gives_percent_of_ceiling(emu):
    asked = []

    def ceiling(model: str, num_ctx: int | None, context_tokens: int) -> float | None:
        asked.append((model, num_ctx, context_tokens))
        return 400.0 if model == MODEL else None

    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0, 1000), num_predict=8, parallel=(1, 2), runs=1,
                                host=emu.url), ceiling=ceiling)
    short, short_2, long, long_2 = report.models[0].series
    assert short.ceiling_tps == 400.0 and short.pct_of_ceiling == pytest.approx(50.0, rel=0.01)
    assert long.pct_of_ceiling == pytest.approx(50.0, rel=0.01)
    # batched decode is not bound by one stream's ceiling
    assert short_2.pct_of_ceiling is None and long_2.pct_of_ceiling is None
    assert {a[1] for a in asked} == {4096}  # the context the model was loaded with
    assert [a[2] for a in asked][::2] == [1 + 4, 1000 + 4]  # the prompt in the cache, and half the answer


def test_the_ceiling_comes_from_the_speed_model(emu, cli):
    """`localcodex bench` on a local Ollama sets decode against recommend's bandwidth bound for the model
    (here: the emulator is far faster than this machine's memory would allow, so far above 100 %)."""
    result = cli("bench", MODEL, "--host", emu.url, "--prompt-tokens", "short,2k", "--num-predict", "8", "--json")
    assert result.code == 0, result.output
    short, long = result.json()["data"]["models"][0]["series"]
    for s in (short, long):
        assert s["ceiling_tps"] > 0
        assert s["pct_of_ceiling"] == pytest.approx(100 * s["decode_tps"]["median"] / s["ceiling_tps"], rel=1e-6)
    assert long["ceiling_tps"] < short["ceiling_tps"]  # a longer cache to read for every token


# -- setup's step -------------------------------------------------------------------------------------------------


def test_a_time_budget_shrinks_the_long_prompt(emulator_factory):
    emu = emulator_factory(installed=[preset(MODEL)], decode_rate=DECODE, prompt_rate=4000.0)
    report = bench_at(BenchRequest(models=(MODEL,), prompt_tokens=(0, 8192), num_predict=16, host=emu.url,
                                max_run_seconds=0.4))
    model = report.models[0]
    long = model.series[-1]
    assert 256 <= long.prompt_target <= 0.4 * 4000  # what prefills in the budget, in steps of 256
    assert long.prompt_target % 256 == 0 and long.prompt_tokens == pytest.approx(long.prompt_target, rel=0.03)
    assert any("cut to" in n and "0.4 s" in n for n in model.notes)
    assert max(r.wall_s for r in measured(report)) < 2.0  # the uncut 8,192-token prompt alone takes 2.05 s


def test_setup_benchmark_reports_decode_and_prompt_and_keeps_a_receipt(emulator_factory, tmp_path):
    from localcodex.adapters.receipts import ReceiptStore
    from localcodex.core.bench.command import setup_benchmark

    emu = emulator_factory(installed=[preset(MODEL)], decode_rate=1000.0, prompt_rate=50000.0)
    events = []
    outcome = setup_benchmark(MODEL, Live(Invocation.build(emu.url)), on_progress=events.append)
    assert outcome.decode_tps == pytest.approx(1000.0, rel=0.01)
    assert outcome.prompt_tps == pytest.approx(50000.0, rel=0.01)
    # setup's quick benchmark: a 2k-token prompt, 48 tokens out, at most 3 runs (`bench` is the full one)
    assert outcome.report.series[-1].prompt_tokens == pytest.approx(2048, rel=0.03)
    assert all(s.runs <= 3 and s.num_predict == 48 for s in outcome.report.series)
    assert any(e.kind == "series" for e in events)
    (session,) = ReceiptStore(tmp_path / "localcodex-data" / "receipts.sqlite3").sessions()
    assert session.id == outcome.report.receipt_id and session.status == "ok"


# -- a server that states no context and refuses prompts over it --------------------------------------------------


class _Refused(Exception):
    pass


class ContextLimitedEndpoint:
    """An OpenAI-compatible endpoint with a 4096-token context it does not state: longer prompts get llama-server's
    400, as `exceed_context_size_error` says it (one token per 4 characters here)."""

    api, endpoint, is_local, has_counters = "openai", "http://127.0.0.1:9/v1", True, False
    N_CTX = 4096

    def __init__(self) -> None:
        self.prompts: list[int] = []

    def preflight(self, models, limit=60.0):
        from localcodex.core.bench.targets import ModelInfo

        return None, tuple(ModelInfo(m) for m in models)

    def prepare(self, timeout):
        return None

    def loaded(self, model):
        return None

    def measure(self, model, prompt, num_predict, seed, timeout, total=None, step="request"):
        from localcodex.core.bench.targets import Sample
        from localcodex.errors import LocalcodexError

        tokens = len(prompt) // 4
        self.prompts.append(tokens)
        now = time.perf_counter()
        if tokens + num_predict > self.N_CTX:
            error = LocalcodexError(f"{self.endpoint}/chat/completions answered HTTP 400: request ({tokens} tokens) "
                                    f"exceeds the available context size ({self.N_CTX} tokens), try increasing it")
            error.status = 400  # as HTTPStatusError carries it
            return Sample(now, now + 0.01, time.time(), error)
        timings = {"prompt_eval_count": tokens, "prompt_eval_duration": tokens * 1_000_000,
                   "eval_count": num_predict, "eval_duration": num_predict * 10_000_000}
        return Sample(now, now + 0.1, time.time(), None, now + 0.01, now + 0.1, num_predict, "length", timings,
                      num_predict, tokens, "llama.cpp")


def test_a_refused_prompt_size_steps_down_once_and_never_fails_the_benchmark():
    endpoint = ContextLimitedEndpoint()
    report = bench(BenchRequest(models=("m",), prompt_tokens=(0, 8192), num_predict=16, runs=1,
                                base_url=endpoint.endpoint), endpoint=endpoint)
    assert report.status == "ok" and not report.failures
    model = report.models[0]
    assert model.status == "ok" and model.context_length == 4096  # learnt from the refusal
    assert any("4096-token context" in n and "fitted" in n for n in model.notes), model.notes
    statuses = [(s.prompt_target, s.status) for s in model.series]
    long = [s for s in model.series if s.prompt_target > 1000 and s.status == "ok"]
    assert long and long[0].prompt_target <= 4096 - 16, statuses
    assert all(s.source == "llama.cpp" for s in model.series if s.status == "ok")
    # llama.cpp's counters give the rates: 1000 prompt tok/s and 100 decode tok/s by construction
    assert long[0].prompt_tps.median == pytest.approx(1000.0) and long[0].decode_tps.median == pytest.approx(100.0)


def test_a_note_every_series_shares_is_said_once():
    from types import SimpleNamespace as NS

    from localcodex.render.bench import notes

    shared = "the model runs on the CPU only (no GPU memory used): decode is bound by RAM bandwidth"
    series = [NS(model="m:1b", prompt_tokens=p, prompt_target=p, parallel=1, source="ollama",
                 notes=(shared, *extra))
              for p, extra in ((100, ()), (8192, ("prompt cut to 4096 tokens",)), (100, ()), (8192, ()))]
    report = NS(models=[NS(model="m:1b", notes=(), series=series)], series=series, api="ollama")
    lines = notes(report)
    assert lines.count(f"m:1b: {shared}") == 1 and sum(shared in line for line in lines) == 1
    assert "m:1b at 8192 tokens: prompt cut to 4096 tokens" in lines
