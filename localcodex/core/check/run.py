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

import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localcodex.core.check import pace
from localcodex.domain.urls import BaseUrlMistake, diagnose, fixed_base, native_root, parse_version
from localcodex.errors import ConfigError, LocalcodexError, UsageError

if TYPE_CHECKING:
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.adapters.openai_compat import EventStream, OpenAICompatClient, Reply, Timeouts
    from localcodex.core.check.pace import Pace

from localcodex.core.check.types import (
    CheckReport,
    CheckRequest,
    Probe,
    ProbeStarted,
    Status,
    Verdict,
    failed,
    passed,
    skipped,
    warned,
)
from localcodex.core.check.wire import (  # noqa: F401 (re-exported)
    DEVELOPER,
    FILE_CONTENT,
    TOOL_NAMES,
    StreamReading,
    codex_body,
    items_summary,
    message,
    message_text,
    read_responses_stream,
)

QUICK_DEADLINE = 15.0  # seconds for a non-generating request (list, show, version)
OLLAMA_PORT = 11434
RESPONSES_SINCE = (0, 13, 3)  # Ollama added /v1/responses in v0.13.3
CODEX_OSS_MINIMUM = (0, 13, 4)  # `codex --oss` refuses older servers
PROFILE = "local_ollama"

PROBES: tuple[tuple[str, str], ...] = (
    ("reachable", "Reachable"),
    ("url", "Right URL"),
    ("server", "Server and version"),
    ("model", "Model present"),
    ("responses", "Responses API"),
    ("tools", "Tool call round trip"),
    ("context", "Context"),
    ("chat", "Chat completions"),
    ("auth", "Auth and headers"),
)
TITLES = dict(PROBES)
# A probe runs only when the probes it needs neither failed nor were blocked themselves.
NEEDS: dict[str, tuple[str, ...]] = {
    "reachable": (),
    "url": ("reachable",),
    "server": ("url",),
    "model": ("url",),
    "responses": ("server", "model"),
    "tools": ("responses",),
    "context": ("model",),
    "chat": ("model",),
    "auth": ("reachable",),  # an unset env_key fails it before anything else runs
}


class _ProbeDeadline(LocalcodexError):
    """A generation probe used up its time limit between two requests."""


# -- the run ----------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one check learns as it goes; each probe reads what earlier ones found."""

    req: CheckRequest
    model: str
    base: str  # as given
    client: OpenAICompatClient | None = None
    key_error: LocalcodexError | None = None
    first_reply: Reply | None = None
    suggested: str | None = None
    ollama: OllamaServer | None = None
    version: str | None = None
    server_kind: str = "unknown"
    served: list[str] = field(default_factory=list)
    context_length: int | None = None
    auth_rejections: list[str] = field(default_factory=list)
    host_refusals: list[str] = field(default_factory=list)  # Ollama's Host check: 403, empty body
    deadline: float = 0.0
    limit: float = 0.0  # the running probe's time limit: --timeout, scaled by the server's pace
    pace: Pace | None = None
    paced: bool = False  # the timed request was made (pace may still be None: it failed)
    blocked: dict[str, str] = field(default_factory=dict)
    results: dict[str, Probe] = field(default_factory=dict)

    # time limits ------------------------------------------------------------------------------------------

    def quick_for(self, total: float) -> Timeouts:
        from localcodex.adapters.openai_compat import Timeouts

        return Timeouts(connect=min(self.req.connect_timeout, total), read=total, total=total)

    def quick(self) -> Timeouts:
        from localcodex.adapters.openai_compat import Timeouts

        c = self.req.connect_timeout
        total = min(self.req.timeout, QUICK_DEADLINE)
        return Timeouts(connect=min(c, total), read=total, total=total)

    def budget(self) -> Timeouts:
        """Timeouts for the next request of a generation probe: whatever is left of the probe's limit."""
        from localcodex.adapters.openai_compat import Timeouts

        left = self.deadline - time.perf_counter()
        if left <= 0.05:
            raise _ProbeDeadline(
                f"the probe used up its {self.limit:.0f} s time limit before its next request",
                "a slow model on a slow machine may need more: raise --timeout",
            )
        return Timeouts(connect=min(self.req.connect_timeout, left), read=left, total=left, limit=self.limit)

    @property
    def is_ollama(self) -> bool:
        return self.server_kind == "ollama"

    def note_rejection(self, exc: BaseException) -> None:
        from localcodex.adapters.openai_compat import host_check_refusal

        status = getattr(exc, "status", None)
        reply = getattr(exc, "reply", None)
        if status == 403 and reply is not None and host_check_refusal(status, reply.text):
            self.host_refusals.append(str(exc))
        elif status in (401, 403):
            self.auth_rejections.append(str(exc))


def check(
    req: CheckRequest, on_progress: Callable[[ProbeStarted | Probe], None] | None = None
) -> CheckReport:
    """Run the nine probes in order and return the report. Raises only for bad input (no model to check)."""
    started = time.perf_counter()
    report = (on_progress or (lambda _e: None))
    model = resolve_model(req.model, req.env)
    if req.min_context < 1 or req.timeout <= 0 or req.connect_timeout <= 0:
        raise UsageError("--min-context, --timeout and the connect timeout must be positive numbers")
    run = _Run(req=req, model=model, base=_given_base(req))
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


def _given_base(req: CheckRequest) -> str:
    if req.base_url:
        return req.base_url.strip()
    from localcodex.paths import ollama_host

    return ollama_host(req.host, req.env).openai


def _open_client(run: _Run) -> None:
    from localcodex.adapters.openai_compat import OpenAICompatClient

    try:
        run.client = OpenAICompatClient(
            run.base, api_key_env=run.req.env_key, env=run.req.env, headers=run.req.headers, timeouts=run.quick()
        )
    except LocalcodexError as exc:  # the env_key variable is missing: Codex would stop here, so do we
        run.key_error = exc


def _run_probe(run: _Run, name: str, title: str) -> Probe:
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
            verdict = PROBE_FUNCTIONS[name](run)
        except LocalcodexError as exc:
            run.note_rejection(exc)
            verdict = failed(exc.message, exc.hint, error=getattr(exc, "kind", exc.code))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # JSON of a shape no probe expects
            verdict = failed(f"the server's answer has an unexpected shape ({type(exc).__name__}: {exc})",
                             "this server does not follow the OpenAI API closely enough for Codex",
                             error="unexpected_shape")
    data = verdict.data
    if name in WORKLOADS and run.limit and verdict.status is not Status.SKIP:
        data = {**data, "time_limit_s": round(run.limit, 2)}
    duration = round(time.perf_counter() - started, 3)
    if name in WORKLOADS and _gave_up(verdict) and run.client is not None and not run.is_ollama:
        data = {**data, **_let_server_finish(run)}
    return Probe(name, title, verdict.status, duration, verdict.detail, verdict.fix, data)


def _gave_up(verdict: Verdict) -> bool:
    return verdict.data.get("error") == "timeout" or bool(verdict.data.get("gave_up"))


def _let_server_finish(run: _Run) -> dict[str, Any]:
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


def _measure_pace(run: _Run) -> None:
    """The short timed request that scales the generation probes' limits (before the first of them)."""
    run.paced = True
    if run.client is None or run.key_error is not None:
        return
    filler = filler_words(pace.PACE_WORDS)
    if run.is_ollama and run.ollama is not None:
        run.pace = pace.measure_ollama(run.ollama, run.model, run.req.timeout, filler)
    else:
        run.pace = pace.measure(run.client, run.model, run.quick_for(run.req.timeout), filler)


def _workloads() -> dict[str, tuple[int, int, int]]:
    """Per generation probe: (prompt tokens, answer tokens, requests), upper estimates."""
    codex = pace.tokens_of(codex_body("m", "Read notes.txt and tell me what it says."))
    return {"responses": (codex, pace.ANSWER_TOKENS, 2), "tools": (codex, pace.ANSWER_TOKENS, 3),
            "chat": (64, pace.ANSWER_TOKENS, 1), "context": (0, 16, 1)}


WORKLOADS = frozenset({"responses", "tools", "chat", "context"})


def _probe_limit(run: _Run, name: str) -> float:
    if name not in WORKLOADS:
        return run.req.timeout
    prompt, answer, requests = _workloads()[name]
    if name == "context":  # the long prompt, as many tokens as words at least (and ~1.3x for most tokenizers)
        prompt = math.ceil(1.3 * _context_words(run.req.min_context, None))
    return pace.limit(run.req.timeout, run.pace, prompt, answer, requests)


def _blocked(run: _Run, name: str) -> Verdict | None:
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


def _report(run: _Run, duration: float) -> CheckReport:
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


# -- URLs -------------------------------------------------------------------------------------------------------

_MISTAKE_TEXT = {
    BaseUrlMistake.NOT_A_URL: "it has no http:// or https://",
    BaseUrlMistake.DOUBLED_V1: "/v1 appears twice",
    BaseUrlMistake.DOUBLE_SLASH: "the path has // in it, which Ollama answers with a 301 redirect that a POST "
                                 "does not survive",
    BaseUrlMistake.ENDPOINT_PATH: "base_url must stop before the endpoint (Codex appends /responses itself)",
    BaseUrlMistake.OLLAMA_ROOT: "this is Ollama's native API; its OpenAI-compatible API (what Codex needs) "
    "lives under /v1",
    BaseUrlMistake.MISSING_V1: "the path lacks /v1",
    BaseUrlMistake.WRONG_SERVER: "this is not an OpenAI-compatible API",
}


# -- probe 1: reachable -----------------------------------------------------------------------------------------


def probe_reachable(run: _Run) -> Verdict:
    from localcodex.adapters.openai_compat import ConnectionRefused, EndpointError, EndpointTimeout, TLSFailure

    if "://" not in run.base:
        good = fixed_base(f"http://{run.base}")
        return failed(f"{run.base!r} is not a URL Codex can use: it has no http:// or https://",
                      f'use base_url = "{good}"', url=run.base, error="bad_url")
    assert run.client is not None
    try:
        reply = run.client.request("GET", "models", timeouts=run.quick())
    except (ConnectionRefused, EndpointTimeout, TLSFailure) as exc:
        found = _find_working(run, exclude=())
        fix = f'{exc.hint}; {found[1]} answers at {found[0]}: use base_url = "{found[0]}"' if found else exc.hint
        if found:
            run.suggested = found[0]
        return failed(exc.message, fix, url=exc.url, error=exc.kind, suggested=found[0] if found else None)
    except EndpointError as exc:
        return failed(exc.message, exc.hint, url=exc.url, error=exc.kind)
    run.first_reply = reply
    return passed(f"{reply.url} answered HTTP {reply.status} in {reply.elapsed_s * 1000:.0f} ms",
                  url=reply.url, http_status=reply.status, server=reply.server, elapsed_s=round(reply.elapsed_s, 4))


# -- probe 2: right URL -----------------------------------------------------------------------------------------


def _models_shape(reply: Reply) -> bool:
    if reply.status != 200:
        return False
    try:
        body = json.loads(reply.text)
    except ValueError:
        return False
    return isinstance(body, dict) and (isinstance(body.get("data"), list) or body.get("data", 0) is None)


def _who(run: _Run, base: str) -> str:
    """Name what answers at a base URL: 'Ollama 0.32.15', or the server header, or a generic phrase."""
    from localcodex.adapters.openai_compat import EndpointError, OpenAICompatClient

    try:
        with OpenAICompatClient(native_root(base), timeouts=run.quick()) as probe:
            reply = probe.request("GET", "api/version", timeouts=_short(run))
    except EndpointError:
        return "an OpenAI-compatible server"
    version = _version_of(reply)
    if version:
        return f"Ollama {version}"
    return f"an OpenAI-compatible server ({reply.server})" if reply.server else "an OpenAI-compatible server"


def _short(run: _Run) -> Timeouts:
    from localcodex.adapters.openai_compat import Timeouts

    c = min(run.req.connect_timeout, 2.0)
    return Timeouts(connect=c, read=4.0, total=4.0)


def _answers_models(run: _Run, base: str) -> bool:
    from localcodex.adapters.openai_compat import EndpointError, OpenAICompatClient

    try:
        with OpenAICompatClient(base, api_key_env=run.req.env_key, env=run.req.env, headers=run.req.headers) as c:
            return _models_shape(c.request("GET", "models", timeouts=_short(run)))
    except (EndpointError, LocalcodexError):
        return False


def _candidates(run: _Run) -> list[str]:
    """Base URLs worth trying when the given one is wrong: repaired paths first, then plain http for a TLS
    mistake, then the configured Ollama host, then the Ollama port on the same host."""
    from localcodex.paths import ollama_host

    given = run.base.strip()
    split = urllib.parse.urlsplit(given)
    fixed = fixed_base(given)
    found = [fixed]
    if split.scheme == "https":
        found.append(fixed.replace("https://", "http://", 1))
    found.append(ollama_host(run.req.host, run.req.env).openai)
    if split.hostname:
        host = f"[{split.hostname}]" if ":" in split.hostname else split.hostname
        found.append(f"http://{host}:{OLLAMA_PORT}/v1")
    unique: list[str] = []
    for url in found:
        if url not in unique and url.rstrip("/") != given.rstrip("/"):
            unique.append(url)
    return unique


def _find_working(run: _Run, exclude: Iterable[str]) -> tuple[str, str] | None:
    """The first candidate base URL whose /models answers like an OpenAI API, with what answered there."""
    skip = {u.rstrip("/") for u in exclude}
    for base in _candidates(run):
        if base.rstrip("/") not in skip and _answers_models(run, base):
            return base, _who(run, base)
    return None


def probe_url(run: _Run) -> Verdict:
    reply = run.first_reply
    assert reply is not None
    given = run.base
    if _models_shape(reply):
        return _url_ok(run, given)
    from localcodex.adapters.openai_compat import HOST_CHECK_FIX, host_check_refusal

    if host_check_refusal(reply.status, reply.text):
        run.host_refusals.append(f"{reply.url} answered HTTP 403 with an empty body")
        return failed(f"{reply.url} answered HTTP 403 with an empty body: Ollama's allowed-host check refused the "
                      "Host header this request carried", HOST_CHECK_FIX, url=reply.url, http_status=403,
                      host_check=True)
    if reply.status in (401, 403):
        run.auth_rejections.append(f"{reply.url} answered HTTP {reply.status}: {reply.error_message()}")
        return failed(
            f"{reply.url} answered HTTP {reply.status} ({reply.error_message()}): the URL may be right, "
            "but the server refused the request without a valid key",
            _key_fix(run), url=reply.url, http_status=reply.status,
        )
    ollama_here = _who(run, given).startswith("Ollama")
    mistake = diagnose(given, ollama_here)
    would = f"{given.rstrip('/')}/responses"
    found = _find_working(run, exclude=(given,))
    detail = f"{given}: {_MISTAKE_TEXT[mistake]}. Codex would POST {would}; {reply.url} answered {reply.describe()}"
    if found is None:
        return failed(
            detail,
            "check the port and path: Ollama serves the API at http://HOST:11434/v1; llama-server, LM Studio and "
            "vLLM at http://HOST:PORT/v1",
            given=given, mistake=mistake.value, answered=reply.describe(), suggested=None,
        )
    good, who = found
    run.suggested = good
    return failed(f"{detail}; {who} answers at {good}", f'use base_url = "{good}"',
                  given=given, mistake=mistake.value, answered=reply.describe(), suggested=good)


def _url_ok(run: _Run, given: str) -> Verdict:
    clean = given.strip().rstrip("/")
    split = urllib.parse.urlsplit(clean)
    if "//" in split.path:
        # Ollama's mux answers 301 for a non-canonical path, POST included (server/routes.go ~2000, ~2018);
        # /models answered only through the redirect.
        good = urllib.parse.urlunsplit((split.scheme, split.netloc, re.sub(r"/{2,}", "/", split.path), "", ""))
        run.suggested = good
        return failed(f"{given}: the path has // in it; the server answered through a redirect (Ollama sends 301 "
                      f"to the cleaned path), which a POST to {clean}/responses does not survive",
                      f'use base_url = "{good}"', given=given, mistake="double slash", suggested=good)
    run.suggested = clean
    if given.strip() != clean:
        return warned(
            f"{clean}/models answers; the trailing slash is harmless to Codex (it trims it) but not to every client",
            f'use base_url = "{clean}"', given=given, mistake="trailing slash", suggested=clean,
        )
    return passed(f"{clean}/models answers like an OpenAI API; Codex will POST {clean}/responses",
                  given=given, suggested=clean)


def _key_fix(run: _Run) -> str:
    if run.req.env_key:
        return f"the key in ${run.req.env_key} was refused: check its value (it is never printed)"
    return "pass --env-key VAR with the variable that holds the key, and set env_key = \"VAR\" in the provider"


# -- probe 3: server and version --------------------------------------------------------------------------------


def _version_of(reply: Reply) -> str | None:
    if reply.status != 200:
        return None
    try:
        body = json.loads(reply.text)
    except ValueError:
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return str(version) if isinstance(version, str) and version else None


def probe_server(run: _Run) -> Verdict:
    assert run.client is not None
    root = native_root(run.base)
    reply = run.client.request("GET", f"{root}/api/version", timeouts=run.quick())
    version = _version_of(reply)
    if version is None:
        run.server_kind = "openai-compatible"
        what = f" ({reply.server})" if reply.server else ""
        return skipped(
            f"not Ollama{what}: {root}/api/version answered HTTP {reply.status}, so the Ollama-only checks "
            "(version, pulled, capabilities, loaded context) are skipped",
            server=reply.server, ollama=False,
        )
    _attach_ollama(run, root, version)
    return judge_version(version)


def _attach_ollama(run: _Run, root: str, version: str) -> None:
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.paths import ollama_host

    run.server_kind = "ollama"
    run.version = version
    run.ollama = OllamaServer(ollama_host(root, {}), timeout=run.quick().total)


def judge_version(version: str) -> Verdict:
    parsed = parse_version(version)
    upgrade = "upgrade Ollama to 0.13.4 or newer: https://ollama.com/download"
    if parsed is None or parsed == (0, 0, 0):
        return warned(f"Ollama {version} (a development build): its version cannot be compared",
                      "if /v1/responses fails below, upgrade Ollama", version=version, ollama=True)
    if parsed < RESPONSES_SINCE:
        return failed(f"Ollama {version} is too old: /v1/responses, the only API Codex speaks, arrived in 0.13.3; "
                      "upgrade Ollama", upgrade, version=version, ollama=True)
    if parsed < CODEX_OSS_MINIMUM:
        return warned(f"Ollama {version} serves /v1/responses, but `codex --oss` requires 0.13.4: upgrade Ollama",
                      upgrade, version=version, ollama=True)
    return passed(f"Ollama {version} (serves /v1/responses; `codex --oss` needs 0.13.4 or newer)",
                  version=version, ollama=True)


# -- probe 4: model present -------------------------------------------------------------------------------------


def probe_model(run: _Run) -> Verdict:
    assert run.client is not None
    run.served = run.client.models(timeouts=run.quick())
    listed = _listed(run)
    if not run.is_ollama:
        return _model_elsewhere(run, listed)
    if listed is None:
        return failed(f"{run.model} is not listed by {run.base.rstrip('/')}/models{_served_text(run.served)}",
                      f"pull it: `localcodex pull {run.model}` (or `ollama pull {run.model}`)",
                      served=run.served)
    return _model_on_ollama(run, listed)


def _listed(run: _Run) -> str | None:
    """The served id that is this model: Ollama's matching rules (`:latest` implied, any case) for Ollama,
    the exact id (or the same id in another case) elsewhere."""
    from localcodex.adapters.ollama import same_model

    if run.is_ollama:
        return next((m for m in run.served if same_model(m, run.model)), None)
    exact = next((m for m in run.served if m == run.model), None)
    return exact or next((m for m in run.served if m.lower() == run.model.lower()), None)


def _served_text(served: list[str], limit: int = 8) -> str:
    if not served:
        return " (it serves no model)"
    more = f", … ({len(served)} in all)" if len(served) > limit else ""
    return f" (it serves: {', '.join(served[:limit])}{more})"


def _model_elsewhere(run: _Run, listed: str | None) -> Verdict:
    if listed is None:
        return warned(
            f"{run.model} is not listed by {run.base.rstrip('/')}/models{_served_text(run.served)}; "
            "some servers answer any name (llama-server), others reject it (vLLM): the probes below decide",
            "pass --model with a listed id", served=run.served, listed=False,
        )
    return passed(f"{listed} is listed by {run.base.rstrip('/')}/models (tool support is checked below)",
                  served=run.served, listed=True)


def _model_on_ollama(run: _Run, listed: str) -> Verdict:
    assert run.ollama is not None
    installed = run.ollama.find(run.model)
    if installed is None:
        return failed(f"{run.model} is listed by /v1/models but not by /api/tags",
                      f"pull it again: `localcodex pull {run.model}`", served=run.served)
    details = run.ollama.show(run.model)
    data = {"id": listed, "size": installed.size, "capabilities": list(details.capabilities),
            "num_ctx": details.num_ctx, "trained_context": details.context_length,
            "parameter_size": details.parameter_size, "quantization": details.quantization_level}
    if not details.capabilities:
        return warned(f"{listed} is pulled, but this Ollama does not report capabilities: tool support is "
                      "tested by the round trip below", "upgrade Ollama to see capabilities", **data)
    if not details.supports_tools:
        caps = ", ".join(details.capabilities)
        return failed(f"{listed} cannot call tools (capabilities: {caps}): Codex does all its work through tools, "
                      "so it is useless with this model",
                      "pick a model with tools: `localcodex recommend` lists the ones that fit this machine", **data)
    facts = " ".join(x for x in (details.parameter_size, details.quantization_level) if x)
    what = f" ({facts})" if facts else ""
    return passed(f"{listed}{what} is pulled and can call tools (capabilities: {', '.join(details.capabilities)})",
                  **data)


# -- probe 5: the Responses API as Codex uses it ----------------------------------------------------------------


def probe_responses(run: _Run) -> Verdict:
    from localcodex.adapters.openai_compat import HTTPStatusError

    assert run.client is not None
    body = codex_body(run.model, "Say in one short sentence that you are ready. No tools are needed for this.")
    try:
        plain = run.client.responses(body, timeouts=run.budget())
    except HTTPStatusError as exc:
        run.note_rejection(exc)
        return failed(f"non-streamed POST {exc.message}{_codex_says(exc.status)}", exc.hint,
                      http_status=exc.status, error="http")
    problem = _plain_problem(plain)
    if problem:
        return failed(f"non-streamed answer: {problem}", _server_fix(run), answer=_clip(json.dumps(plain)))
    with run.client.responses(body, stream=True, timeouts=run.budget()) as stream:
        reading = read_responses_stream(stream)
    return _judge_responses(run, plain, reading)


def _codex_says(status: int) -> str:
    if status >= 500:
        return " (Codex retries for about 25 s, then shows \"We're currently experiencing high demand\")"
    if status == 404:
        return " (Codex retries 5 times, then stops with this 404)"
    return ""


def _plain_problem(plain: dict[str, Any]) -> str | None:
    output = plain.get("output")
    if not isinstance(output, list):
        return "it has no `output` list"
    if not plain.get("id"):
        return "it has no response id"
    if not output:
        return "its `output` is empty"
    if plain.get("status") not in (None, "completed"):
        return f"its status is {plain.get('status')!r}, not 'completed'"
    return None


def _server_fix(run: _Run) -> str:
    if run.is_ollama:
        return "upgrade Ollama (`ollama -v`), and check the server log for this request"
    return "this server's /responses does not follow the OpenAI Responses API: Codex cannot use it"


def _judge_responses(run: _Run, plain: dict[str, Any], reading: StreamReading) -> Verdict:
    data = {
        "response_id": (reading.completed or {}).get("id"),
        "events": reading.events,
        "items": items_summary(reading.items),
        "first_event_s": _r(reading.first_event_s),
        "first_text_s": _r(reading.first_text_s),
        "total_s": _r(reading.total_s),
        "usage": (reading.completed or {}).get("usage") or plain.get("usage"),
        "non_streamed_items": items_summary(plain.get("output") or []),
    }
    if reading.problems:
        return failed(f"streamed answer: {'; '.join(reading.problems)}", _server_fix(run), **data)
    summary = (f"non-streamed and streamed answers read like Codex reads them: {len(reading.events)} events, "
               f"response.completed with id {data['response_id']} after {reading.total_s:.2f} s")
    if reading.oddities:
        return warned(f"{summary}; but {'; '.join(reading.oddities)}", None, **data)
    return passed(summary, **data)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _clip(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- probe 6: tool call round trip ------------------------------------------------------------------------------

TOOL_PROMPT = "What does the file notes.txt say? Read it with the read_file tool, then tell me in one sentence."
_JSON_IN_PROSE = re.compile(r"\{[^{}]*\"(name|arguments|parameters|path|function)\"", re.S)


def probe_tools(run: _Run) -> Verdict:
    assert run.client is not None
    body = codex_body(run.model, TOOL_PROMPT)
    with run.client.responses(body, stream=True, timeouts=run.budget()) as stream:
        first = read_responses_stream(stream)
    if first.problems:
        return failed(f"the answer to a tool request broke: {'; '.join(first.problems)}", _server_fix(run))
    calls = [i for i in first.items if i.get("type") == "function_call"]
    if not calls:
        return _prose_verdict(message_text(first.items) or first.text)
    call = calls[0]
    broken = _call_problem(call)
    if broken:
        return failed(f"the function call is malformed: {broken}", _tools_fix(), call=call)
    return _round_trip(run, body, call)


def _prose_verdict(text: str) -> Verdict:
    shown = _clip(text, 120)
    if _JSON_IN_PROSE.search(text):
        what = f"wrote the tool call as text instead of calling read_file: {shown!r}"
    else:
        what = f"answered in prose without calling read_file: {shown!r}" if text else "answered with nothing"
    return warned(f"asked to read a file with a tool, the model {what}. Codex edits will fail with this model",
                  _tools_fix(), answer=text[:500], tool_called=False)


def _tools_fix() -> str:
    from localcodex.domain.catalog import load_catalog

    families = " and ".join(load_catalog().text_tool_call_families()) or "some models"
    return ("use a model whose chat template supports tool calls (`localcodex recommend` lists them); "
            f"{families} writes calls as text, for example (the catalog's tool_calls_source says who saw it)")


def _call_problem(call: dict[str, Any]) -> str | None:
    name = call.get("name")
    if not name:
        return "it has no function name"
    if name not in TOOL_NAMES:
        return f"it calls {name!r}, a function it was not given"
    if not call.get("call_id"):
        return "it has no call_id (Codex cannot send the result back)"
    raw = call.get("arguments")
    try:
        args = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        args = None
    if not isinstance(args, dict):
        return f"its arguments are not a JSON object: {_clip(str(raw), 80)!r}"
    return None


def _round_trip(run: _Run, body: dict[str, Any], call: dict[str, Any]) -> Verdict:
    assert run.client is not None
    back = {"type": "function_call", "call_id": call["call_id"], "name": call["name"],
            "arguments": call["arguments"]}
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": FILE_CONTENT}
    second = codex_body(run.model, TOOL_PROMPT, extra=(back, output))
    with run.client.responses(second, stream=True, timeouts=run.budget()) as stream:
        reading = read_responses_stream(stream)
    shown = f"{call['name']}({_clip(call['arguments'], 80)})"
    data: dict[str, Any] = {"call": {"name": call["name"], "arguments": json.loads(call["arguments"])}}
    if reading.problems:
        return failed(f"called {shown}, but the answer after the tool output broke: {'; '.join(reading.problems)}",
                      _server_fix(run), **data)
    final = message_text(reading.items) or reading.text
    data["final"] = final[:500]
    if final.strip():
        return passed(f"called {shown}, then answered from the tool output: {_clip(final, 80)!r}", **data)
    again = [i for i in reading.items if i.get("type") == "function_call"]
    if again:
        return warned(f"called {shown}, then called {again[0].get('name')} again instead of answering",
                      "fine for Codex (it loops on tool calls), but watch for models that never stop", **data)
    return failed(f"called {shown}, but answered nothing after the tool output", _tools_fix(), **data)


# -- probe 7: context -------------------------------------------------------------------------------------------

_FILLER = (
    "river", "garden", "window", "silver", "planet", "market", "forest", "bridge", "candle", "harbor", "meadow",
    "pencil", "rocket", "saddle", "temple", "valley", "winter", "yellow", "anchor", "basket", "castle", "desert",
    "engine", "falcon", "ginger", "hammer", "island", "jungle", "kettle", "ladder", "mirror", "needle", "orange",
    "pepper", "quartz", "ribbon", "shadow", "ticket", "velvet", "walnut", "zipper", "blanket", "compass",
)


def filler_words(count: int) -> str:
    """`count` ordinary words: every tokenizer makes at least one token of each, so the prompt has at least
    `count` tokens whatever the model."""
    return " ".join(_FILLER[(i * 7 + i // len(_FILLER)) % len(_FILLER)] for i in range(count))


@dataclass
class _ContextSeen:
    need: int
    sent: int  # the long prompt had at least this many tokens
    loaded: int | None = None  # /api/ps context_length, or the model's num_ctx
    source: str | None = None
    measured: int | None = None  # input tokens the server counted for the long prompt
    refusal: str | None = None  # the server's words when it refused the long prompt
    late: str | None = None  # why the long-prompt test did not finish

    @property
    def cut(self) -> bool:
        return self.measured is not None and self.measured < self.need

    def data(self) -> dict[str, Any]:
        return {"loaded_context": self.loaded, "source": self.source, "sent_at_least": self.sent,
                "input_tokens": self.measured, "min_context": self.need, "truncated": self.cut,
                "gave_up": self.late is not None}


def _context_words(need: int, stated: int | None) -> int:
    """Words of the long prompt: more than the context Codex needs, and than the one the server states."""
    return math.ceil(max(need, stated or 0) * 1.1) + 64


def probe_context(run: _Run) -> Verdict:
    need = run.req.min_context
    loaded, source = _loaded_context(run)
    seen = _ContextSeen(need=need, sent=_context_words(need, None if run.is_ollama else loaded),
                        loaded=loaded, source=source)
    seen.measured, seen.refusal, seen.late = _truncation_test(run, seen.sent)
    if run.is_ollama and seen.loaded is None:  # the long prompt loaded it
        seen.loaded, seen.source = _loaded_context(run)
    run.context_length = seen.loaded if seen.loaded is not None else (seen.measured if seen.cut else None)
    return _judge_context(run, seen)


def _loaded_context(run: _Run) -> tuple[int | None, str | None]:
    if not run.is_ollama or run.ollama is None:
        from localcodex.adapters.server_facts import server_context

        stated = server_context(run.client, run.model, ollama_ps=False) if run.client is not None else None
        return (stated.tokens, stated.source) if stated else (None, None)
    from localcodex.core.variant import loaded_runner

    running = loaded_runner(run.ollama, run.model)  # by weights too: /api/ps may name the base model
    if running is not None and running.context_length:
        return running.context_length, "/api/ps"
    details = run.ollama.show(run.model)
    if details.num_ctx:
        return details.num_ctx, "num_ctx of the model"
    return None, None


def _truncation_test(run: _Run, words: int) -> tuple[int | None, str | None, str | None]:
    """Send a prompt of at least `words` tokens; return (input tokens the server counted, its refusal, timeout)."""
    from localcodex.adapters.openai_compat import EndpointTimeout, HTTPStatusError

    assert run.client is not None
    # The filler goes in a `user` message: every template renders those, while many (qwen3, qwen2.5-coder,
    # GLM-4.7: Ollama model/renderers/glm47.go ~73-100) drop `developer` messages, which then count zero.
    prompt = f"Background notes (ignore them):\n{filler_words(words)}\n\nReply with the single word OK."
    body = codex_body(run.model, prompt, tools=())
    body["max_output_tokens"] = 16
    try:
        answer = run.client.responses(body, timeouts=run.budget())
    except HTTPStatusError as exc:
        if exc.status in (400, 413, 422):
            return None, exc.reply.error_message(), None
        raise
    except (EndpointTimeout, _ProbeDeadline) as exc:
        return None, None, exc.message
    found = answer.get("usage")
    usage: dict[str, Any] = found if isinstance(found, dict) else {}
    tokens = usage.get("input_tokens")
    return (int(tokens) if isinstance(tokens, (int, float)) else None), None, None


def _context_fix(run: _Run, need: int) -> str:
    target = 1 << max(need - 1, 1).bit_length()
    if run.is_ollama:
        return (f"`localcodex models context {run.model} --ctx {target}` creates a variant with that context; "
                "point the Codex profile at it (and set model_context_window to match)")
    return (f"restart the server with a context of at least {target} tokens (llama-server: -c {target}; "
            f"vLLM: --max-model-len {target}; LM Studio: the model's Context Length)")


def _judge_context(run: _Run, seen: _ContextSeen) -> Verdict:
    need, sent, measured, data = seen.need, seen.sent, seen.measured, seen.data()
    head = f"loaded with a context of {seen.loaded:,} tokens ({seen.source})" if seen.loaded else ""
    lead = f"{head}; " if head else ""
    fix = _context_fix(run, need)
    if seen.refusal is not None and seen.loaded is not None and seen.loaded >= need and not run.is_ollama:
        return passed(f"{head}, at least the {need:,} Codex needs; a longer prompt ({sent:,}+ tokens) was refused "
                      f"({seen.refusal!r}), not cut silently", **data)
    if seen.refusal is not None:
        return failed(f"{lead}the server refused a prompt of at least {sent:,} tokens ({seen.refusal!r}): its "
                      f"context is below the {need:,} tokens Codex needs", fix, **data)
    if seen.cut:
        return failed(f"{lead}a prompt of at least {sent:,} tokens arrived as {measured:,} input tokens: the server "
                      f"cut it silently, as it would cut Codex's prompts. Codex needs at least {need:,}", fix, **data)
    if seen.loaded is not None and seen.loaded < need:
        return failed(f"{head}: below the {need:,} tokens Codex needs (its instructions and tools alone take "
                      "4-6k, and longer prompts are cut silently)", fix, **data)
    if seen.late is not None or measured is None:
        why = f"the long-prompt test did not finish ({seen.late})" if seen.late else "the server reported no usage"
        if seen.loaded is not None:
            return warned(f"{head}; truncation not verified: {why}", "raise --timeout to let the test finish", **data)
        return warned(f"context unknown: {why}", f"make sure the server keeps at least {need:,} tokens: {fix}",
                      **data)
    return passed(f"{lead}a prompt of at least {sent:,} tokens arrived whole ({measured:,} input tokens): "
                  f"at least the {need:,} Codex needs", **data)


# -- probe 8: chat completions ----------------------------------------------------------------------------------


def probe_chat(run: _Run) -> Verdict:
    from localcodex.adapters.openai_compat import HTTPStatusError

    assert run.client is not None
    body = {
        "model": run.model,
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Reply with one short sentence."}],
        "stream_options": {"include_usage": True},
    }
    try:
        with run.client.chat_completions(body, stream=True, timeouts=run.budget()) as stream:
            seen = _read_chat(stream)
    except HTTPStatusError as exc:
        run.note_rejection(exc)
        return failed(f"POST {exc.message}", exc.hint, http_status=exc.status)
    return _judge_chat(seen)


def _read_chat(stream: EventStream) -> dict[str, Any]:
    seen: dict[str, Any] = {"chunks": 0, "role_first": None, "finish": None, "usage": None, "done": False,
                            "after_done": False, "bad": None, "first_token_s": None, "text": ""}
    for event in stream:
        if seen["done"]:
            seen["after_done"] = True
            break
        if event.done:
            seen["done"] = True
            continue
        try:
            chunk = event.json()
        except ValueError:
            seen["bad"] = event.data[:80]
            break
        _take_chunk(seen, chunk, event.received_at - stream.sent_at)
    return seen


def _take_chunk(seen: dict[str, Any], chunk: Any, at: float) -> None:
    seen["chunks"] += 1
    if not isinstance(chunk, dict):
        return
    if isinstance(chunk.get("usage"), dict) and not chunk.get("choices"):
        seen["usage"] = chunk["usage"]
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if seen["role_first"] is None:
            seen["role_first"] = delta.get("role") == "assistant"
        if delta.get("content"):
            seen["text"] += delta["content"]
            seen["first_token_s"] = seen["first_token_s"] or round(at, 4)
        if choice.get("finish_reason"):
            seen["finish"] = choice["finish_reason"]


def _judge_chat(seen: dict[str, Any]) -> Verdict:
    data = {k: v for k, v in seen.items() if k != "text"} | {"text": seen["text"][:200]}
    if seen["bad"] is not None:
        return failed(f"a chunk is not JSON: {seen['bad']!r}", "check the server log", **data)
    if not seen["chunks"]:
        return failed("the stream carried no chunks", "check the server log", **data)
    if seen["finish"] is None and not seen["done"]:
        return failed(f"the stream ended after {seen['chunks']} chunks without a finish_reason or data: [DONE]: the "
                      "server failed in the middle of the answer (Ollama does not forward the error once a /v1 "
                      "stream has started)", "check the server log (out of memory? runner crashed?)", **data)
    if seen["finish"] is None:
        return failed("no chunk carried a finish_reason: clients cannot tell the answer is complete",
                      "check the server log", **data)
    gaps = []
    if not seen["role_first"]:
        gaps.append("the first chunk does not carry role=assistant")
    if seen["usage"] is None:
        gaps.append("no usage chunk although stream_options.include_usage was set (token counts unavailable)")
    if not seen["done"]:
        gaps.append("the stream did not end with data: [DONE]")
    summary = f"{seen['chunks']} chunks, finish_reason {seen['finish']!r}"
    if gaps:
        return warned(f"{summary}; but {'; '.join(gaps)}", "fine for Codex (it uses /responses); other clients "
                      "may mind", **data)
    usage = seen["usage"]
    return passed(f"{summary}, role first, usage ({usage.get('prompt_tokens')} prompt + "
                  f"{usage.get('completion_tokens')} completion tokens), then [DONE]", **data)


# -- probe 9: auth and headers ----------------------------------------------------------------------------------


def probe_auth(run: _Run) -> Verdict:
    var = run.req.env_key
    if run.key_error is not None:
        return failed(f"{run.key_error.message} Codex stops before sending anything, and so did this check",
                      run.key_error.hint, env_key=var, key_present=False)
    from localcodex.adapters.openai_compat import HOST_CHECK_FIX

    if run.host_refusals and not run.auth_rejections:
        return failed(f"the server refused the request by its Host header, not for a key: {run.host_refusals[0]}",
                      HOST_CHECK_FIX, env_key=var, key_present=bool(var), host_check=True)
    if run.auth_rejections:
        return failed(f"the server refused the request: {run.auth_rejections[0]}", _key_fix(run),
                      env_key=var, key_present=bool(var))
    if var:
        return passed(f"sent Authorization: Bearer with the key from ${var} (value hidden); the server accepted it",
                      env_key=var, key_present=True)
    return passed("no key sent (no --env-key), as Codex sends none without env_key; the server asked for none",
                  env_key=None, key_present=False)


PROBE_FUNCTIONS: dict[str, Callable[[_Run], Verdict]] = {
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
