"""Users' own eval tasks on disk: read a task folder, build its scratch repository, run its grader command.

A task folder holds `task.toml` (class, grader command, optional setup command, allowed files, timeout),
`instruction.md` (what Codex is told) and either `repo/` (copied into the scratch folder) or a `setup` command
that makes the repository in the empty scratch folder. Commands run through the shell, in the scratch folder,
with a timeout; the task folder itself is never written to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcodex.adapters import scratch_repo, toml_edit
from localcodex.errors import ConfigError, NotFound

TASK_FILE = "task.toml"
INSTRUCTION_FILE = "instruction.md"
REPO_DIR = "repo"
SETUP_TIMEOUT = 120.0
OUTPUT_TAIL = 15


@dataclass(frozen=True)
class TaskFolder:
    """What a task folder says, read but not judged (the core checks values and fills defaults)."""

    path: Path
    name: str
    settings: dict[str, Any]  # task.toml, as plain values
    instruction: str
    has_repo: bool


@dataclass(frozen=True)
class CommandRun:
    exit_code: int | None  # None: killed at the timeout
    output: str  # the tail of stdout + stderr
    seconds: float


def task_folders(root: Path) -> list[Path]:
    """The task folders in `root` (folders holding a task.toml), by name; `root` itself when it is one."""
    if not root.is_dir():
        raise NotFound(f"{root} is not a folder", "pass a folder of task folders to --tasks")
    if (root / TASK_FILE).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if (p / TASK_FILE).is_file())


def read_task(folder: Path) -> TaskFolder:
    try:
        settings = toml_edit.parse((folder / TASK_FILE).read_text(encoding="utf-8"), folder / TASK_FILE).unwrap()
        instruction = (folder / INSTRUCTION_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise NotFound(f"task {folder.name}: {exc.filename} does not exist",
                       f"a task folder needs {TASK_FILE} and {INSTRUCTION_FILE} (see README, `eval`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"task {folder.name}: cannot read it: {exc}", "check the task folder's files") from None
    return TaskFolder(folder, folder.name, dict(settings), instruction, (folder / REPO_DIR).is_dir())


def make_repo(task: TaskFolder, workdir: Path, setup: str | None) -> str:
    """Fill the empty `workdir` from the task (copy `repo/`, or run `setup` there) and commit; returns the sha."""
    if task.has_repo:
        shutil.copytree(task.path / REPO_DIR, workdir, dirs_exist_ok=True, symlinks=True)
    if setup:
        run = run_command(setup, workdir, SETUP_TIMEOUT, {"LOCALCODEX_TASK_DIR": str(task.path)})
        if run.exit_code != 0:
            why = "ran past its time limit" if run.exit_code is None else f"exited {run.exit_code}"
            last = run.output.splitlines()[-1] if run.output else "no output"
            raise ConfigError(f"task {task.name}: its setup command {why}: {last}", "run it by hand to see why")
    return scratch_repo.commit_all(workdir, f"eval task {task.name}")


def run_command(command: str, cwd: Path, timeout: float, env: dict[str, str]) -> CommandRun:
    """A shell command in `cwd` with extra environment variables; its exit code and the tail of its output."""
    import time

    started = time.monotonic()
    full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}
    try:
        proc = subprocess.run(command, shell=True, cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        return CommandRun(None, f"ran past {timeout:g} s", time.monotonic() - started)
    output = (proc.stdout + proc.stderr).strip()
    return CommandRun(proc.returncode, "\n".join(output.splitlines()[-OUTPUT_TAIL:]), time.monotonic() - started)


def write_answer(workdir: Path, answer: str | None) -> Path:
    """The model's last answer in a file beside the scratch repository, for a grader command to read."""
    path = workdir.parent / f"{workdir.name}.answer.txt"
    path.write_text(answer or "", encoding="utf-8")
    return path


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
