"""The README is a user's first contact: its command reference must match the CLI, and its set-up must hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
