#!/usr/bin/env python3
"""Generate the README's command reference from the CLI's own `--help`, so the two cannot drift.

    python scripts/gen_cli_reference.py          # rewrite the block in README.md
    python scripts/gen_cli_reference.py --check  # exit 1 if README.md is out of date (run by the tests)

The block sits between `<!-- BEGIN CLI REFERENCE -->` and `<!-- END CLI REFERENCE -->`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- BEGIN CLI REFERENCE -->", "<!-- END CLI REFERENCE -->"
WIDTH = "100"


def _help_text(path: list[str]) -> str:
    from localcodex.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        main([*path, "--help"])
    return buffer.getvalue().rstrip() + "\n"


def _command_paths() -> list[list[str]]:
    import typer.main

    from localcodex.cli import app

    def walk(group, prefix: list[str]) -> list[list[str]]:
        found: list[list[str]] = []
        for name in getattr(group, "commands", {}):
            command = group.commands[name]
            found.append([*prefix, name])
            found.extend(walk(command, [*prefix, name]))
        return found

    return walk(typer.main.get_command(app), [])


def render() -> str:
    os.environ["COLUMNS"] = WIDTH
    os.environ["NO_COLOR"] = "1"
    sys.path.insert(0, str(REPO))
    parts = [BEGIN, "", "Generated from `--help` by `scripts/gen_cli_reference.py`; do not edit by hand.", ""]
    for path in [[], *_command_paths()]:
        title = " ".join(["localcodex", *path])
        parts += [f"### `{title}`", "", "```text", _help_text(path).rstrip(), "```", ""]
    parts.append(END)
    return "\n".join(parts)


def splice(readme: str, block: str) -> str:
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[:start] + block + readme[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description="Generate the README command reference.")
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    args = parser.parse_args()
    readme_path = REPO / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    updated = splice(readme, render())
    if args.check:
        if updated != readme:
            print("README.md command reference is out of date: run python scripts/gen_cli_reference.py")
            return 1
        return 0
    readme_path.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
