"""The scripted newcomer session (scripts/newcomer.py) against the emulator with a 24 GiB GPU: outcomes only.

Its figures (medians over several sessions) are in the notes, measured by running the script itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_a_newcomers_week(hermetic_env: Path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "newcomer.py"), "--json", "--decode-rate", "2000",
         "--prompt-rate", "100000", "--load-time", "0", "--pull-rate", "2e11"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout)["sessions"][0]
    # no terminal, no --yes: exit 2, nothing created
    assert s["no_terminal"]["code"] == 2 and s["no_terminal"]["tags"] == [] and not s["no_terminal"]["profile"]
    assert "--yes" in s["no_terminal"]["errors"][0]["hint"]
    # the first setup does everything
    first = s["first"]
    assert first["code"] == 0, first["errors"]
    assert {status for status, _ in first["steps"].values()} == {"done"}
    assert first["tags"] == sorted([first["model"], first["variant"]])
    # a plain re-run is a no-op
    rerun = s["rerun"]
    assert rerun["code"] == 0 and rerun["profile_same"] and rerun["tags"] == first["tags"]
    assert all(rerun["steps"][n] == "unchanged" for n in ("pull", "variant", "check", "configure", "bench"))
    # switching models while the first is loaded
    switch = s["switch"]
    assert switch["loaded_before"] == [first["variant"]]
    assert switch["code"] == 0, switch["errors"]
    assert any(line.startswith(f"unload {first['variant']}") for line in switch["plan"])
    # prune leaves only the variants in use
    assert s["prune"]["code"] == 0
    assert s["prune"]["variants"] == {switch["variant"]: ["local_ollama"]}
