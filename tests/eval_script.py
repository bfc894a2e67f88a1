"""Known outcomes of the built-in eval tasks, and a scripted model that produces them through the real Codex.

``OUTCOMES[task] = (good, bad)``: what a model could leave behind (files written or deleted, its answer, its
tool calls). The grader tests apply them directly to a scratch repository; ``EvalScript`` (an emulator responder)
makes Codex apply them: read-only answers as text, edits as one ``exec_command`` shell call writing the files
(the multi-step task first runs the tests, then writes), then a short final message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from emulator import Reply, ResponderRequest
from emulator.responder import default_reply

from localcodex.core.eval.tasks import Task, builtin_tasks

SHELL_TOOL = "exec_command"
TASKS = {t.name: t for t in builtin_tasks()}


@dataclass(frozen=True)
class Outcome:
    writes: dict[str, str | None] = field(default_factory=dict)  # path -> new text; None deletes the file
    answer: str = "Done."
    tool_calls: int = 1  # how many tool calls the model makes (the last one writes)
    reason: str | None = None  # for a bad outcome: how the grader's reason starts


def files(task: str) -> dict[str, str]:
    return dict(TASKS[task].files)


def _sub(task: str, path: str, old: str, new: str) -> str:
    text = files(task)[path]
    assert old in text, (task, path, old)
    return text.replace(old, new)


def _renamed(path: str) -> str:
    return re.sub(r"\bmean\b", "average", files("rename-mean")[path])


NEW_TEST = ("\n    def test_mean_of_empty_list_raises(self):\n        with self.assertRaises(ValueError):\n"
            "            mean([])\n")
BAD_TEST = "\n    def test_mean_of_empty_list_is_zero(self):\n        self.assertEqual(mean([]), 0)\n"
DIVISION = '''"""Division."""


def divide(a: float, b: float) -> float:
    """Return a divided by b; dividing by zero raises ValueError."""
    if b == 0:
        raise ValueError("cannot divide by zero")
    return a / b
'''
OPS_WITHOUT_DIVIDE = '''"""Arithmetic helpers."""


def add(a: float, b: float) -> float:
    """Return the sum of a and b."""
    return a + b


def mean(values: list[float]) -> float:
    """Return the arithmetic mean of values; an empty list raises ValueError."""
    if not values:
        raise ValueError("mean() of an empty list")
    return sum(values) / len(values)
'''

OUTCOMES: dict[str, tuple[Outcome, Outcome]] = {
    "how-to-test": (
        Outcome(answer="Run `python -m unittest -v` from the repository root.", tool_calls=0),
        Outcome(answer="Run `pytest`.", tool_calls=0, reason="the answer does not mention `python -m unittest`"),
    ),
    "where-is-the-guard": (
        Outcome(answer="In calc/guards.py: check_divisor raises ValueError for 0.", tool_calls=0),
        Outcome({"calc/guards.py": "# looked here\n"}, answer="calc/guards.py",
                reason="files changed when they should not have: calc/guards.py"),
    ),
    "rename-mean": (
        Outcome({p: _renamed(p) for p in ("calc/ops.py", "calc/__init__.py", "tests/test_calc.py", "README.md")}),
        Outcome({p: _renamed(p) for p in ("calc/ops.py", "calc/__init__.py")},
                reason="tests/test_calc.py was not changed"),
    ),
    "regression-test": (
        Outcome({"tests/test_calc.py": files("regression-test")["tests/test_calc.py"] + NEW_TEST}),
        Outcome({"tests/test_calc.py": files("regression-test")["tests/test_calc.py"] + BAD_TEST},
                reason="the project's tests fail after the edit"),
    ),
    "fix-failing-test": (
        Outcome({"tests/test_calc.py": _sub("fix-failing-test", "tests/test_calc.py", "divide(7, 2), 3)",
                                            "divide(7, 2), 3.5)")}),
        Outcome({"calc/ops.py": _sub("fix-failing-test", "calc/ops.py", "return a / b", "return a // b")},
                reason="tests/test_calc.py was not changed (changed instead: calc/ops.py)"),
    ),
    "bug-from-issue": (
        Outcome({"calc/ops.py": _sub("bug-from-issue", "calc/ops.py", "(len(values) - 1)", "len(values)")}),
        Outcome({"calc/ops.py": _sub("bug-from-issue", "calc/ops.py", "(len(values) - 1)", "(len(values) - 1 or 1)")},
                reason="mean() still gives wrong results"),
    ),
    "move-divide": (
        Outcome({"calc/ops.py": OPS_WITHOUT_DIVIDE, "calc/division.py": DIVISION,
                 "calc/__init__.py": _sub("move-divide", "calc/__init__.py", "from calc.ops import add, divide, mean",
                                          "from calc.division import divide\nfrom calc.ops import add, mean")}),
        Outcome({"calc/division.py": DIVISION, "calc/ops.py": files("move-divide")["calc/ops.py"] + "\n"},
                reason="`divide` does not live in calc/division.py alone"),
    ),
    "fix-and-count": (
        Outcome({"calc/ops.py": _sub("fix-and-count", "calc/ops.py", "return a // b", "return a / b"),
                 "TEST_COUNT.txt": "4\n"}, tool_calls=2),
        Outcome({"calc/ops.py": _sub("fix-and-count", "calc/ops.py", "return a // b", "return a / b"),
                 "TEST_COUNT.txt": "Ran 4 tests, all OK\n"}, tool_calls=2,
                reason="TEST_COUNT.txt: does not hold just the number of tests (4)"),
    ),
}


def apply(repo: Path, outcome: Outcome) -> None:
    for rel, text in outcome.writes.items():
        target = repo / rel
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


def shell_writes(outcome: Outcome) -> str:
    """One shell command that leaves the outcome's files behind (heredocs, as a model would write them)."""
    parts = []
    for rel, text in outcome.writes.items():
        if text is None:
            parts.append(f"rm -f {rel}")
            continue
        folder = rel.rpartition("/")[0]
        mkdir = f"mkdir -p {folder} && " if folder else ""
        parts.append(f"{mkdir}cat > {rel} <<'LOCALCODEX_EOF'\n{text.rstrip(chr(10))}\nLOCALCODEX_EOF")
    return "\n".join(parts)


@dataclass
class EvalScript:
    """An emulator responder: ``plan[task] = "good" | "bad"`` (tasks not in the plan get the good outcome)."""

    plan: dict[str, str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def __call__(self, req: ResponderRequest) -> Reply:
        prompt = req.last_user_text
        task = next((t for t in TASKS.values() if t.instruction in prompt), None)
        if task is None:
            return default_reply(req)
        self.seen.append(task.name)
        good, bad = OUTCOMES[task.name]
        outcome = bad if self.plan.get(task.name) == "bad" else good
        return self._step(req, task, outcome)

    @staticmethod
    def _step(req: ResponderRequest, task: Task, outcome: Outcome) -> Reply:
        done = req.function_outputs
        if done >= outcome.tool_calls:
            return Reply(text=outcome.answer)
        if SHELL_TOOL not in req.tool_names:
            raise AssertionError(f"Codex offered no {SHELL_TOOL} tool; it offered {req.tool_names}")
        cmd = shell_writes(outcome) if done == outcome.tool_calls - 1 else "python -m unittest"
        return Reply(tool_calls=[(SHELL_TOOL, {"cmd": cmd})])
