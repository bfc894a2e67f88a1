"""Graders: deterministic checks of what a Codex run left behind, never of how the answer sounds.

A grader is a tuple of checks run in order; the first problem found fails the attempt with that problem as
the reason. Checks look at outcomes: which files changed (against the task's first commit), whether the
project's tests pass and how many ran, what a file holds, whether a Python snippet run against the project
succeeds, whether the answer names the right command or file, and (for users' tasks) a grader command's exit
code. The same attempt always gets the same grade.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

TEST_COMMAND = "python -m unittest"
TEST_TIMEOUT_S = 60.0
_TEXT_CALL = re.compile(r'"name"\s*:.*"arguments"\s*:', re.DOTALL)


@dataclass(frozen=True)
class Attempt:
    """What a grader sees: the scratch repository after Codex, and what Codex reported."""

    workdir: Path
    base: str  # the task's first commit
    answer: str | None  # the model's last message
    files_changed: tuple[str, ...] = ()
    committed: bool = False
    tool_calls: int = 0
    task_dir: Path | None = None  # users' tasks: their folder


@dataclass(frozen=True)
class Grade:
    passed: bool
    reason: str | None = None
    tests_run: int | None = None
    tests_passed: bool | None = None
    notes: tuple[str, ...] = ()


@dataclass
class _Findings:
    tests_run: int | None = None
    tests_passed: bool | None = None
    notes: list[str] = field(default_factory=list)


class Check(Protocol):
    def problem(self, attempt: Attempt, found: _Findings) -> str | None: ...


def grade(checks: Sequence[Check], attempt: Attempt) -> Grade:
    found = _Findings()
    for check in checks:
        problem = check.problem(attempt, found)
        if problem is not None:
            return Grade(False, problem, found.tests_run, found.tests_passed, tuple(found.notes))
    return Grade(True, None, found.tests_run, found.tests_passed, tuple(found.notes))


# ------------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class NoChanges:
    """Read-only tasks: nothing in the tree changed and no commit was made."""

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        if not attempt.files_changed and not attempt.committed:
            return None
        changed = ", ".join(attempt.files_changed) or "nothing in the tree"
        commit = " and made a commit" if attempt.committed else ""
        return f"files changed when they should not have: {changed}{commit}"


@dataclass(frozen=True)
class Answers:
    """The model gave an answer naming one of `any_of` (`note_only`: a missing name is a note, not a failure)."""

    any_of: tuple[str, ...] = ()
    what: str = ""
    note_only: bool = False
    failure: str = ""  # the reason given when a missing name fails the attempt (default: the note's text)

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        answer = attempt.answer or ""
        if not answer.strip():
            return "the model gave no answer"
        if not self.any_of or any(name in answer for name in self.any_of):
            return None
        missing = f"the answer does not mention `{self.any_of[0]}`{f', {self.what}' if self.what else ''}"
        if self.note_only:
            found.notes.append(missing)
            return None
        return self.failure or missing


@dataclass(frozen=True)
class ChangedOnly:
    """Only files matching `allowed` (glob patterns) changed, and every file in `required` did; with `must_edit`,
    a run that changed nothing fails with the likely reason (no tool called, or a tool call written as text)."""

    allowed: tuple[str, ...]
    required: tuple[str, ...] = ()
    must_edit: bool = True  # changing nothing at all fails (an edit task)

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        changed = attempt.files_changed
        if not changed and not self.must_edit:
            return None
        if not changed:
            if not attempt.tool_calls and _TEXT_CALL.search(attempt.answer or ""):
                return ("no file changed: the model wrote its tool call as text instead of calling the tool (its "
                        "chat template does not do tool calls through this server)")
            if not attempt.tool_calls:
                return ("no file changed, and the model called no tool (a model that cannot call tools cannot "
                        "edit files through Codex)")
            return f"no file changed, although Codex ran {attempt.tool_calls} tool call(s) for the model"
        others = [p for p in changed if not any(fnmatch.fnmatchcase(p, pattern) for pattern in self.allowed)]
        missing = [p for p in self.required if p not in changed]
        if missing:
            instead = f" (changed instead: {', '.join(others)})" if others else ""
            return f"{', '.join(missing)} was not changed{instead}"
        if others:
            return f"changed files it was told to leave alone: {', '.join(others)}"
        return None


@dataclass(frozen=True)
class TestsPass:
    """`python -m unittest` passes, with exactly `count` tests (or more than `more_than`) when given."""

    count: int | None = None
    more_than: int | None = None

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        from localcodex.adapters import scratch_repo

        tests = scratch_repo.run_tests(attempt.workdir, TEST_TIMEOUT_S)
        found.tests_run, found.tests_passed = tests.tests_run, tests.passed
        if not tests.passed:
            last = tests.output.splitlines()[-1] if tests.output else "no output"
            return f"the project's tests fail after the edit ({TEST_COMMAND}: {last})"
        if self.more_than is not None and (tests.tests_run or 0) <= self.more_than:
            return f"no test was added: {TEST_COMMAND} still runs {tests.tests_run} tests"
        if self.count is not None and tests.tests_run != self.count:
            return f"{TEST_COMMAND} runs {tests.tests_run} tests, expected {self.count}"
        return None


@dataclass(frozen=True)
class FileMatches:
    """File `path` exists and matches the regular expression `pattern` (`why` says what that means)."""

    path: str
    pattern: str
    why: str

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        from localcodex.adapters import scratch_repo

        text = scratch_repo.read_file(attempt.workdir, self.path)
        if text is None:
            return f"{self.path} does not exist"
        return None if re.search(self.pattern, text, re.MULTILINE) else f"{self.path}: {self.why}"


@dataclass(frozen=True)
class NothingMatches:
    """No Python file of the project matches `pattern` (e.g. an old name after a rename)."""

    pattern: str
    why: str

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        from localcodex.adapters import scratch_repo

        hits = sorted(rel for rel, text in scratch_repo.python_files(attempt.workdir).items()
                      if re.search(self.pattern, text, re.MULTILINE))
        return f"{self.why}: {', '.join(hits)}" if hits else None


@dataclass(frozen=True)
class PythonCheck:
    """A Python snippet run against the project succeeds (a check the model never sees)."""

    code: str
    why: str

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        from localcodex.adapters import scratch_repo

        run = scratch_repo.run_python(attempt.workdir, self.code, TEST_TIMEOUT_S)
        if run.passed:
            return None
        last = run.output.splitlines()[-1] if run.output else "no output"
        return f"{self.why} ({last})"


@dataclass(frozen=True)
class ToolCalls:
    """The model made at least `at_least` tool calls (a task that needs several steps)."""

    at_least: int

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        if attempt.tool_calls >= self.at_least:
            return None
        return f"the model made {attempt.tool_calls} tool call(s); the task needs at least {self.at_least}"


@dataclass(frozen=True)
class GraderCommand:
    """Users' tasks: a shell command run in the scratch repository; exit 0 passes. It gets the answer's file in
    LOCALCODEX_EVAL_ANSWER, the first commit in LOCALCODEX_EVAL_BASE and the task folder in LOCALCODEX_TASK_DIR."""

    command: str
    timeout_s: float = 300.0

    def problem(self, attempt: Attempt, found: _Findings) -> str | None:
        from localcodex.adapters import task_folder

        answer = task_folder.write_answer(attempt.workdir, attempt.answer)
        env = {"LOCALCODEX_EVAL_ANSWER": str(answer), "LOCALCODEX_EVAL_BASE": attempt.base,
               "LOCALCODEX_TASK_DIR": str(attempt.task_dir or "")}
        run = task_folder.run_command(self.command, attempt.workdir, self.timeout_s, env)
        if run.exit_code == 0:
            return None
        if run.exit_code is None:
            return f"the grader command ran past {self.timeout_s:g} s"
        last = run.output.splitlines()[-1] if run.output else "no output"
        return f"the grader command exited {run.exit_code}: {last}"
