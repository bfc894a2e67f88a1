"""`doctor`: the troubleshooting table, automated.

It looks where Codex looks, without being told which profile or URL matters: `$CODEX_HOME/config.toml`, every
`$CODEX_HOME/NAME.config.toml` profile file, the project-local `.codex/config.toml` files from the current folder
up to the project root, the environment, the Ollama service's settings, and (unless `run_probes=False`) the
servers the configuration points at, through `check`'s probes. Every problem becomes a `Finding` that says what
is wrong, where (file, key, line) and how to fix it; a fix localcodex can apply names the command.

Nothing here writes: a doctor that changes files while diagnosing would hide the cause it reports.

How a configuration is evaluated (shared/reference/codex-config.md A3, A5): for plain `codex` the user config;
for `codex -p NAME` the user config deep-merged with `NAME.config.toml`; in both, a trusted project's
`.codex/config.toml` files on top, minus the keys Codex ignores there. Each such combination is a `Target`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from localcodex.core.doctor.types import (
    SEVERITIES,
    DoctorReport,
    DoctorRequest,
    DoctorRun,
    DoctorStep,
    ExaminedFile,
    Finding,
    build_targets,
)
from localcodex.domain.codex import PROFILE_NAME

__all__ = ["DoctorReport", "DoctorRequest", "DoctorStep", "Finding", "doctor"]


def doctor(req: DoctorRequest, on_progress: Callable[[DoctorStep], None] | None = None) -> DoctorReport:
    """Look at everything Codex and Ollama read, and report what is wrong and how to fix it. Never writes."""
    run = _start(req, on_progress)
    from localcodex.core.doctor import environment
    from localcodex.core.doctor import offline as checks

    run.report(DoctorStep("config", str(run.codex_home)))
    checks.codex_home_findings(run)
    files = checks.read_files(run)
    checks.journal_findings(run, files)
    targets = build_targets(files, req.profile)
    run.report(DoctorStep("codex"))
    checks.codex_findings(run, files)
    checks.config_findings(run, files, targets)
    run.report(DoctorStep("environment"))
    environment.environment_findings(run, files)
    if req.run_probes:
        from localcodex.core.doctor import live as doctor_live

        doctor_live.live_findings(run, targets)
    return DoctorReport(
        findings=order_findings(_without_credentials(f) for f in run.findings),
        files=tuple(ExaminedFile(str(f.path), f.kind, f.profile, f.ok) for f in files),
        profiles=tuple(t.profile or "" for t in targets),
        codex_version=run.codex_version,
        ollama_host=_host(run).native,
        ollama_version=run.ollama_version,
        probes_run=req.run_probes,
    )


def _start(req: DoctorRequest, on_progress: Callable[[DoctorStep], None] | None) -> DoctorRun:
    from localcodex.adapters.hostenv import HostEnv
    from localcodex.errors import UsageError
    from localcodex.paths import codex_home, home_dir

    if req.profile is not None and not PROFILE_NAME.match(req.profile):
        raise UsageError(f"invalid --profile value {req.profile!r}", "pass a plain name such as `local_ollama`")
    env = req.env if req.env is not None else MappingProxyType({})  # the invocation's: commands always pass it
    home = home_dir(env)
    return DoctorRun(
        req=req,
        env=env,
        home=home,
        codex_home=req.codex_home or codex_home(env),
        cwd=(req.cwd or Path.cwd()).resolve(),
        hostenv=req.hostenv or HostEnv(req.root, home),
        report=_redacting(on_progress) if on_progress else (lambda _step: None),
    )


def _without_credentials(finding: Finding) -> Finding:
    """No credential reaches the terminal: every URL a finding quotes (from a config file, or from a probe's
    error) is shown without user name, password or key (domain.urls.redact_url)."""
    from dataclasses import replace

    from localcodex.domain.urls import redact_urls

    command = redact_urls(finding.fix_command) if finding.fix_command else finding.fix_command
    return replace(finding, message=redact_urls(finding.message), fix=redact_urls(finding.fix), fix_command=command)


def _redacting(on_progress: Callable[[DoctorStep], None]) -> Callable[[DoctorStep], None]:
    from localcodex.domain.urls import redact_urls

    return lambda step: on_progress(DoctorStep(step.step, redact_urls(step.detail)))


def _host(run: DoctorRun) -> Any:
    from localcodex.paths import ollama_host

    return ollama_host(run.req.host, run.env)


def order_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Errors first, then warnings, then notes; the same problem reported twice (by two profiles) once."""
    seen: set[tuple[str, str | None, str | None, str]] = set()
    unique = []
    for f in findings:
        key = (f.id, f.file, f.key, f.message)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return tuple(sorted(unique, key=lambda f: SEVERITIES.index(f.severity)))


