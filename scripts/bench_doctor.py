#!/usr/bin/env python3
"""How long `localcodex doctor` takes, offline and with probes, against the Ollama emulator on loopback.

Prints medians of:

* the offline examination (`run_probes=False`) of a realistic Codex home: config.toml with a few tables, N
  profile files and a project-local file, for N = 1, 5 and 20 (config reading, rules, `codex --version`);
* the same with probes against the emulator at realistic rates (40 tokens/s, 0.2 s load): the quick probes
  generate nothing, so this stays fast on real hardware; `--deep` adds the generating probes, for comparison;
* `python -m localcodex doctor --no-probes` as a process (what a user waits for, start-up included).

    python scripts/bench_doctor.py [--runs 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from emulator import Emulator, preset_models  # noqa: E402

from localcodex.adapters.hostenv import HostEnv  # noqa: E402
from localcodex.core.doctor.run import DoctorRequest, doctor  # noqa: E402
from localcodex.domain.machine import GPU, Machine  # noqa: E402
from localcodex.domain.units import GiB  # noqa: E402
from localcodex.invocation import Invocation  # noqa: E402
from localcodex.wiring import Live  # noqa: E402

REALISTIC = {"decode_rate": 40.0, "prompt_rate": 2000.0, "load_time": 0.2}



def examine(req: DoctorRequest):
    """doctor with the live adapters of an invocation that sees the request's environment and host."""
    return doctor(req, Live(Invocation.build(req.host, env=req.env)))

def good_model():
    model = next(m for m in preset_models() if m.name == "qwen3.5:27b")
    return dataclasses.replace(model, parameters={**model.parameters, "num_ctx": 65536})


def machine() -> Machine:
    gpu = GPU(0, "nvidia", "bench GPU", 48 * GiB, 48 * GiB, "cuda")
    return Machine(os="linux", arch="x86_64", cpu_model="bench", cores_physical=8, cores_logical=16, simd=(),
                   ram_total=64 * GiB, ram_available=64 * GiB, gpus=(gpu,))


def profile(base_url: str, window: int = 65536) -> str:
    return (f'model = "qwen3.5:27b"\nmodel_provider = "local_ollama"\nmodel_context_window = {window}\n'
            'web_search = "disabled"\n\n[agents]\nenabled = false\n\n[model_providers.local_ollama]\n'
            f'name = "Ollama (local)"\nbase_url = "{base_url}"\nwire_api = "responses"\n')


def codex_home(base_url: str, profiles: int) -> tuple[Path, Path]:
    top = Path(tempfile.mkdtemp(prefix="bench-doctor-"))
    home = top / ".codex"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "gpt-5"\napproval_policy = "on-request"\n\n[model_providers.gw]\nname = "GW"\n'
        'base_url = "https://gw.example/v1"\nenv_key = "GW_KEY"\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n')
    for i in range(profiles):
        (home / f"p{i}.config.toml").write_text(profile(base_url, 65536 if i % 2 == 0 else 32768))
    project = top / "repo"
    (project / ".git").mkdir(parents=True)
    (project / ".codex").mkdir()
    (project / ".codex/config.toml").write_text('model_reasoning_effort = "high"\nmodel_provider = "x"\n')
    for path in home.iterdir():
        path.chmod(0o600)
    return home, project


def median_seconds(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def request(home: Path, project: Path, **kw) -> DoctorRequest:
    env = {**os.environ, "CODEX_HOME": str(home), "HOME": str(home.parent)}
    return DoctorRequest(codex_home=home, cwd=project, env=env, machine=machine(),
                         hostenv=HostEnv(Path(tempfile.gettempdir()) / "no-such-root", home.parent), **kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    emu = Emulator(models_dir=tempfile.mkdtemp(prefix="bench-doctor-models-"), installed=[good_model()],
                   vram_bytes=48 * GiB, **REALISTIC).start()
    try:
        print(f"doctor, median of {args.runs} runs")
        for n in (1, 5, 20):
            home, project = codex_home(f"{emu.url}/v1", n)
            offline = median_seconds(args.runs, lambda h=home, p=project: examine(request(h, p, run_probes=False)))
            probed = median_seconds(args.runs, lambda h=home, p=project: examine(request(h, p, host=emu.url)))
            findings = len(examine(request(home, project, host=emu.url)).findings)
            print(f"  {n:>2} profile file(s): offline {offline * 1000:7.1f} ms   with quick probes "
                  f"{probed * 1000:7.1f} ms   ({findings} findings)")
        home, project = codex_home(f"{emu.url}/v1", 1)
        quick = median_seconds(args.runs, lambda: examine(request(home, project, host=emu.url)))
        deep = median_seconds(max(1, args.runs // 2), lambda: examine(request(home, project, host=emu.url, deep=True)))
        print(f"  one profile at 40 tok/s: quick {quick:.2f} s, --deep {deep:.2f} s (ratio {deep / quick:.1f}x)")
        env = {**os.environ, "CODEX_HOME": str(home), "HOME": str(home.parent), "OLLAMA_HOST": emu.url,
               "PYTHONPATH": str(ROOT)}
        process = median_seconds(args.runs, lambda: subprocess.run(
            [sys.executable, "-m", "localcodex", "doctor", "--no-probes"], cwd=project, env=env,
            capture_output=True, stdin=subprocess.DEVNULL, check=False))
        print(f"  `python -m localcodex doctor --no-probes` as a process: {process * 1000:.0f} ms")
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
