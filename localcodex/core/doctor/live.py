"""The online half of `doctor`: what the servers behind each configured provider say.

For every distinct (base_url, model, env_key) the configuration uses, `check` runs its quick probes (reachable,
right URL, server version, model pulled + tools, auth); `deep=True` adds the generating ones (Responses API,
tool call, context truncation, chat). When the server is Ollama, doctor then reads the model's real context
and placement (`model_facts`). Adapters come from `Live`; every request has a total time limit.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from localcodex.core.check.state import QUICK_DEADLINE
from localcodex.core.doctor.endpoints import Endpoint, endpoint_groups
from localcodex.core.doctor.fixes import host_flag
from localcodex.core.doctor.model_facts import ollama_model_findings
from localcodex.core.doctor.types import (
    CODEX_MIN_CONTEXT,
    DoctorRun,
    DoctorStep,
    Finding,
    Severity,
    Target,
    dotted,
)
from localcodex.domain.urls import is_loopback_url
from localcodex.errors import LocalcodexError, StepTimeout

if TYPE_CHECKING:
    from localcodex.core.check.run import CheckReport, Probe
    from localcodex.core.ports import Live

QUICK_PROBES = frozenset({"reachable", "url", "server", "model", "auth"})


# -- the run ----------------------------------------------------------------------------------------------------


def live_findings(run: DoctorRun, targets: tuple[Target, ...], live: Live) -> None:
    """Probe every server the targets use (and the default Ollama host). Every request ends within its time
    limit (`DoctorRequest.probe_timeout`, at most QUICK_DEADLINE for the quick ones); one that hit it becomes a
    `probe-timeout` error naming the probe and the limit (the command exits 10)."""
    probed_roots: set[str] = set()
    for group in endpoint_groups(run, targets):
        run.report(DoctorStep("probe", f"{group[0].target.command}: {group[0].base_url}"))
        root = _probe_group(run, group, live)
        if root:
            probed_roots.add(root.rstrip("/"))
    default = live.host(run.req.host)
    if default.native.rstrip("/") not in probed_roots:
        run.report(DoctorStep("probe", default.native))
        run.add(*_default_server(run, default.native, bool(targets), live))


def quick_limit(run: DoctorRun) -> float:
    """The time limit of one request that generates nothing (a version, a list, a model's facts)."""
    return min(run.req.probe_timeout, QUICK_DEADLINE)


def _probe_group(run: DoctorRun, group: list[Endpoint], live: Live) -> str | None:
    """Run check once for a group of endpoints and turn its probes into findings; returns Ollama's root.

    What concerns a file (base_url, auth) is reported at every target's own file; what concerns the server or
    the model once, at the first. When the base_url is wrong but check found the right one, the rest is probed
    there: the user learns in one run what would still be wrong after fixing the URL.
    """
    first = group[0]
    report = _check(run, first, first.base_url, _probes(run, first), live)
    for endpoint in group:
        run.add(*(f for f in probe_findings(run, endpoint, report) if endpoint is first or f.id in _PER_FILE))
    url_failed = any(report.probe(n).status.value == "fail" for n in ("reachable", "url"))
    if url_failed and report.suggested_base_url:
        report = _check(run, first, report.suggested_base_url, _probes(run, first) - {"reachable", "url"}, live)
        run.add(*(f for f in probe_findings(run, first, report) if f.id not in _URL_FINDINGS))
    return _ollama_facts(run, group, report, live)


_URL_FINDINGS = ("base-url-unreachable", "base-url-wrong")
_PER_FILE = (*_URL_FINDINGS, "auth-rejected")


def _probes(run: DoctorRun, endpoint: Endpoint) -> frozenset[str]:
    from localcodex.core.check.run import PROBES

    if endpoint.model is None:
        return frozenset({"reachable", "url", "server"})
    return frozenset(name for name, _ in PROBES) if run.req.deep else QUICK_PROBES


def _check(run: DoctorRun, endpoint: Endpoint, base_url: str, only: frozenset[str], live: Live) -> CheckReport:
    from localcodex.core.check.run import CheckRequest, check

    return check(CheckRequest(
        model=endpoint.model or "-", host=run.req.host, base_url=base_url, env_key=endpoint.env_key,
        min_context=CODEX_MIN_CONTEXT, timeout=run.req.probe_timeout, headers=endpoint.headers, only=only,
    ), live)


def _ollama_facts(run: DoctorRun, group: list[Endpoint], report: CheckReport, live: Live) -> str | None:
    from localcodex.domain.urls import native_root

    if report.server != "ollama":
        return None
    root = native_root(report.suggested_base_url or report.base_url)
    run.ollama_version = run.ollama_version or report.server_version
    model_probe = report.probe("model")
    if group[0].model and model_probe.status.value in ("pass", "warn"):
        limit = quick_limit(run)
        server = live.ollama_at(live.host(root), timeout=limit)
        step = f"doctor: reading {group[0].model} from {root}"
        try:
            with server.deadline(limit, step):
                run.add(*ollama_model_findings(run, group, root, server))
        except StepTimeout as exc:
            run.add(_timeout_finding(step, exc))
    return root


def _timeout_finding(step: str, exc: StepTimeout) -> Finding:
    return Finding("probe-timeout", "error", exc.message if step in exc.message else f"{step}: {exc.message}",
                   None, None, None, exc.hint or "check that the server is not stuck, or raise --timeout", None)


# -- check's probes as findings ---------------------------------------------------------------------------------


def probe_findings(run: DoctorRun, endpoint: Endpoint, report: CheckReport) -> Iterator[Finding]:
    for probe in report.probes:
        if probe.status.value not in ("fail", "warn") or probe.data.get("requested") is False:
            continue
        if probe in report.timed_out:
            limit = probe.data.get("time_limit_s")
            yield endpoint.located(endpoint.base_key, "probe-timeout", "error",
                                   f"{endpoint.target.command}: probe {probe.title} of {endpoint.base_url}: not "
                                   f"finished within its {limit:g} s limit ({probe.detail})",
                                   probe.fix or "check that the server is not stuck, or raise --timeout")
            continue
        handler = _HANDLERS.get(probe.name, _generic)
        yield from handler(run, endpoint, report, probe)


def _reachable(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    suggested = probe.data.get("suggested")
    local = is_loopback_url(endpoint.base_url)
    message = (f"{endpoint.target.command} cannot reach its server: {probe.detail}. Codex retries a dead server "
               "forever (\"Reconnecting... waiting for network\")")
    if suggested:
        message += f"; {suggested} answers instead (wrong port?)"
    command = endpoint.configure(str(suggested)) if suggested and local else None
    if not suggested and local and _ollama_port(endpoint.base_url):
        fix, command = "start Ollama (`ollama serve`, or open the Ollama app), then run doctor again", "ollama serve"
    else:
        fix = probe.fix or "check the host and port in base_url"
    _drop_static_base_url(run, endpoint)
    yield endpoint.located(endpoint.base_key, "base-url-unreachable", "error", message, fix, command)


def _ollama_port(url: str) -> bool:
    return urllib.parse.urlsplit(url).port == 11434


def _url(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    if probe.status.value == "warn":  # a trailing slash: Codex trims it
        return
    suggested = probe.data.get("suggested")
    answered = probe.data.get("answered")
    message = f"base_url is wrong for {endpoint.target.command}: {probe.detail}"
    if answered and str(answered) not in message:
        message += f" (answered: {answered})"
    command = endpoint.configure(str(suggested)) if suggested and is_loopback_url(str(suggested)) else None
    _drop_static_base_url(run, endpoint)
    yield endpoint.located(endpoint.base_key, "base-url-wrong", "error", message,
                           probe.fix or "correct base_url", command)


def _drop_static_base_url(run: DoctorRun, endpoint: Endpoint) -> None:
    """The probe's finding says the same as the offline one, with what actually answered: keep only it."""
    origin = endpoint.target.origin(endpoint.base_key)
    where, key = (str(origin.path) if origin else None), dotted(endpoint.base_key)
    run.findings[:] = [f for f in run.findings if not (f.id == "base-url-wrong" and f.file == where and f.key == key)]


def _server(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    severity: Severity = "error" if probe.status.value == "fail" else "warning"
    yield Finding("ollama-too-old", severity, f"{endpoint.base_url}: {probe.detail}", None, None, None,
                  probe.fix or "upgrade Ollama: https://ollama.com/download", None)


def _model(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    model = endpoint.model or ""
    if probe.status.value == "warn":
        yield endpoint.located(("model",), "model-unverified", "warning", probe.detail, probe.fix or "")
    elif "capabilities" in probe.data:
        yield endpoint.located(("model",), "model-no-tools", "error", probe.detail,
                               probe.fix or "pick a model that can call tools", "localcodex recommend")
    else:
        yield endpoint.located(("model",), "model-not-pulled", "error",
                               f"{endpoint.target.command} uses {model}, which is not on the server: {probe.detail}",
                               f"pull it: `localcodex pull {model}{host_flag(_root(report))}`",
                               f"localcodex pull {model}{host_flag(_root(report))}")


def _root(report: CheckReport) -> str:
    from localcodex.domain.urls import native_root

    return native_root(report.suggested_base_url or report.base_url)


def _auth(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    key = ("model_providers", endpoint.provider, "env_key")
    if any(f.id == "env-key-unset" and f.key == dotted(key) for f in run.findings):
        return  # already reported offline, with the shell start-up story
    severity = "error" if probe.status.value == "fail" else "warning"
    if probe.data.get("host_check"):  # Ollama's allowed-host check, not a key: point at base_url
        yield endpoint.located(endpoint.base_key, "host-rejected", severity,
                               f"{endpoint.target.command}: {probe.detail}", probe.fix or "")
        return
    yield endpoint.located(key if endpoint.env_key else endpoint.base_key, "auth-rejected", severity,
                           f"{endpoint.target.command}: {probe.detail}", probe.fix or "check the key")


def _generic(run: DoctorRun, endpoint: Endpoint, report: CheckReport, probe: Probe) -> Iterator[Finding]:
    severity = "error" if probe.status.value == "fail" else "warning"
    yield endpoint.located(("model",), f"endpoint-{probe.name}", severity,
                           f"{endpoint.target.command}: {probe.title}: {probe.detail}", probe.fix or "")


_HANDLERS = {"reachable": _reachable, "url": _url, "server": _server, "model": _model, "auth": _auth}


# -- the default Ollama host, when no configured provider pointed at it -----------------------------------------


def _default_server(run: DoctorRun, native: str, configured: bool, live: Live) -> Iterator[Finding]:
    from localcodex.core.check.run import judge_version

    limit = quick_limit(run)
    server = live.ollama_at(live.host(native), timeout=limit)
    step = f"doctor: asking {native} for its version"
    try:
        with server.deadline(limit, step):
            version = server.version()
    except StepTimeout as exc:  # something answers there, but not in time: say so (exit 10), not "no Ollama"
        yield _timeout_finding(step, exc)
        return
    except LocalcodexError as exc:
        quiet: Severity = "info" if configured else "warning"
        yield Finding("ollama-unreachable", quiet, f"no Ollama answers at {native} ({exc.message})", None,
                      "OLLAMA_HOST", None, "start it (`ollama serve`, or open the Ollama app), or pass --host",
                      "ollama serve")
        return
    run.ollama_version = run.ollama_version or version
    verdict = judge_version(version)
    if verdict.status.value in ("fail", "warn"):
        old: Severity = "error" if verdict.status.value == "fail" else "warning"
        yield Finding("ollama-too-old", old, f"{native}: {verdict.detail}", None, None, None,
                      verdict.fix or "upgrade Ollama", None)

