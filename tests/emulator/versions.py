"""Server version parsing and the behaviour switches that depend on it.

Every "since" threshold comes from the fact sheet (shared/reference/ollama-api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int]:
    """Return (major, minor, patch); pre-release suffixes are ignored.

    >>> parse_version("0.33.0-rc2")
    (0, 33, 0)
    >>> parse_version("0.0.0") < parse_version("0.13.3")
    True
    """
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"not a version: {text!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


@dataclass(frozen=True)
class Features:
    """What the impersonated server version supports."""

    version: str

    def at_least(self, threshold: str) -> bool:
        return parse_version(self.version) >= parse_version(threshold)

    @property
    def responses_api(self) -> bool:  # /v1/responses added in v0.13.3
        return self.at_least("0.13.3")

    @property
    def tags_capabilities(self) -> bool:  # capabilities + details.context_length in /api/tags
        return self.at_least("0.30.0")

    @property
    def normalized_not_found(self) -> bool:  # "model 'foo:latest' not found" in show
        return self.at_least("0.30.0")

    @property
    def ps_context_length(self) -> bool:
        return self.at_least("0.10.0")

    @property
    def openai_stream_v2(self) -> bool:  # role only on first delta, separate finish chunk
        return self.at_least("0.32.6")

    @property
    def llama_server_truncation(self) -> bool:  # half-window prompt truncation of llama-server
        return self.at_least("0.30.0")

    def default_num_ctx(self, vram_bytes: int) -> int:
        """Server default context when neither request, Modelfile nor env var sets one."""
        if self.at_least("0.15.5"):
            gib = 1 << 30
            if vram_bytes >= 47 * gib:
                return 262144
            if vram_bytes >= 23 * gib:
                return 32768
            return 4096
        if self.at_least("0.6.7"):
            return 4096
        return 2048
