"""The invocation: what one run of a command was given, read once at the edge and carried down.

A command builds it (`Invocation.build`) from its options and the process environment; core steps and the
wiring take it as a parameter and never read `os.environ` or parse a host themselves. Tests build one with an
explicit `env`, so what a step reads is exactly what the test gave it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from localcodex import paths
from localcodex.paths import OllamaHost


@dataclass(frozen=True)
class Invocation:
    env: Mapping[str, str]  # the environment this run sees (a read-only copy)
    host: OllamaHost  # the Ollama server, parsed once: --host, else $OLLAMA_HOST, else the default
    json: bool = False  # --json: one envelope on stdout, progress as event lines
    host_given: str | None = field(default=None, compare=False)  # --host as typed (None: not given)

    @classmethod
    def build(cls, host: str | None = None, *, json: bool = False, env: Mapping[str, str] | None = None) -> Invocation:
        """The invocation of this process (`env=None`: `os.environ`, copied now) with `--host` applied.

        >>> inv = Invocation.build("gpu-box:11434", env={"OLLAMA_HOST": "ignored"})
        >>> inv.host.native, inv.host.source
        ('http://gpu-box:11434', '--host')
        >>> Invocation.build(env={"OLLAMA_HOST": "10.0.0.5"}).host.native
        'http://10.0.0.5:11434'
        """
        frozen = MappingProxyType(dict(os.environ if env is None else env))
        return cls(env=frozen, host=paths.ollama_host(host, frozen), json=json, host_given=host)

    @property
    def data_dir(self) -> Path:
        return paths.data_dir(self.env)

    @property
    def receipts_db(self) -> Path:
        return paths.receipts_db(self.env)

    @property
    def backups_dir(self) -> Path:
        return paths.backups_dir(self.env)

    @property
    def codex_home(self) -> Path:
        return paths.codex_home(self.env)
