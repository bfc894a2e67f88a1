"""Eval tasks: the built-in set, and users' own task folders (`--tasks DIR`).

Every built-in task starts from the small `calc` project that `trial` uses (four unittest tests, a README that
says how to run them), changed where the task needs it: a planted bug, a wrong test, a guard in its own module.
Each task has a class of work, an instruction and a grader (see `graders`). Classes, in report order:
read-only, rename, add-test, fix-test, bug-fix, refactor, multi-step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcodex.core.eval.graders import (
    TEST_COMMAND,
    Answers,
    ChangedOnly,
    Check,
    FileMatches,
    GraderCommand,
    NoChanges,
    NothingMatches,
    PythonCheck,
    TestsPass,
    ToolCalls,
)
from localcodex.errors import ConfigError, UsageError

CLASSES = ("read-only", "rename", "add-test", "fix-test", "bug-fix", "refactor", "multi-step")
NO_EDIT = " Do not edit, create or delete any files."
# `mean` as code: called or defined (not inside a string), imported, or exported by name
OLD_NAME = r"""(?<![\w"'])mean\s*\(|\bimport\b[^\n]*\bmean\b|["']mean["']"""


@dataclass(frozen=True)
class Task:
    name: str
    task_class: str
    instruction: str
    checks: tuple[Check, ...]
    files: tuple[tuple[str, str], ...] = ()  # built-in: the project, relative path -> text
    folder: Path | None = None  # users' tasks: the task folder
    setup: str | None = None  # users' tasks: a command that makes the repository
    timeout_s: float | None = None  # a task's own time limit (default: the run's)

    @property
    def builtin(self) -> bool:
        return self.folder is None


# ------------------------------------------------------------------------------------------ built-in projects


def _base() -> dict[str, str]:
    from localcodex.adapters.scratch_repo import template_files

    return template_files()


def _edit(files: dict[str, str], path: str, old: str, new: str) -> dict[str, str]:
    if old not in files[path]:
        raise AssertionError(f"built-in project: {old!r} not in {path}")
    return {**files, path: files[path].replace(old, new)}


GUARD_MODULE = '''"""Input checks shared by the arithmetic helpers."""


def check_divisor(b: float) -> None:
    """Refuse a zero divisor."""
    if b == 0:
        raise ValueError("cannot divide by zero")
'''

MEAN_BUG_ISSUE = (
    "Fix this bug report. Issue #12: `mean()` gives wrong results. `mean([2, 4])` returns 6.0 but should return "
    "3.0, and `mean([5])` raises ZeroDivisionError instead of returning 5.0. Fix the cause in the library; you "
    "may add a test for it."
)


def _guarded() -> dict[str, str]:
    files = _edit(_base(), "calc/ops.py", '''    if b == 0:
        raise ValueError("cannot divide by zero")
    return a / b''', '''    check_divisor(b)
    return a / b''')
    files = _edit(files, "calc/ops.py", '"""Arithmetic helpers."""\n',
                  '"""Arithmetic helpers."""\n\nfrom calc.guards import check_divisor\n')
    return {**files, "calc/guards.py": GUARD_MODULE}


def _mean_bug() -> dict[str, str]:
    files = _edit(_base(), "calc/ops.py", "return sum(values) / len(values)", "return sum(values) / (len(values) - 1)")
    return _edit(files, "tests/test_calc.py", '''

class MeanTests(unittest.TestCase):
    def test_mean_of_three_numbers(self):
        self.assertEqual(mean([1, 2, 3]), 2)
''', "\n")


def _builtin() -> tuple[Task, ...]:
    base = _base()
    tests4 = TestsPass(count=4)
    return (
        Task("how-to-test", "read-only",
             "How do you run this project's tests? Give the exact command." + NO_EDIT,
             (NoChanges(), Answers((TEST_COMMAND,), "the command README.md gives")), tuple(base.items())),
        Task("where-is-the-guard", "read-only",
             "Which file holds the check that rejects division by zero? Answer with the file's path." + NO_EDIT,
             (NoChanges(), Answers(("calc/guards.py",), "the file that holds the check")),
             tuple(_guarded().items())),
        Task("rename-mean", "rename",
             "Rename the function `mean` to `average` everywhere in this project: its definition, the package's "
             "exports and the tests. Behaviour stays the same; do not leave an alias named `mean`.",
             (ChangedOnly(("calc/ops.py", "calc/__init__.py", "tests/test_calc.py", "README.md"),
                          ("calc/ops.py", "calc/__init__.py", "tests/test_calc.py")),
              NothingMatches(OLD_NAME, "the old name `mean` is still used in"),
              PythonCheck("from calc import average; assert average([1, 2, 3]) == 2", "`calc.average` is missing"),
              tests4), tuple(base.items())),
        Task("regression-test", "add-test",
             "Add one regression test to tests/test_calc.py that checks that mean([]) raises ValueError. Keep the "
             "existing tests as they are, and do not change any other file.",
             (ChangedOnly(("tests/test_calc.py",), ("tests/test_calc.py",)), TestsPass(count=5)),
             tuple(base.items())),
        Task("fix-failing-test", "fix-test",
             "One test of this project fails. The code in calc/ is correct: fix the test, not the code.",
             (ChangedOnly(("tests/test_calc.py",), ("tests/test_calc.py",)), tests4),
             tuple(_edit(base, "tests/test_calc.py", "divide(7, 2), 3.5", "divide(7, 2), 3").items())),
        Task("bug-from-issue", "bug-fix", MEAN_BUG_ISSUE,
             (ChangedOnly(("calc/ops.py", "tests/*.py"), ("calc/ops.py",)),
              PythonCheck("from calc import mean; assert mean([2, 4]) == 3 and mean([5]) == 5 "
                          "and mean([1, 2, 3]) == 2", "mean() still gives wrong results"),
              TestsPass()), tuple(_mean_bug().items())),
        Task("move-divide", "refactor",
             "Refactor: move the function `divide` out of calc/ops.py into a new module calc/division.py. "
             "`from calc import divide` must keep working, the tests must pass, and do not change the tests.",
             (ChangedOnly(("calc/ops.py", "calc/division.py", "calc/__init__.py", "README.md"),
                          ("calc/ops.py", "calc/division.py")),
              PythonCheck("import calc.division, calc.ops, calc; assert calc.division.divide.__module__ == "
                          "'calc.division'; assert 'def divide' not in open('calc/ops.py').read(); "
                          "assert calc.divide(7, 2) == 3.5", "`divide` does not live in calc/division.py alone"),
              tests4), tuple(base.items())),
        Task("fix-and-count", "multi-step",
             "Run the project's tests, find out why one fails, and fix the code (not the tests). Then run the "
             "tests again and write the number of tests that ran, and nothing else, into a new file "
             "TEST_COUNT.txt at the repository root.",
             (ChangedOnly(("calc/ops.py", "TEST_COUNT.txt"), ("calc/ops.py", "TEST_COUNT.txt")),
              FileMatches("TEST_COUNT.txt", r"\A\s*4\s*\Z", "does not hold just the number of tests (4)"),
              ToolCalls(2), tests4),
             tuple(_edit(base, "calc/ops.py", "return a / b", "return a // b").items())),
    )


def builtin_tasks() -> tuple[Task, ...]:
    return _builtin()


# ------------------------------------------------------------------------------------------ users' tasks


def load_folder_tasks(root: Path) -> tuple[Task, ...]:
    """The tasks of `--tasks DIR` (a task folder, or a folder of them)."""
    from localcodex.adapters import task_folder

    folders = task_folder.task_folders(root)
    if not folders:
        raise UsageError(f"{root} holds no task folder (a folder with {task_folder.TASK_FILE})",
                         "see README, `eval`: how to write a task")
    return tuple(_folder_task(task_folder.read_task(folder)) for folder in folders)


def _folder_task(folder: Any) -> Task:
    settings = folder.settings
    where = f"task {folder.name} ({folder.path}/task.toml)"
    grader = settings.get("grader")
    if not isinstance(grader, str) or not grader.strip():
        raise ConfigError(f"{where}: `grader` must be a command (e.g. grader = \"python -m pytest -q\")",
                          "add a grader command to task.toml")
    setup = settings.get("setup")
    if setup is not None and not isinstance(setup, str):
        raise ConfigError(f"{where}: `setup` must be a command", "e.g. setup = \"sh $LOCALCODEX_TASK_DIR/make.sh\"")
    if not folder.has_repo and not setup:
        raise ConfigError(f"{where}: no repo/ folder and no setup command", "add one of them")
    if not folder.instruction:
        raise ConfigError(f"{where}: instruction.md is empty", "write what Codex should do into it")
    timeout = settings.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"{where}: `timeout` must be a positive number of seconds", "e.g. timeout = 600")
    checks: list[Check] = []
    allowed = settings.get("allowed_files")
    if allowed is not None:
        if not isinstance(allowed, list) or not all(isinstance(p, str) for p in allowed):
            raise ConfigError(f"{where}: `allowed_files` must be a list of paths or globs",
                              'e.g. allowed_files = ["src/*.py"]')
        checks.append(ChangedOnly(tuple(allowed), must_edit=False))
    checks.append(GraderCommand(grader, float(timeout or 300)))
    task_class = str(settings.get("class") or "custom")
    return Task(folder.name, task_class, folder.instruction, tuple(checks), folder=folder.path, setup=setup,
                timeout_s=float(timeout) if timeout else None)


# ------------------------------------------------------------------------------------------ selection


def select(tasks: Sequence[Task], names: Sequence[str]) -> tuple[Task, ...]:
    """The tasks named (a task name or a class), in the set's order; all when no name is given."""
    if not names:
        return tuple(tasks)
    known = {t.name for t in tasks} | {t.task_class for t in tasks}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"no task or class named {', '.join(unknown)}",
                         f"choose from: {', '.join(t.name for t in tasks)}")
    return tuple(t for t in tasks if t.name in names or t.task_class in names)
