"""doctor's types: findings, the files Codex reads, the targets (ways of running Codex) and the state of one run.

Kept apart from the run itself so that adapters/codex_files, offline.py and live.py can use them without an
import circle.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from localcodex.adapters.codex_files import ParsedConfig
from localcodex.adapters.toml_edit import get_path
from localcodex.domain.codex import layered
from localcodex.domain.toml_lines import KeyPath, line_of

if TYPE_CHECKING:
    from localcodex.adapters.hostenv import HostEnv
    from localcodex.domain.machine import Machine

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

CODEX_MIN_CONTEXT = 16_384  # below this a Codex turn (4-6k tokens of instructions and tools) has no room
NPM_INSTALL = "npm install -g @openai/codex"


# -- results ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem: what (`message`), where (`file`, `key`, `line`), and how to fix it (`fix`, `fix_command`).

    `id` is stable (scripts may match on it); `column` is set for parse errors.
    """

    id: str
    severity: Severity
    message: str
    file: str | None = None
    key: str | None = None
    line: int | None = None
    fix: str = ""
    fix_command: str | None = None
    column: int | None = None

    @property
    def where(self) -> str:
        """`file:line key` for people; empty when the finding is about the machine, not a file."""
        place = self.file or ""
        if place and self.line:
            place += f":{self.line}" + (f":{self.column}" if self.column else "")
        return f"{place} {self.key}".strip() if self.key else place


@dataclass(frozen=True)
class ExaminedFile:
    path: str
    kind: str  # "user" | "profile" | "project"
    profile: str | None
    readable: bool


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...]
    files: tuple[ExaminedFile, ...]
    profiles: tuple[str, ...]  # the profiles looked at (`codex -p NAME`); "" stands for plain `codex`
    codex_version: str | None
    ollama_host: str
    ollama_version: str | None
    probes_run: bool

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings and notes allowed): the exit code is 0."""
        return not self.errors


@dataclass(frozen=True)
class DoctorStep:
    """Progress: what doctor is looking at now."""

    step: str
    detail: str = ""


@dataclass(frozen=True)
class DoctorRequest:
    """Where to look. `env` defaults to os.environ, `cwd` to the current folder, `codex_home` to $CODEX_HOME.

    `root` is the filesystem root for system files (the Ollama systemd unit); tests pass a fake tree.
    `machine` skips hardware detection (setup passes the one it has). `hostenv` replaces machine probes in tests.
    """

    codex_home: Path | None = None
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    host: str | None = None
    run_probes: bool = True
    profile: str | None = None
    root: Path = Path("/")
    machine: Machine | None = None
    hostenv: HostEnv | None = None
    probe_timeout: float = 60.0
    deep: bool = False  # also run check's generating probes (responses, tool call, chat): slow on real hardware


# -- the configuration as Codex reads it ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile(ParsedConfig):
    """One config file as doctor judges it: the file as read (`ParsedConfig`) and whether Codex trusts it."""

    trusted: bool = True  # project files only: Codex disables an untrusted project's config

    @classmethod
    def from_parsed(cls, parsed: ParsedConfig) -> ConfigFile:
        """The file as `adapters.codex_files.read_config` read it."""
        return cls(**{f.name: getattr(parsed, f.name) for f in fields(ParsedConfig)})

    @property
    def ok(self) -> bool:
        return self.data is not None

    def get(self, path: KeyPath) -> Any:
        return get_path(self.data or {}, path)

    def line(self, path: KeyPath) -> int | None:
        return line_of(self.lines, path)

    def finding(self, id: str, severity: Severity, message: str, key: KeyPath | None, fix: str,
                fix_command: str | None = None) -> Finding:
        """A finding located at `key` in this file."""
        return Finding(id, severity, message, str(self.path), dotted(key) if key else None,
                       self.line(key) if key else None, fix, fix_command)


@dataclass(frozen=True)
class Target:
    """One way of running Codex (`codex`, or `codex -p NAME`): the files it loads, in order, and their merge."""

    profile: str | None
    layers: tuple[ConfigFile, ...]
    merged: Mapping[str, Any]

    @property
    def command(self) -> str:
        return f"codex -p {self.profile}" if self.profile else "codex"

    def origin(self, path: KeyPath) -> ConfigFile | None:
        """The last layer that sets `path` (the one whose value Codex uses)."""
        return next((f for f in reversed(self.layers) if get_path(f.data or {}, path) is not None), None)


def dotted(path: KeyPath) -> str:
    """A key path as Codex prints it: `model_providers.local.base_url` (quoted where a part needs it)."""
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else f'"{p}"' for p in path)


def build_targets(files: Iterable[ConfigFile], only_profile: str | None = None) -> tuple[Target, ...]:
    """Plain `codex` and one `codex -p NAME` per profile file (or just `only_profile`)."""
    files = tuple(files)
    user = next((f for f in files if f.kind == "user" and f.ok), None)
    projects = tuple(f for f in files if f.kind == "project" and f.ok and f.trusted)
    profiles = [f for f in files if f.kind == "profile" and f.ok and (only_profile in (None, f.profile))]
    bases = [None] if only_profile is None else []
    targets = []
    for profile_file in [*bases, *profiles]:
        layers = tuple(x for x in (user, profile_file) if x is not None) + projects
        merged = layered((layer.kind, layer.data or {}) for layer in layers)
        targets.append(Target(profile_file.profile if profile_file else None, layers, merged))
    return tuple(targets)


# -- the state of one run ---------------------------------------------------------------------------------------


@dataclass
class DoctorRun:
    """What one `doctor` run knows so far; the checks in offline.py and live.py add findings to it."""

    req: DoctorRequest
    env: Mapping[str, str]
    home: Path
    codex_home: Path
    cwd: Path
    hostenv: HostEnv
    report: Callable[[DoctorStep], None]
    findings: list[Finding] = field(default_factory=list)
    all_profiles: tuple[ConfigFile, ...] = ()
    codex_version: str | None = None
    codex_found: bool = False
    ollama_version: str | None = None
    machine: Machine | None = None
    machine_detected: bool = False

    def add(self, *found: Finding | None) -> None:
        self.findings.extend(f for f in found if f is not None)


# -- small shared helpers ---------------------------------------------------------------------------------------


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The likeliest intended name for a typo (difflib), or None."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None
