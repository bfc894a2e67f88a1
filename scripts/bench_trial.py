#!/usr/bin/env python3
"""Where the time of `localcodex trial` goes, and how tightly it keeps its step timeout.

Runs the real Codex CLI against the Ollama emulator (tests/emulator) on loopback, with the scripted model of
tests/trial_script.py, in a throw-away HOME/CODEX_HOME, and prints medians:

* a whole trial at the emulator's fast rates: total, each `codex exec`, and localcodex's own share (scratch
  repository, git, the project's tests) = total minus the two Codex runs;
* the same at realistic rates (40 tokens/s decode, 2,000 tokens/s prompt, 0.2 s load): how long a user waits
  when the model is the slow part (Codex sends ~2.8k prompt tokens for the read-only task here);
* a stalled server: the timed-out step's duration divided by `--timeout` (1.0 = the limit held exactly).

    python scripts/bench_trial.py [--runs 5] [--timeout 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from emulator import Emulator, Fault, preset_models  # noqa: E402
from trial_script import TrialScript  # noqa: E402

from localcodex.adapters.codex_cli import QUIET_CONFIG  # noqa: E402
from localcodex.core.trial import TrialReport, TrialRequest, trial  # noqa: E402
from localcodex.invocation import Invocation  # noqa: E402
from localcodex.wiring import Live  # noqa: E402

MODEL = "qwen3-coder:30b"
FAST = {"decode_rate": 2000.0, "prompt_rate": 100000.0, "load_time": 0.0}
REALISTIC = {"decode_rate": 40.0, "prompt_rate": 2000.0, "load_time": 0.2}


def sandbox() -> Path:
    """A private HOME, CODEX_HOME and LOCALCODEX_HOME, so the user's own files are never touched."""
    root = Path(tempfile.mkdtemp(prefix="bench-trial-"))
    os.environ.update(HOME=str(root), CODEX_HOME=str(root / "codex"), LOCALCODEX_HOME=str(root / "data"))
    (root / "codex").mkdir()
    (root / "codex" / "config.toml").write_text(QUIET_CONFIG)
    tempfile.tempdir = str(root)
    return root


def start(root: Path, rates: dict[str, float]) -> Emulator:
    from localcodex.core.configure import ConfigureRequest, configure

    model = next(m for m in preset_models() if m.name == MODEL)
    emu = Emulator(models_dir=root / f"models-{time.monotonic_ns()}", installed=[model], **rates).start()
    configure(ConfigureRequest(model=MODEL, host=emu.url, context=32768), Live(Invocation.build()))
    emu.responder = TrialScript()
    return emu


def timed_trials(root: Path, rates: dict[str, float], runs: int) -> list[TrialReport]:
    emu = start(root, rates)
    try:
        live = Live(Invocation.build())  # the private HOME/CODEX_HOME set above
        reports = [trial(TrialRequest(save_receipt=False, step_timeout_s=120), live) for _ in range(runs)]
    finally:
        emu.stop()
    bad = [r.verdict for r in reports if not r.ok]
    if bad:
        raise SystemExit(f"a trial failed: {bad[0]}")
    return reports


def show(label: str, reports: list[TrialReport]) -> None:
    total = statistics.median(r.wall_s for r in reports)
    steps = [statistics.median(r.steps[i].wall_s for r in reports) for i in range(2)]
    own = statistics.median(r.wall_s - sum(s.wall_s for s in r.steps) for r in reports)
    print(f"{label:<10} trial {total:6.2f} s   read-only codex exec {steps[0]:5.2f} s   "
          f"small-edit codex exec {steps[1]:5.2f} s   localcodex's own {own:5.2f} s  (median of {len(reports)})")


def timeout_ratio(root: Path, timeout: float, runs: int) -> list[float]:
    emu = start(root, FAST)
    emu.inject(Fault("stall", path="/v1/responses", times=None))
    try:
        live = Live(Invocation.build())  # the private HOME/CODEX_HOME set above
        reports = [trial(TrialRequest(save_receipt=False, step_timeout_s=timeout), live) for _ in range(runs)]
    finally:
        emu.stop()
    return [r.steps[0].wall_s / timeout for r in reports if r.steps[0].status == "timeout"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    if shutil.which("codex") is None:
        raise SystemExit("the Codex CLI is not on PATH (npm install -g @openai/codex)")
    root = sandbox()
    try:
        show("fast", timed_trials(root, FAST, args.runs))
        show("realistic", timed_trials(root, REALISTIC, args.runs))
        ratios = timeout_ratio(root, args.timeout, max(1, args.runs // 2))
        print(f"stalled server, --timeout {args.timeout:g}: step took {statistics.median(ratios):.3f} x the timeout "
              f"(median of {len(ratios)}; the rest is killing Codex and reading what it wrote)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
