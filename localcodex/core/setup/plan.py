"""setup's plan and its one question: everything a run would change, worked out before anything is changed."""

from __future__ import annotations

import time
from dataclasses import replace

from localcodex.core.setup.model import (
    Run,
    Stop,
    configure_request,
    failed_step,
    require_ollama,
    retry_command,
)
from localcodex.domain.units import format_bytes
from localcodex.errors import LocalcodexError


def certain_changes(run: Run) -> list[str]:
    """What this run is sure to change, known before measuring anything or asking Ollama: a Codex profile that
    does not exist yet is written. (Used to refuse at once when there is no one to ask.)"""
    from localcodex.adapters.codex_config import profile_path

    path = profile_path(run.live.inv.codex_home, run.request.profile)
    if path.exists() or path.is_symlink():
        return []
    return [f"write the Codex profile {path} (a new file)", "and what else it takes: see every step with --dry-run"]


def refuse_early(run: Run) -> bool:
    """No terminal and no --yes: when the run is sure to change something, fail now (within a second, before
    the probes), as the one question would. False when refused; True when the plan must be worked out first."""
    if run.hooks.can_ask or run.request.dry_run:
        return True
    items = certain_changes(run)
    return confirm_plan(run, items, first="configure") if items else True


def confirm_plan(run: Run, known: list[str] | None = None, first: str = "pull") -> bool:
    """Work out everything this run would change (or take `known`), ask once (nothing to ask when nothing
    changes), and record a refusal, or the lack of a terminal to ask on, as the failure of the first step that
    would change something (`first`, unless the plan says). Nothing has been changed when this returns False."""
    start = time.monotonic()
    waited = 0.0  # time spent waiting for the answer: not the step's
    try:
        items = plan_items(run) if known is None else known
        if not items and not run.changes:
            return True
        run.plan = tuple(items)
        question = question_text(run, items)
        asked = time.monotonic()
        try:
            confirmed = run.hooks.confirm(question)
        finally:
            waited = time.monotonic() - asked
        if not confirmed:
            raise LocalcodexError("stopped before changing anything: the plan was not confirmed",
                                  "run `localcodex setup` again when you are ready, or see it with --dry-run",
                                  code="declined")
    except (LocalcodexError, Stop) as failure:
        first, err = (failure.step, failure.error) if isinstance(failure, Stop) else (first, failure)
        result = replace(failed_step(first, err), seconds=round(time.monotonic() - start - waited, 3),
                         retry=retry_command(run, first))
        run.steps.append(result)
        run.hooks.on_step(result)
        return False
    return True


def question_text(run: Run, items: list[str]) -> str:
    lines = [f"note: {c}" for c in run.changes]
    if items:  # a profile's diff lines come indented under their item
        lines += ["localcodex setup will:", *(item if item.startswith(" ") else f"  - {item}" for item in items)]
    lines.append("Go ahead?")
    return "\n".join(lines)


def plan_items(run: Run) -> list[str]:
    """What acting on this plan changes, one line each (the profile's diff indented below its line)."""
    from localcodex.core.variant import variant_name

    require_ollama(run)
    items = []
    base = run.base
    assert base is not None  # the choice ran first
    installed = run.server.find(base)
    if installed is None:
        size = format_bytes(run.candidate.size, decimal=True) if run.candidate else "size unknown"
        items.append(f"download {base} ({size}) into Ollama at {run.host.native}")
    if run.num_ctx:
        name = variant_name(base, run.num_ctx)
        if installed is None or run.server.find(name) is None:
            items.append(f"create {name} (num_ctx {run.num_ctx:,})")
    for m in run.unload:
        items.append(f"unload {m.name}, which holds {format_bytes(m.size)} (as `ollama stop {m.name}` does)")
    if items and not run.hooks.can_ask:
        return items  # the question cannot be answered: no need to work out the rest first
    if run.num_ctx:
        from localcodex.core.configure import configure

        try:
            run.preview = configure(configure_request(run, dry_run=True, ask_ollama=False), run.live)
        except LocalcodexError as err:
            raise Stop(err, "configure") from None
        if run.preview.changed:
            for f in run.preview.files:
                if f.changed and f.role == "profile":
                    items.append(f"write the Codex profile {f.path}")
                    items.extend("      " + line for line in diff_lines(f.diff))
                elif f.changed:
                    items.append(f"write {f.path}")
        old = old_variant(run, variant_name(base, run.num_ctx))
        if old:
            run.remove_old = old
            items.append(f"remove {old}, made by an earlier setup and used by no Codex profile")
    return items


def diff_lines(diff: str, limit: int = 24) -> list[str]:
    lines = [line.rstrip() for line in diff.splitlines() if line.strip() and not line.startswith(("---", "+++"))]
    return lines[:limit] + ([f"… {len(lines) - limit} more lines"] if len(lines) > limit else [])


def old_variant(run: Run, new: str) -> str | None:
    from localcodex.core.models import profile_models
    from localcodex.domain.names import same_model

    old = (run.state.get("result") or {}).get("variant")
    if not old or same_model(old, new) or old not in (run.state.get("variants") or []):
        return None
    users = {p for p in profile_models(run.live.inv.codex_home).get(old, ()) if p != run.request.profile}
    if users:
        return None
    try:
        return old if run.server.find(old) is not None else None
    except LocalcodexError:
        return None
