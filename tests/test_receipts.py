"""Receipts: the SQLite store (schema, migrations, crash safety), the machine fingerprint, and
`localcodex receipts list|show|compare|export`, fed by real benchmarks against the emulator."""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import pytest
from emulator import preset_models

from localcodex.adapters.receipts import RUN_COLUMNS, SCHEMA_VERSION, ReceiptStore
from localcodex.core.bench.run import BenchRequest, RunResult, bench
from localcodex.core.fingerprint import fingerprint, this_machine
from localcodex.domain.machine import GPU, Machine
from localcodex.domain.units import GiB
from localcodex.errors import ConfigError, ExitCode, NotFound

REPO = Path(__file__).resolve().parent.parent
MODEL = "llama3.2:3b"
OTHER = "qwen2.5-coder:7b"


def preset(name: str, **changes):
    return replace(next(m for m in preset_models() if m.name == name), **changes)


@pytest.fixture
def emu(emulator_factory):
    return emulator_factory(installed=[preset(MODEL, decode_rate=200.0), preset(OTHER, decode_rate=100.0)],
                            prompt_rate=20000.0)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "localcodex-data" / "receipts.sqlite3"


def run_bench(cli, emu, *models: str, extra: tuple[str, ...] = ()) -> dict:
    result = cli("bench", *models, "--host", emu.url, "--prompt-tokens", "short,600", "--num-predict", "8",
                 "--json", *extra)
    assert result.code == 0, result.output
    return result.json()["data"]


# -- the machine fingerprint --------------------------------------------------------------------------------------


def test_fingerprint_holds_no_personal_data():
    fp = fingerprint(this_machine())
    text = json.dumps(fp.facts) + fp.label
    for personal in {socket.gethostname(), getpass.getuser(), os.environ["HOME"], str(Path.home())}:
        assert personal and personal not in text
    assert len(fp.hash) == 16 and fp.facts["os"] in fp.label


def test_fingerprint_is_stable_and_follows_the_hardware():
    machine = Machine(os="linux", arch="x86_64", cpu_model="AMD Ryzen 9 7950X", cores_physical=16,
                      cores_logical=32, simd=("avx2",), ram_total=int(63.6 * GiB), ram_available=40 * GiB)
    same_box_later = replace(machine, ram_total=int(63.8 * GiB), ram_available=12 * GiB)
    assert fingerprint(machine) == fingerprint(same_box_later)  # free memory and a few MiB of RAM do not count
    gpu = GPU(index=0, vendor="nvidia", name="NVIDIA GeForce RTX 4090", memory_total=24 * GiB,
              memory_free=20 * GiB, backend="cuda")
    with_gpu = fingerprint(replace(machine, gpus=(gpu,)))
    assert with_gpu.hash != fingerprint(machine).hash
    assert "RTX 4090 24 GiB" in with_gpu.label and "64 GiB RAM" in with_gpu.label
    busy_gpu = replace(gpu, memory_free=1 * GiB)
    assert fingerprint(replace(machine, gpus=(busy_gpu,))) == with_gpu


# -- the store ----------------------------------------------------------------------------------------------------


def test_a_new_database_has_a_schema_version_and_uses_wal(db):
    with ReceiptStore(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "sessions", "runs", "summaries"} <= tables
    stored = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    assert {f.name for f in fields(RunResult)} <= stored  # every measured field has a column
    conn.close()
    with ReceiptStore(db) as again:  # opening again migrates nothing twice
        assert again.schema_version() == SCHEMA_VERSION
    assert sqlite3.connect(db).execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_readers_never_create_the_database(db, cli):
    assert ReceiptStore(db).sessions() == [] and ReceiptStore(db).measured_decode_tps("x", MODEL) is None
    result = cli("receipts", "list")
    assert result.code == 0 and "no receipts yet" in result.stderr
    assert not db.exists()


def test_a_newer_database_is_refused_untouched(db):
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ConfigError, match="newer localcodex"):
        ReceiptStore(db).sessions()
    assert db.read_bytes() == before


def test_a_broken_database_costs_the_receipt_not_the_benchmark(db, emu, cli):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not an sqlite file, but somebody's notes" * 100)
    before = db.read_bytes()
    result = cli("receipts", "list")
    assert result.code == ExitCode.CONFIG
    assert "cannot be used" in result.stderr and "move the file aside" in result.stderr
    bench_run = cli("bench", MODEL, "--host", emu.url, "--prompt-tokens", "short", "--num-predict", "4")
    assert bench_run.code == 0
    assert "receipts will not be saved" in bench_run.stderr
    assert db.read_bytes() == before


def test_every_run_is_stored_exactly(emu, db):
    store = ReceiptStore(db)
    from localcodex.adapters.receipts import BenchReceipt

    recorder = BenchReceipt(store, fingerprint(this_machine()))
    report = bench(BenchRequest(models=(MODEL,), prompt_tokens=(0, 600), num_predict=8, host=emu.url),
                   recorder=recorder)
    detail = store.session(recorder.session_id)
    assert detail.runs == report.runs  # every field, every float, bit for bit
    assert detail.session.status == "ok" and detail.session.kind == "bench"
    assert detail.session.server_version == emu.version and detail.session.endpoint == emu.url
    assert [s.decode_median for s in detail.summaries] == [s.decode_tps.median for s in report.series]
    assert detail.summaries[0].data["decode_tps"]["n"] == report.series[0].decode_tps.n
    assert detail.session.models == (MODEL,)
    assert detail.session.details["models"][0]["digest"] == report.models[0].digest
    assert tuple(f.name for f in fields(RunResult)) == RUN_COLUMNS


def test_receipts_survive_a_crash_in_the_middle_of_a_benchmark(emulator_factory, db):
    """Kill -9 a real `localcodex bench` process mid-run: the database opens, holds every completed run."""
    emu = emulator_factory(installed=[preset(MODEL)], decode_rate=100.0, prompt_rate=20000.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localcodex", "bench", MODEL, "--host", emu.url, "--prompt-tokens", "short",
         "--num-predict", "20", "--runs", "40"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while done < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        done = conn.execute("SELECT count(*) FROM runs WHERE phase = 'measure'").fetchone()[0]
                    except sqlite3.OperationalError:  # tables not made yet
                        done = 0
        assert done >= 3, "the benchmark did not record runs as it went"
        os.kill(proc.pid, signal.SIGKILL)  # in the middle of a run: 40 runs take 8 s
    finally:
        proc.kill()
        proc.wait()
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with ReceiptStore(db) as store:
        (session,) = store.sessions()
        assert session.status == "running" and session.incomplete
        detail = store.session(session.id)
        measured = [r for r in detail.runs if r.phase == "measure"]
        assert 3 <= len(measured) < 40
        assert all(r.ok and r.eval_count == 20 and r.decode_tps == pytest.approx(100.0, rel=0.01) for r in measured)


def test_measured_decode_speed_for_recommend(emu, cli, db):
    run_bench(cli, emu, MODEL)
    fp = fingerprint(this_machine())
    store = ReceiptStore(db)
    assert store.measured_decode_tps(fp, MODEL) == pytest.approx(200.0, rel=0.01)
    assert store.measured_decode_tps(fp.hash, "LLAMA3.2:3b") == pytest.approx(200.0, rel=0.01)  # Ollama's names
    assert store.measured_decode_tps(fp, MODEL, prompt_tokens=600) == pytest.approx(200.0, rel=0.01)
    assert store.measured_decode_tps(fp, OTHER) is None  # never measured
    assert store.measured_decode_tps("0" * 16, MODEL) is None  # another machine
    # a newer benchmark of the same model wins; one against a remote server does not count for this machine
    detail = store.session(store.sessions()[0].id)
    remote = store.begin_session("bench", fp, endpoint="http://gpu-box:11434", endpoint_local=False, api="ollama")
    store.add_summary(remote, replace(_summary_from(detail), decode_tps=None))
    assert store.measured_decode_tps(fp, MODEL) == pytest.approx(200.0, rel=0.01)


def _summary_from(detail):
    """A SeriesSummary shaped like a stored one (for writing a remote session by hand)."""
    from localcodex.core.bench.run import SeriesSummary
    from localcodex.core.bench.stats import Spread

    s = detail.summaries[0]
    return SeriesSummary(model=s.model, digest=s.digest, prompt_target=s.prompt_target,
                         prompt_tokens=s.prompt_tokens, parallel=1, num_predict=8, status="ok", runs=3, runs_ok=3,
                         runs_failed=0, early_stop=True, decode_tps=Spread(3, 999.0, 999.0, 999.0), prompt_tps=None,
                         ttft_s=None, e2e_tps=None, aggregate_tps=None, eval_tokens=8, concurrency=None,
                         ceiling_tps=None, pct_of_ceiling=None, error=None)


def test_a_trial_is_a_session_too(db, cli):
    fp = fingerprint(this_machine())
    with ReceiptStore(db) as store:
        trial = store.record_trial("trial", {"task": "make the proof file", "passed": True, "seconds": 41.5},
                                   fingerprint=fp, models=[MODEL], endpoint="http://127.0.0.1:11434/v1",
                                   api="openai", status="ok")
    listing = cli("receipts", "list", "--json").json()["data"]["receipts"]
    assert [(r["id"], r["kind"], r["status"], r["models"]) for r in listing] == [(trial, "trial", "ok", [MODEL])]
    shown = cli("receipts", "show", str(trial))
    assert shown.code == 0 and "make the proof file" in shown.stdout
    assert cli("receipts", "show", str(trial), "--json").json()["data"]["session"]["details"]["passed"] is True


# -- the commands -------------------------------------------------------------------------------------------------


def test_list_show_compare_export(emu, cli, tmp_path):
    first = run_bench(cli, emu, MODEL)["receipt_id"]
    second = run_bench(cli, emu, OTHER)["receipt_id"]

    listing = cli("receipts", "list")
    assert listing.code == 0
    lines = [line for line in listing.stdout.splitlines() if f"{MODEL} " in line or f"{OTHER} " in line]
    assert OTHER in lines[0] and "100 tok/s" in lines[0].replace("100.0", "100")  # newest first, with its result
    assert MODEL in lines[1] and "200" in lines[1]

    shown = cli("receipts", "show", str(first))
    assert shown.code == 0
    assert f"receipt {first}: bench, ok" in shown.stdout and "fingerprint" in shown.stdout
    assert "series" in shown.stdout and "runs" in shown.stdout and "warmup" in shown.stdout
    data = cli("receipts", "show", str(first), "--json").json()["data"]
    assert len(data["summaries"]) == 2 and data["runs"][0]["phase"] == "warmup"

    compared = cli("receipts", "compare", str(first), str(second), "--json")
    rows = compared.json()["data"]["rows"]
    theirs = [r for r in rows if r["session_id"] == second]
    assert all(r["decode_change"] == pytest.approx(-0.5, abs=0.01) for r in theirs)  # half as fast
    assert all(r["baseline_session"] == first for r in theirs)
    human = cli("receipts", "compare", str(first), str(second))
    assert "-50.0%" in human.stdout

    exported = cli("receipts", "export", "--csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {r["session_id"] for r in rows} == {str(first), str(second)}
    assert {"machine", "fingerprint", "endpoint", "eval_duration", "prompt_eval_count", "ttft_s"} <= set(rows[0])
    measured = [r for r in rows if r["phase"] == "measure" and r["model"] == OTHER]
    assert all(float(r["decode_tps"]) == pytest.approx(100.0, rel=0.01) for r in measured)

    out = tmp_path / "exports" / "runs.csv"
    written = cli("receipts", "export", "--csv", "--out", str(out))
    assert written.code == 0 and out.read_text() == exported.stdout
    assert f"wrote {len(rows)} run(s)" in written.stderr


def test_receipt_errors_are_one_clear_line(emu, cli):
    assert cli("receipts", "show", "42").code == ExitCode.NOT_FOUND
    first = run_bench(cli, emu, MODEL)["receipt_id"]
    result = cli("receipts", "compare", str(first))
    assert result.code == ExitCode.USAGE and "at least two" in result.stderr
    result = cli("receipts", "compare", str(first), "99")
    assert result.code == ExitCode.NOT_FOUND and "Traceback" not in result.output
    with pytest.raises(NotFound):
        ReceiptStore().session(99)


def test_a_failed_benchmark_keeps_what_it_measured(emu, db, cli):
    from emulator import Fault

    from localcodex.adapters.receipts import BenchReceipt

    def break_run_2(event) -> None:
        if event.run is not None and event.run.phase == "measure" and event.run.run == 1:
            emu.inject(Fault("reset", path="/api/generate", after=3))

    recorder = BenchReceipt(ReceiptStore(db), fingerprint(this_machine()))
    report = bench(BenchRequest(models=(MODEL,), prompt_tokens=(0,), num_predict=8, host=emu.url), break_run_2,
                   recorder=recorder)
    assert report.status == "failed"
    shown = cli("receipts", "show", str(recorder.session_id), "--json").json()["data"]
    assert shown["session"]["status"] == "failed" and "broke" in shown["session"]["error"]
    assert [(r["phase"], r["status"]) for r in shown["runs"]] == [
        ("warmup", "ok"), ("measure", "ok"), ("measure", "failed")]
    assert shown["runs"][2]["error_code"] == "server_error" and shown["runs"][2]["stream_tokens"] == 3
    assert shown["summaries"][0]["status"] == "failed" and shown["summaries"][0]["decode_median"] == 200.0
    listing = cli("receipts", "list")
    assert "failed" in listing.stdout
