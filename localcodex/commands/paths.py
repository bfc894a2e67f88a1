"""`localcodex paths`: where localcodex reads and writes, and why (which variable chose it).

This module is the pattern every command follows: parse options, call one function that returns a typed
result, hand it to `run_command` with a renderer for people. `--json` prints the envelope instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from localcodex.commands import options

if TYPE_CHECKING:
    from localcodex.paths import Paths
    from localcodex.render.output import Output


def register(app: typer.Typer) -> None:
    app.command("paths")(paths_command)


def paths_command(host: options.Host = None, json_: options.Json = False) -> None:
    """Show where localcodex reads and writes: Codex home, its own data folder, Ollama's models and host."""
    from localcodex.paths import resolve
    from localcodex.render.output import run_command

    run_command("paths", json_, lambda out: resolve(host=host), render)


def render(out: Output, paths: Paths) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("Codex home", f"{paths.codex_home}  ($CODEX_HOME)"),
        ("Codex config", str(paths.codex_config)),
        ("localcodex data", f"{paths.data_dir}  ($LOCALCODEX_HOME)"),
        ("receipts", str(paths.receipts_db)),
        ("backups", str(paths.backups_dir)),
        ("Ollama models", f"{paths.ollama_models}  ($OLLAMA_MODELS)"),
        ("Ollama host", f"{paths.ollama_host.native}  (from {paths.ollama_host.source})"),
        ("Codex base_url", paths.ollama_host.openai),
        ("provider templates", str(paths.profiles)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    out.out.print(table)
