"""localcodex: turn a machine with Ollama into a working local backend for the OpenAI Codex CLI.

Layout (see README "For developers"): cli.py and commands/ (typer), invocation.py and wiring.py (the run's
environment and its live adapters), core/ (the steps), adapters/ (network, files, processes), domain/ (pure
rules and result types), render/ (people and --json).
"""

__version__ = "0.1.0"
