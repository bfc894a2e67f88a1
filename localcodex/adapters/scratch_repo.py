"""The scratch git repository `localcodex trial` lets Codex work in: create it, see what changed, run its tests.

The project comes from `localcodex/data/trial_project/` (files end in `.tmpl` so that pytest and ruff leave the
template alone). Git runs with the user's own configuration except where it could break a throw-away
repository: commit signing and hooks are off for the one commit we make, and the author is set in the
repository's own config (never the user's global one). Every git call is bounded by a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from localcodex.errors import LocalcodexError, NotFound, StepTimeout, UsageError

TEMPLATE_SUFFIX = ".tmpl"
GIT_TIMEOUT = 30.0
AUTHOR = ("localcodex trial", "trial@localcodex.invalid")
_RAN = re.compile(r"^Ran (\d+) tests? in ", re.MULTILINE)


@dataclass(frozen=True)
class ChangedFile:
    """One path that differs from the scratch project's first commit (`added`/`deleted`: lines; None: binary)."""

    path: str
    added: int | None
    deleted: int | None


@dataclass(frozen=True)
class RepoChanges:
    files: tuple[ChangedFile, ...]
    committed: bool  # HEAD moved: Codex made a commit of its own
    stat: str  # `git diff --stat` against the first commit, as people read it

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files)


@dataclass(frozen=True)
class TestRun:
    """The scratch project's own tests (`python -m unittest`), run after the edit step."""

    passed: bool
    tests_run: int | None
    exit_code: int | None
    output: str  # the tail of unittest's output
    timed_out: bool = False


def template_files() -> dict[str, str]:
    """The project's files, relative POSIX path -> text (the `.tmpl` suffix dropped)."""
    root = resources.files("localcodex") / "data" / "trial_project"
    files: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:  # node: an importlib.resources Traversable
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
            elif name.endswith(TEMPLATE_SUFFIX):
                files[name[: -len(TEMPLATE_SUFFIX)]] = child.read_text(encoding="utf-8")

    walk(root, "")
    return dict(sorted(files.items()))


def prepare_dir(workdir: Path) -> None:
    """Create `workdir`, which must not exist or be empty: a trial never writes into a folder with files."""
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise UsageError(f"{workdir} is not an empty folder",
                         "pass a new or empty folder to --workdir, or leave it out")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalcodexError(f"cannot create {workdir}: {exc.strerror or exc}",
                              "pick a folder you can write to") from None


def create_project(workdir: Path) -> str:
    """Write the template into the empty `workdir`, make it a git repository with one commit; returns its sha."""
    return create_from_files(workdir, template_files(), "calc: add, divide, mean and their tests")


def create_from_files(workdir: Path, files: dict[str, str], message: str) -> str:
    """Write `files` (relative POSIX path -> text) into `workdir` and commit them; returns the commit's sha."""
    for rel, text in files.items():
        target = workdir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
    return commit_all(workdir, message)


def commit_all(workdir: Path, message: str) -> str:
    """Make `workdir` a git repository (if it is not one) and commit everything in it; returns HEAD's sha."""
    if not (workdir / ".git").exists():
        git(workdir, "init", "-q")
    git(workdir, "config", "user.name", AUTHOR[0])
    git(workdir, "config", "user.email", AUTHOR[1])
    git(workdir, "add", "-A")
    git(workdir, "-c", "commit.gpgsign=false", "-c", f"core.hooksPath={os.devnull}",
        "commit", "-q", "--no-verify", "--allow-empty", "-m", message)
    return head(workdir)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def changes_since(repo: Path, base: str) -> RepoChanges:
    """Everything that differs from `base`: edits, new and deleted files (ignored files aside), and commits.

    The working tree is staged (and a commit Codex made is undone softly) so that one `git diff --cached`
    sees it all; the files themselves are left as Codex left them.
    """
    committed = head(repo) != base
    if committed:
        git(repo, "reset", "-q", "--soft", base)
    git(repo, "add", "-A")
    numstat = git(repo, "diff", "--cached", "--numstat", "--no-renames", base)
    stat = git(repo, "diff", "--cached", "--stat", "--no-renames", base).rstrip()
    return RepoChanges(tuple(_numstat(line) for line in numstat.splitlines() if line.strip()), committed, stat)


def set_aside(repo: Path, message: str) -> None:
    """Put the current changes in a stash (kept for inspection) so the next step starts from a clean tree."""
    git(repo, "add", "-A")
    git(repo, "stash", "push", "-q", "-m", message)


def _numstat(line: str) -> ChangedFile:
    added, deleted, path = line.split("\t", 2)
    return ChangedFile(path, None if added == "-" else int(added), None if deleted == "-" else int(deleted))


def run_tests(repo: Path, timeout: float) -> TestRun:
    """`python -m unittest` in the project, with this Python; the count of tests comes from its summary line."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(repo)}
    try:
        proc = subprocess.run([sys.executable, "-m", "unittest"], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return TestRun(False, None, None, f"the tests ran past {timeout:g} s", timed_out=True)
    output = (proc.stderr + proc.stdout).strip()
    counts = _RAN.findall(output)
    tail = "\n".join(output.splitlines()[-15:])
    return TestRun(proc.returncode == 0, int(counts[-1]) if counts else None, proc.returncode, tail)


def git(repo: Path, *args: str) -> str:
    """Run git in `repo`; its output, or a LocalcodexError with git's own message."""
    exe = shutil.which("git")
    if exe is None:
        raise NotFound("git is not installed (a trial runs Codex in a scratch git repository)",
                       "install git (https://git-scm.com/downloads) and run again", code="git_missing")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        proc = subprocess.run([exe, "-C", str(repo), *args], capture_output=True, text=True, env=env,
                              timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise StepTimeout(f"`git {args[0]}` in {repo} ran past {GIT_TIMEOUT:g} s", "check the disk, then run again") \
            from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        why = detail[-1] if detail else f"exit code {proc.returncode}"
        raise LocalcodexError(f"`git {' '.join(args[:2])}` failed in {repo}: {why}",
                              "check that git works here (`git --version`) and the folder is writable",
                              code="git_failed")
    return proc.stdout


def run_python(repo: Path, code: str, timeout: float) -> TestRun:
    """`python -c CODE` in the project (with this Python and the project on the path): a grader's own check."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(repo)}
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return TestRun(False, None, None, f"the check ran past {timeout:g} s", timed_out=True)
    tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-15:])
    return TestRun(proc.returncode == 0, None, proc.returncode, tail)


def read_file(repo: Path, rel: str) -> str | None:
    """A file of the project as text, or None when it does not exist or is not text."""
    try:
        return (repo / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def python_files(repo: Path) -> dict[str, str]:
    """Every tracked or new .py file of the project (ignored files aside), relative path -> text."""
    listed = git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.py")
    files = {}
    for rel in listed.splitlines():
        text = read_file(repo, rel)
        if text is not None:
            files[rel] = text
    return files
