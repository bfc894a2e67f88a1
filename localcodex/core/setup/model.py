"""`setup`: the whole pipeline, in order, reusing each step's own core function (no second implementation).

    detect → recommend → pull → context variant → check → configure → bench

Each step ends as one `Step` (done / unchanged / skipped / planned / failed / not run) with a one-line summary;
the first failure stops the run, keeps the steps before it, and names the command that retries that step.

First the plan (run.py, plan.py): detect and choose (choose.py: the remembered choices, the last result when
nothing real changed, or the recommendation, with the memory of loaded models counted as free), then work out
everything the run would change (download, variant, models to unload, the profile's diff, the old variant it
replaces) and ask ONE question through `hooks.confirm` (none when nothing changes; `--yes` answers it; no
terminal: exit 2 before any change). Then act (steps.py); no step asks again.

Re-running is cheap and changes nothing: every step is idempotent on its own (an installed model is not
pulled, an existing variant is not re-created, an unchanged profile is not rewritten), and what is expensive
to prove again — loading the model to verify its context, the probe series of `check`, the benchmark — is
remembered in a small state file (state.py) keyed by host, model and digest, so it is redone only when one of
those changed (or with `recheck`). An interrupted run continues where it stopped: Ollama resumes a pull from
its partial layers, and completed steps are recognised as done. Core code never prompts by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from localcodex.adapters.ollama import OllamaServer
from localcodex.adapters.setup_state import SetupState
from localcodex.core.ports import Live
from localcodex.core.setup.state import Choices
from localcodex.domain.bench import BenchEvent
from localcodex.domain.envelope import ErrorItem
from localcodex.domain.machine import Machine
from localcodex.domain.progress import PullEvent, PullPlan
from localcodex.errors import LocalcodexError, OllamaUnavailable
from localcodex.paths import OllamaHost

if TYPE_CHECKING:
    from localcodex.core.check.types import Probe, ProbeStarted
    from localcodex.core.configure import ConfigureRequest
    from localcodex.core.recommend.rank import Candidate

STEPS = ("detect", "recommend", "pull", "variant", "check", "configure", "bench")


TITLES = {
    "detect": "Measure this machine",
    "recommend": "Choose a model that fits",
    "pull": "Download the model",
    "variant": "Give it a context for Codex",
    "check": "Prove the /v1 endpoint",
    "configure": "Write the Codex profile",
    "bench": "Measure tokens per second",
}


class StepStatus(str, Enum):
    DONE = "done"
    UNCHANGED = "unchanged"  # already true: nothing to do
    SKIPPED = "skipped"  # not wanted (--no-bench)
    PLANNED = "planned"  # --dry-run: what would happen
    FAILED = "failed"
    NOT_RUN = "not run"  # setup stopped at another step (an earlier one, or the plan's refusal)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    status: StepStatus
    summary: str
    seconds: float = 0.0
    retry: str | None = None  # the command that runs this step again on its own
    error: ErrorItem | None = None
    warnings: tuple[str, ...] = ()
    exit_code: int = 0  # of the error that failed the step


@dataclass(frozen=True)
class SetupRequest:
    model: str | None = None  # skip the recommendation's pick (still evaluated for fit and context)
    context: int | None = None
    profile: str = "local_ollama"
    bench: bool = True
    dry_run: bool = False
    recheck: bool = False  # prove context, endpoint and speed again even if they were proven before
    vram: int | None = None  # detect's overrides
    ram: int | None = None
    gpu_none: bool = False
    forget: tuple[str, ...] = ()  # remembered choices (state.CHOICE_KEYS) to drop: `--gpu auto`, `--model auto`…
    host: str | None = None  # --host as typed, only to name it in retry commands (the server is the invocation's)


@dataclass
class SetupHooks:
    """How core asks and reports. Defaults: answer yes, report nothing (what tests and `--yes` want)."""

    confirm: Callable[[str], bool] = lambda question_text: True
    can_ask: bool = True  # False: confirm() cannot get an answer (no terminal, no --yes): fail before any work
    on_step: Callable[[Step], None] = lambda _step: None
    on_running: Callable[[str, str], None] = lambda _name, _title: None
    on_pull: Callable[[PullPlan | PullEvent], None] = lambda _event: None
    on_probe: Callable[[ProbeStarted | Probe], None] = lambda _event: None
    on_bench: Callable[[BenchEvent], None] = lambda _event: None


@dataclass(frozen=True)
class SetupReport:
    steps: tuple[Step, ...]
    host: str
    machine: Machine | None = None
    model: str | None = None  # the base model (as pulled)
    variant: str | None = None  # the model Codex uses (base with num_ctx baked in)
    context: int | None = None
    placement: str | None = None  # where it runs, as verified after loading (or as estimated)
    decode_tps: float | None = None  # measured
    prompt_tps: float | None = None
    profile_path: str | None = None
    codex_command: str | None = None
    next_models: tuple[str, ...] = ()  # the recommendation's runners-up, offered when tool calling fails
    dry_run: bool = False
    warnings: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()  # what this run was going to change, as asked in its one question
    remembered: tuple[str, ...] = ()  # options taken from an earlier run

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if s.status == StepStatus.FAILED), None)

    @property
    def ok(self) -> bool:
        return self.failed is None


class Stop(Exception):
    """Raised inside a step to end it as failed (wraps the step's own LocalcodexError); while planning, `step`
    names the step the failure belongs to."""

    def __init__(self, error: LocalcodexError, step: str = "pull") -> None:
        super().__init__(error.message)
        self.error = error
        self.step = step


@dataclass
class Run:
    request: SetupRequest
    hooks: SetupHooks
    live: Live
    host: OllamaHost
    server: OllamaServer
    store: SetupState
    state: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    machine: Machine | None = None
    candidate: Candidate | None = None
    base: str | None = None
    digest: str | None = None
    variant: str | None = None
    num_ctx: int | None = None
    placement: str | None = None
    decode_tps: float | None = None
    prompt_tps: float | None = None
    profile_path: str | None = None
    codex_command: str | None = None
    next_models: tuple[str, ...] = ()  # the recommendation's runners-up, offered when tool calling fails
    choices: Choices = field(default_factory=Choices)
    given: SetupRequest | None = None  # the request as the user typed it (before remembered choices)
    changes: list[str] = field(default_factory=list)  # what changed since the last run (said, and asked)
    unload: list[Any] = field(default_factory=list)  # loaded models to unload before loading ours
    remove_old: str | None = None  # the variant an earlier setup made that this one replaces
    preview: Any = None  # configure's dry run, made while planning
    context_verified: bool = False  # /api/ps showed the variant loaded with num_ctx (check need not prove it)
    plan: tuple[str, ...] = ()


def failed_step(name: str, err: LocalcodexError) -> Step:
    item = ErrorItem(err.code, err.message, err.hint)
    return Step(name, TITLES[name], StepStatus.FAILED, err.message, error=item, exit_code=int(err.exit_code))


def retry_command(run: Run, name: str) -> str:
    """The command that runs one step again on its own, with this run's model and host."""
    host = f" --host {run.request.host}" if run.request.host else ""
    base, variant, ctx = run.base or "MODEL", run.variant or planned_variant(run) or "MODEL", run.num_ctx or 65536
    commands = {
        "detect": "localcodex detect",
        "recommend": "localcodex recommend" + (f" --model {run.request.model}" if run.request.model else ""),
        "pull": f"localcodex pull {base}",
        "variant": f"localcodex models context {base} --ctx {ctx}",
        "check": f"localcodex check --model {variant}",
        "configure": f"localcodex configure --model {variant} --context {ctx} --profile {run.request.profile}",
        "bench": f"localcodex bench {variant}",
    }
    return commands[name] + host


def ollama_reachable(run: Run) -> bool:
    state = run.machine.ollama if run.machine else None
    return bool(state and state.reachable)


def require_ollama(run: Run, needed_for: str = "the model cannot be downloaded") -> None:
    if not ollama_reachable(run):
        state = run.machine.ollama if run.machine else None
        why = f" ({state.error.rsplit(': ', 1)[-1]})" if state and state.error else ""
        # a server that accepts the connection and then stays silent is running, just not answering
        silent = bool(state and state.error and "did not answer" in state.error)
        status = "is not answering" if silent else "is not running"
        raise OllamaUnavailable(
            f"Ollama {status} at {run.host.native}{why}: {needed_for}",
            "install Ollama from https://ollama.com/download and start it (`ollama serve` or the app), "
            "then run `localcodex setup` again (`localcodex recommend` shows what it would pick meanwhile); or "
            "point --host / OLLAMA_HOST at the machine that runs it",
        )


def planned_variant(run: Run) -> str | None:
    from localcodex.core.variant import variant_name

    return variant_name(run.base, run.num_ctx) if run.base and run.num_ctx else None


def configure_request(run: Run, *, dry_run: bool, ask_ollama: bool) -> ConfigureRequest:
    from localcodex.adapters.codex_cli import find_codex
    from localcodex.core.configure import ConfigureRequest

    req = run.request
    # With Codex installed, a model catalog for the profile stops its "Model metadata … not found" warning
    # and gives it the real context window (it takes Codex's own default prompt, so nothing else changes).
    # `localcodex configure` decides the same way, so the two never undo each other.
    return ConfigureRequest(model=run.variant or planned_variant(run), context=run.num_ctx, host=run.host.native,
                            profile=req.profile, dry_run=dry_run, command="setup", ask_ollama=ask_ollama,
                            model_catalog=find_codex(run.live.inv.env) is not None)


def save_facts(run: Run, **facts: Any) -> None:
    run.state.update(facts)
    run.store.save(run.host.native, run.state)
