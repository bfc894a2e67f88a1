"""The README is a user's first contact: its command reference must match the CLI, and its set-up must hold."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_command_reference_is_generated_from_help():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_cli_reference.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_has_exactly_two_setup_commands():
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    commands = [line for block in blocks[:2] for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "localcodex setup" in commands[0]
    assert commands[1].startswith("scripts/test")


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci


@pytest.mark.skipif(shutil.which("codex") is None, reason="the README's run had the Codex CLI installed")
def test_what_setup_does_is_a_real_demo_run():
    """The block under "What `setup` does" is what `scripts/demo --readme` prints now (a real setup against the
    emulator, with the port, folder and durations made stable)."""
    block = README[README.index("<!-- BEGIN SETUP DEMO -->"):README.index("<!-- END SETUP DEMO -->")]
    shown = block.split("```text\n", 1)[1].rsplit("```", 1)[0].strip()
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo"), "--readme"], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == shown, "README is stale: run `scripts/demo --readme --write-readme`"
