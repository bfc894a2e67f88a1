"""localcodex: turn a machine with Ollama into a working local backend for the OpenAI Codex CLI.

Layout (see README "Where things live"):
  cli.py, commands/   thin typer commands: parse options, call one core function, render the result
  output.py           the renderer: rich for humans, the versioned JSON envelope for --json
  errors.py           LocalcodexError (message + hint + exit code) and the ExitCode enum
  paths.py            every path and host the toolkit uses, with their environment overrides
  core/               one module per pipeline step; each returns frozen dataclasses, never prints
  adapters/           the only code that touches the network, files, subprocesses and the OS
"""

__version__ = "0.1.0"
