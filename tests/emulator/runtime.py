"""Loaded models: context size, memory, keep-alive and what ``/api/ps`` shows.

* ``num_ctx`` = request ``options.num_ctx``, else the Modelfile ``num_ctx`` parameter, else
  ``context_length_env`` (``OLLAMA_CONTEXT_LENGTH``), else the version's default (VRAM
  tier from v0.15.5); then clamped to the trained context, at least 4 (2048 for vision).
* ``size`` = model blob size + KV cache, as llama-server allocates it (what v0.30+ reports, §4.3): KV =
  ``kv_layers * head_count_kv * (key_length + value_length) * num_ctx * 2`` bytes, where ``kv_layers`` counts
  only the full-attention layers of a hybrid model (``<arch>.full_attention_interval``); without key/value
  lengths the head width is ``embedding_length // head_count`` (Ollama's pre-flight estimate).
* ``size_vram`` = the part of ``size`` that fits in the VRAM left by other loaded models
  (``0`` when ``vram_bytes == 0``); loading a model that does not fit first evicts the
  others, the one expiring soonest first.
* A model is one runner per model blob (``server/sched.go`` ~109-117): a request that needs
  another ``num_ctx`` reloads it; one with equal options reuses it (~201-202), and the runner
  keeps the name of the model that loaded it, so ``/api/ps`` may name ``MODEL`` after a request
  for ``MODEL-ctx32k`` that shares its weights.
* Requests to one model run one at a time (``OLLAMA_NUM_PARALLEL=1``).
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .clock import go_time
from .httpbase import Aborted, ApiError
from .store import Installed

if TYPE_CHECKING:
    from .server import Emulator

FOREVER = math.inf
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: Any, default: float) -> float:
    """Seconds (``inf`` = forever) from a JSON number or a Go duration string.

    >>> parse_keep_alive("1h30m", 300), parse_keep_alive(-1, 300), parse_keep_alive(None, 300)
    (5400.0, inf, 300)
    """
    if value is None:
        return default
    if isinstance(value, bool):
        raise ApiError(400, "json: cannot unmarshal bool into Go value of type api.Duration")
    if isinstance(value, (int, float)):
        return FOREVER if value < 0 else float(value)
    text = str(value).strip()
    if text.lstrip("+-").replace(".", "", 1).isdigit() and text not in ("0", "-0", "+0"):
        raise ApiError(400, f'time: missing unit in duration "{text}"')
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(a + b for a, b in parts) != body:
        raise ApiError(400, f'time: invalid duration "{text}"')
    seconds = sign * sum(float(amount) * _UNIT[unit] for amount, unit in parts)
    return FOREVER if seconds < 0 else seconds


def kv_cache_bytes(installed: Installed, num_ctx: int) -> int:
    info = installed.info
    if info is None:
        return 0

    def number(key: str, pick: Any) -> int:
        value = info.arch_value(key, 0)
        return int(pick(value)) if isinstance(value, list) and value else int(value or 0)

    layers = number("block_count", max)
    interval = number("full_attention_interval", max)
    if interval > 1:  # hybrid: the linear-attention layers keep a small fixed state, not a KV cache
        layers = layers // interval
    kv_heads = number("attention.head_count_kv", min) or 1
    heads = number("attention.head_count", max)
    width = number("attention.key_length", max) + number("attention.value_length", max)
    if not width:
        width = 2 * (number("embedding_length", max) // heads if heads else 0)
    return layers * kv_heads * width * num_ctx * 2


@dataclass
class Loaded:
    key: str
    installed: Installed
    num_ctx: int
    size: int
    size_vram: int
    expires_at: float
    busy: int = 0
    ready: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ps_entry(self, with_context: bool) -> dict[str, Any]:
        expires = (datetime.now(timezone.utc) + timedelta(days=292 * 365) if self.expires_at == FOREVER
                   else datetime.fromtimestamp(self.expires_at, timezone.utc))
        entry: dict[str, Any] = {
            "name": self.installed.name.display,
            "model": self.installed.name.display,
            "size": self.size,
            "digest": self.installed.digest,
            "details": self.installed.details(),
            "expires_at": go_time(expires, local=True),
            "size_vram": self.size_vram,
        }
        if with_context:
            entry["context_length"] = self.num_ctx
        return entry


class Runtime:
    def __init__(self, emu: Emulator):
        self.emu = emu
        self.lock = threading.RLock()
        self.entries: dict[str, Loaded] = {}

    @staticmethod
    def key_of(installed: Installed) -> str:
        layer = installed.layer("application/vnd.ollama.image.model")
        return layer["digest"] if layer else installed.digest

    def num_ctx_for(self, installed: Installed, options: dict[str, Any]) -> int:
        value = options.get("num_ctx")
        if value is None:
            value = installed.params.get("num_ctx")
        if value is None:
            value = self.emu.context_length_env
        if value is None:
            value = self.emu.features.default_num_ctx(self.emu.vram_bytes)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(500, 'option "num_ctx" must be of type integer')
        trained = int((installed.info.arch_value("context_length", 0) if installed.info else 0) or 0)
        value = int(value)
        if trained > 0:
            value = min(value, trained)
        floor = 2048 if "vision" in installed.capabilities else 4
        return max(value, min(floor, trained) if trained else floor)

    def purge_expired(self) -> None:
        now = time.time()
        with self.lock:
            for key, entry in list(self.entries.items()):
                if entry.busy == 0 and entry.expires_at <= now:
                    del self.entries[key]

    def acquire(self, installed: Installed, num_ctx: int) -> tuple[Loaded, bool]:
        """Reserve the runner for ``installed``; True when it must (re)load first.

        A runner busy with another ``num_ctx`` is waited for, then replaced.
        """
        key = self.key_of(installed)
        while True:
            self.purge_expired()
            with self.lock:
                entry = self.entries.get(key)
                if entry is None or (entry.num_ctx != num_ctx and entry.busy == 0):
                    entry = self._new_entry(key, installed, num_ctx)
                if entry.num_ctx == num_ctx:
                    entry.busy += 1
                    break
            self.emu.sleep(0.01)
        while not entry.lock.acquire(timeout=0.05):
            if self.emu.stopping:
                with self.lock:
                    entry.busy -= 1
                raise Aborted("server stopping")
        # A reused runner keeps the name of the model that first loaded it (server/sched.go ~475-491),
        # and /api/ps prints that name (server/routes.go ~2271-2295).
        return entry, not entry.ready

    def _new_entry(self, key: str, installed: Installed, num_ctx: int) -> Loaded:
        size = installed.model_blob_size + kv_cache_bytes(installed, num_ctx)
        vram = self.emu.vram_bytes
        self.entries.pop(key, None)
        if vram > 0:
            for other in sorted(self.entries.values(), key=lambda e: e.expires_at):
                if sum(e.size_vram for e in self.entries.values()) + size <= vram:
                    break
                if other.busy == 0:
                    del self.entries[other.key]
        free = max(0, vram - sum(e.size_vram for e in self.entries.values()))
        entry = Loaded(key, installed, num_ctx, size, min(size, free),
                       time.time() + self.emu.keep_alive_default)
        self.entries[key] = entry
        return entry

    def release(self, entry: Loaded, keep_alive: float) -> None:
        with self.lock:
            entry.busy -= 1
            entry.expires_at = FOREVER if keep_alive == FOREVER else time.time() + keep_alive
            if keep_alive <= 0 and entry.busy == 0 and self.entries.get(entry.key) is entry:
                del self.entries[entry.key]
        entry.lock.release()

    def unload(self, installed: Installed) -> None:
        with self.lock:
            entry = self.entries.get(self.key_of(installed))
            if entry is not None and entry.busy == 0:
                del self.entries[entry.key]

    def ps(self) -> list[dict[str, Any]]:
        self.purge_expired()
        with_context = self.emu.features.ps_context_length
        with self.lock:
            entries = sorted((e for e in self.entries.values() if e.ready),
                             key=lambda e: e.expires_at, reverse=True)
            return [entry.ps_entry(with_context) for entry in entries]
