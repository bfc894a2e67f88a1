"""Option types shared by every command, so each flag reads and behaves the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON envelope on stdout (progress goes to stderr).")
]
Host = Annotated[
    str | None,
    typer.Option("--host", help="Ollama server, as OLLAMA_HOST takes it (default: $OLLAMA_HOST or 127.0.0.1:11434)."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to every question (no prompts).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
