"""`setup-state.json` in the data folder: what earlier `setup` runs proved, per Ollama host.

A missing or unreadable file only costs re-proving; the file is rewritten whole (never half-written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localcodex.adapters.files import write_text_atomic

STATE_FILE = "setup-state.json"
STATE_VERSION = 1


class SetupState:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / STATE_FILE

    def _document(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) and doc.get("version") == STATE_VERSION else {}

    def load(self, host: str) -> dict[str, Any]:
        """What earlier runs proved on the server at `host` (its native URL)."""
        entry = self._document().get("hosts", {}).get(host, {})
        return entry if isinstance(entry, dict) else {}

    def save(self, host: str, entry: dict[str, Any]) -> None:
        """Replace what is known of `host`, keeping the other hosts."""
        doc = self._document()
        doc.setdefault("hosts", {})[host] = entry
        doc["version"] = STATE_VERSION
        write_text_atomic(self.path, json.dumps(doc, indent=2, sort_keys=True))

    def created_variants(self, host: str) -> tuple[str, ...]:
        """The context variants setup created on `host` (they may since have been removed)."""
        names = self.load(host).get("variants") or []
        return tuple(n for n in names if isinstance(n, str))

    def forget_variants(self, host: str, names: set[str]) -> None:
        """Drop `names` from the variants setup remembers creating on `host` (after `models prune`)."""
        entry = self.load(host)
        if not entry.get("variants"):
            return
        entry["variants"] = [n for n in entry["variants"] if n not in names]
        self.save(host, entry)
