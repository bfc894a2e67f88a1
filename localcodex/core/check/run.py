"""`check`: prove that an endpoint answers what Codex will send, not merely that it answers.

Nine probes run in a fixed order and each ends pass / warn / fail / skip with the reason and the fix:

    1 reachable   2 url        3 server     4 model      5 responses
    6 tools       7 context    8 chat       9 auth

A probe that fails makes the probes that depend on it `skip` ("not run: Reachable failed") instead of piling up
failures with the same cause. Against a server that is not Ollama (no `/api/version`) the Ollama-only parts are
skipped and say so. Every request has a time limit, so `check` never hangs: quick probes are bounded by the
connect timeout and a short deadline, generation probes by `timeout` (the whole probe, all its requests).

The requests are shaped like the ones Codex 0.169 sends (shared/reference/codex-config.md, Part B): developer +
user input items, `store: false`, `include`, `reasoning`, `tool_choice: "auto"`, `parallel_tool_calls`, function
tools, streamed, and read the way Codex reads them (`response.output_item.done` carries the items; the stream
must end with `response.completed` carrying an id).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from localcodex.core.check import pace
from localcodex.core.check.answers import probe_chat, probe_responses, probe_tools
from localcodex.core.check.context import context_words, filler_words, probe_context
from localcodex.core.check.reach import (  # noqa: F401 (judge_version re-exported)
    judge_version,
    probe_auth,
    probe_model,
    probe_reachable,
    probe_server,
    probe_url,
)
from localcodex.core.check.state import NEEDS, PROBES, PROFILE, TITLES, ProbeRun
from localcodex.core.check.types import (
    CheckReport,
    CheckRequest,
    Probe,
    ProbeStarted,
    Status,
    Verdict,
    failed,
    skipped,
)
from localcodex.core.check.wire import codex_body
from localcodex.errors import ConfigError, LocalcodexError, StepTimeout, UsageError

if TYPE_CHECKING:
    from localcodex.core.ports import Live

def check(
    req: CheckRequest, live: Live, on_progress: Callable[[ProbeStarted | Probe], None] | None = None
) -> CheckReport:
    """Run the nine probes in order and return the report. Raises only for bad input (no model to check).

    Every probe ends within its time limit (`time_limit_s` in its data); one that hit it fails with
    `error: timeout`, and `CheckReport.timed_out` names it."""
    started = time.perf_counter()
    report = (on_progress or (lambda _e: None))
    model = resolve_model(req.model, live.inv.env)
    if req.min_context < 1 or req.timeout <= 0 or req.connect_timeout <= 0:
        raise UsageError("--min-context, --timeout and the connect timeout must be positive numbers")
    run = ProbeRun(req=req, live=live, model=model, base=_given_base(req, live))
    _open_client(run)
    try:
        for name, title in PROBES:
            report(ProbeStarted(name, title))
            probe = _run_probe(run, name, title)
            run.results[name] = probe
            report(probe)
    finally:
        if run.client is not None:
            run.client.close()
    return _report(run, time.perf_counter() - started)


def resolve_model(explicit: str | None, env: Mapping[str, str] | None = None) -> str:
    """The model to check: `--model`, else the `local_ollama` Codex profile's, else a usage error."""
    if explicit and explicit.strip():
        return explicit.strip()
    from localcodex.adapters.codex_config import read_profile
    from localcodex.errors import NotFound
    from localcodex.paths import codex_home

    home = codex_home(env)
    try:
        found = read_profile(home, PROFILE).model
    except (NotFound, ConfigError):
        found = None
    if found:
        return found
    raise UsageError(
        f"no model to check: pass --model, or write the {PROFILE} Codex profile first "
        f"({home / (PROFILE + '.config.toml')} has no `model`)",
        "e.g. `localcodex check --model qwen3.5:27b`, or run `localcodex setup`",
    )


def _given_base(req: CheckRequest, live: Live) -> str:
    if req.base_url:
        return req.base_url.strip()
    return live.host(req.host).openai


def _open_client(run: ProbeRun) -> None:
    try:
        run.client = run.live.openai_client(run.base, env_key=run.req.env_key, headers=run.req.headers,
                                            timeouts=run.quick())
    except LocalcodexError as exc:  # the env_key variable is missing: Codex would stop here, so do we
        run.key_error = exc


def _run_probe(run: ProbeRun, name: str, title: str) -> Probe:
    verdict = _blocked(run, name)
    if verdict is None and run.req.only is not None and name not in run.req.only:
        verdict = skipped("not requested", requested=False)
    if verdict is None and name in WORKLOADS and not run.paced:
        _measure_pace(run)
    started = time.perf_counter()
    if verdict is None:
        run.limit = _probe_limit(run, name)
        run.deadline = started + run.limit
        try:
            with _ollama_deadline(run, f"check: {title}"):
                verdict = PROBE_FUNCTIONS[name](run)
        except StepTimeout as exc:  # the limit that fired: a request's own (quick ones), else the probe's
            seconds = getattr(exc, "seconds", None) if name not in WORKLOADS else None
            verdict = failed(exc.message, exc.hint, error="timeout", time_limit_s=round(seconds or run.limit, 2))
        except LocalcodexError as exc:
            run.note_rejection(exc)
            verdict = failed(exc.message, exc.hint, error=getattr(exc, "kind", exc.code))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # JSON of a shape no probe expects
            verdict = failed(f"the server's answer has an unexpected shape ({type(exc).__name__}: {exc})",
                             "this server does not follow the OpenAI API closely enough for Codex",
                             error="unexpected_shape")
    data = verdict.data
    workload = name in WORKLOADS and run.limit and verdict.status is not Status.SKIP
    if workload or (timed_out(verdict) and "time_limit_s" not in data):  # a quick probe keeps the limit that fired
        data = {**data, "time_limit_s": round(run.limit, 2)}
    duration = round(time.perf_counter() - started, 3)
    if name in WORKLOADS and _gave_up(verdict) and run.client is not None and not run.is_ollama:
        data = {**data, **_let_server_finish(run)}
    return Probe(name, title, verdict.status, duration, verdict.detail, verdict.fix, data)


def timed_out(verdict: Verdict | Probe) -> bool:
    """The probe failed because it hit its time limit (the server stalled, or answered too slowly)."""
    return verdict.status is Status.FAIL and verdict.data.get("error") == "timeout"


@contextlib.contextmanager
def _ollama_deadline(run: ProbeRun, step: str) -> Iterator[None]:
    """Calls to Ollama's native API inside a probe end within the probe's limit too (streams included)."""
    server = run.ollama
    if server is None:
        yield
        return
    with server.deadline(max(0.0, run.deadline - time.perf_counter()), step):
        yield


def _gave_up(verdict: Verdict) -> bool:
    return verdict.data.get("error") == "timeout" or bool(verdict.data.get("gave_up"))


def _let_server_finish(run: ProbeRun) -> dict[str, Any]:
    """After a probe gave up: its request was closed, but a server may finish the prompt it was reading before
    it notices (llama-server does on a stream). Wait for it (its `/slots`), so the next probe is not timed
    while the server still works on a request nobody reads."""
    from localcodex.adapters.server_facts import wait_idle

    assert run.client is not None
    waited = time.perf_counter()
    idle = wait_idle(run.client, run.limit)
    if idle is None:
        return {}
    return {"server_idle_after_give_up": idle, "waited_for_server_s": round(time.perf_counter() - waited, 3)}


def _measure_pace(run: ProbeRun) -> None:
    """The short timed request that scales the generation probes' limits (before the first of them)."""
    run.paced = True
    if run.client is None or run.key_error is not None:
        return
    filler = filler_words(pace.PACE_WORDS)
    if run.is_ollama and run.ollama is not None:
        with run.ollama.deadline(run.req.timeout, "check: timing the server"):
            run.pace = pace.measure_ollama(run.ollama, run.model, run.req.timeout, filler)
    else:
        run.pace = pace.measure(run.client, run.model, run.quick_for(run.req.timeout), filler)


def _workloads() -> dict[str, tuple[int, int, int]]:
    """Per generation probe: (prompt tokens, answer tokens, requests), upper estimates."""
    codex = pace.tokens_of(codex_body("m", "Read notes.txt and tell me what it says."))
    return {"responses": (codex, pace.ANSWER_TOKENS, 2), "tools": (codex, pace.ANSWER_TOKENS, 3),
            "chat": (64, pace.ANSWER_TOKENS, 1), "context": (0, 16, 1)}


WORKLOADS = frozenset({"responses", "tools", "chat", "context"})


def _probe_limit(run: ProbeRun, name: str) -> float:
    if name not in WORKLOADS:
        return run.req.timeout
    prompt, answer, requests = _workloads()[name]
    if name == "context":  # the long prompt, as many tokens as words at least (and ~1.3x for most tokenizers)
        prompt = math.ceil(1.3 * context_words(run.req.min_context, None))
    return pace.limit(run.req.timeout, run.pace, prompt, answer, requests)


def _blocked(run: ProbeRun, name: str) -> Verdict | None:
    """Skip a probe whose prerequisites failed, or were themselves skipped because of a failure: the report
    then names the one root cause ("not run: Reachable failed") instead of repeating it."""
    if run.key_error is not None:  # nothing is sent without the key; the auth probe reports why
        if name == "auth":
            return None
        run.blocked[name] = TITLES["auth"]
        return skipped(f"not run: {run.key_error.message}", blocked_by="auth")
    for need in NEEDS[name]:
        prior = run.results.get(need)
        cause = run.blocked.get(need) or (TITLES[need] if prior and prior.status is Status.FAIL else None)
        if cause:
            run.blocked[name] = cause
            return skipped(f"not run: {cause} failed", blocked_by=cause)
    return None


def _report(run: ProbeRun, duration: float) -> CheckReport:
    probes = tuple(run.results[name] for name, _ in PROBES)
    counts = {s.value: sum(1 for p in probes if p.status is s) for s in Status}
    return CheckReport(
        model=run.model,
        base_url=run.base,
        suggested_base_url=run.suggested,
        server=run.server_kind,
        server_version=run.version,
        context_length=run.context_length,
        min_context=run.req.min_context,
        env_key=run.req.env_key,
        ok=counts[Status.FAIL.value] == 0,
        counts=counts,
        duration_s=round(duration, 3),
        probes=probes,
        pace=run.pace.data() if run.pace else None,
    )



PROBE_FUNCTIONS: dict[str, Callable[[ProbeRun], Verdict]] = {
    "reachable": probe_reachable,
    "url": probe_url,
    "server": probe_server,
    "model": probe_model,
    "responses": probe_responses,
    "tools": probe_tools,
    "context": probe_context,
    "chat": probe_chat,
    "auth": probe_auth,
}
