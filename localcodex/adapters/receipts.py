"""Receipts: every benchmark and trial, kept in a local SQLite file (stdlib `sqlite3`). Nothing leaves the machine.

Durability: WAL journal, and every run is written in its own transaction the moment it completes, so a
benchmark killed half-way leaves a database that opens fine and holds every completed run; its session stays
`running` (shown as "incomplete"). Schema changes go through numbered migrations recorded in
`schema_version`; a database written by a newer localcodex is refused rather than damaged.

Tables: `sessions` (one bench or trial: machine fingerprint, endpoint, server version, settings, status),
`runs` (one request each: raw server counters in ns, client timings, rates, status and error), `summaries`
(one series each: model, prompt size, parallel level, median and spread, the full summary as JSON), `task_runs`
(one task attempt of `eval` or `trial` each: task, class, profile, repeat, status, time, tokens, cost, and the
whole attempt as JSON).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localcodex import __version__
from localcodex.domain.bench import BenchReport, BenchStart, RunResult, SeriesSummary
from localcodex.domain.envelope import to_jsonable
from localcodex.domain.fingerprint import Fingerprint
from localcodex.domain.names import model_key
from localcodex.domain.urls import redact_url
from localcodex.errors import ConfigError, NotFound
from localcodex.paths import receipts_db

# Columns of `runs` that mirror RunResult, in order (a test checks every RunResult field is stored).
RUN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunResult))

_V1 = (
    """CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        fingerprint TEXT NOT NULL,
        machine_label TEXT NOT NULL,
        machine_json TEXT NOT NULL,
        endpoint TEXT,
        endpoint_local INTEGER NOT NULL DEFAULT 1,
        api TEXT,
        server_version TEXT,
        models_json TEXT NOT NULL DEFAULT '[]',
        settings_json TEXT NOT NULL DEFAULT '{}',
        details_json TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        localcodex_version TEXT NOT NULL
    )""",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        model_key TEXT NOT NULL,
        model TEXT NOT NULL, digest TEXT, phase TEXT NOT NULL, prompt_target INTEGER NOT NULL,
        parallel INTEGER NOT NULL, run INTEGER NOT NULL, slot INTEGER NOT NULL,
        status TEXT NOT NULL, error TEXT, error_code TEXT, started_at TEXT, done_reason TEXT,
        load_duration INTEGER, prompt_eval_count INTEGER, prompt_eval_duration INTEGER,
        eval_count INTEGER, eval_duration INTEGER, total_duration INTEGER,
        ttft_s REAL, wall_s REAL, stream_tokens INTEGER, stream_span_s REAL,
        prompt_tps REAL, decode_tps REAL, e2e_tps REAL, stream_tps REAL, aggregate_tps REAL, batch_wall_s REAL,
        source TEXT
    )""",
    """CREATE TABLE summaries (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        model_key TEXT NOT NULL,
        model TEXT NOT NULL, digest TEXT, prompt_target INTEGER NOT NULL, prompt_tokens INTEGER,
        parallel INTEGER NOT NULL, status TEXT NOT NULL, runs_ok INTEGER NOT NULL, runs_failed INTEGER NOT NULL,
        decode_median REAL, decode_low REAL, decode_high REAL, prompt_median REAL, ttft_median REAL,
        e2e_median REAL, aggregate_median REAL, pct_of_ceiling REAL,
        data_json TEXT NOT NULL
    )""",
    "CREATE INDEX runs_session ON runs(session_id)",
    "CREATE INDEX summaries_lookup ON summaries(model_key, parallel)",
    "CREATE INDEX sessions_fingerprint ON sessions(fingerprint, kind)",
)
# V2: one row per task attempt of `eval` and `trial` (the same format for both): the columns a report groups and
# sorts by, and the whole attempt as JSON.
_V2 = (
    """CREATE TABLE task_runs (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        task TEXT NOT NULL, task_class TEXT NOT NULL, profile TEXT NOT NULL, repeat INTEGER NOT NULL,
        status TEXT NOT NULL, wall_s REAL, input_tokens INTEGER, output_tokens INTEGER, cost REAL,
        data_json TEXT NOT NULL
    )""",
    "CREATE INDEX task_runs_session ON task_runs(session_id)",
)
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)

_BROKEN_HINT = "move the file aside (it only holds past measurements); localcodex then starts a new one"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True)


@dataclass(frozen=True)
class SessionRecord:
    id: int
    kind: str
    status: str  # "running" (or crashed: "incomplete" for people) | "ok" | "failed" | "interrupted"
    started_at: str
    finished_at: str | None
    fingerprint: str
    machine: str
    endpoint: str | None
    endpoint_local: bool
    api: str | None
    server_version: str | None
    models: tuple[str, ...]
    settings: dict[str, Any]
    details: dict[str, Any]
    error: str | None
    localcodex_version: str

    @property
    def incomplete(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class SummaryRecord:
    session_id: int
    model: str
    digest: str | None
    prompt_target: int
    prompt_tokens: int | None
    parallel: int
    status: str
    runs_ok: int
    runs_failed: int
    decode_median: float | None
    decode_low: float | None
    decode_high: float | None
    prompt_median: float | None
    ttft_median: float | None
    e2e_median: float | None
    aggregate_median: float | None
    pct_of_ceiling: float | None
    data: dict[str, Any]


@dataclass(frozen=True)
class SessionDetail:
    session: SessionRecord
    summaries: tuple[SummaryRecord, ...]
    runs: tuple[RunResult, ...]


class ReceiptStore:
    """The receipts database. Open lazily; readers never create the file; writers create it and migrate."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else receipts_db()
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> ReceiptStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- connection, schema ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{what}: the receipts database {self.path} cannot be used: {exc}",
                              _BROKEN_HINT if "not a database" in str(exc) or "malformed" in str(exc)
                              else "check the folder's permissions and free space") from exc
        except OSError as exc:
            raise ConfigError(f"{what}: cannot open {self.path}: {exc}",
                              "check the folder's permissions, or set LOCALCODEX_HOME") from exc

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if not create and not self.path.exists():
            return None
        with self._errors("opening receipts"):
            from localcodex.adapters.files import create_private_file, make_private_dir

            make_private_dir(self.path.parent)
            create_private_file(self.path)  # receipts name hosts and models: 0600, like SQLite's side files
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            conn.row_factory = sqlite3.Row
            try:
                self._check_version(conn)  # before any write: a file we cannot use stays as it was
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
        self._conn = conn
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = self._connect(create=True)
        assert conn is not None
        return conn

    @staticmethod
    def _stored_version(conn: sqlite3.Connection) -> int:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            return -1 if tables else 0  # -1: tables, but not ours
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _check_version(self, conn: sqlite3.Connection) -> None:
        current = self._stored_version(conn)
        if current < 0:
            raise ConfigError(f"{self.path} is an SQLite database, but not localcodex's receipts",
                              "move it aside, or set LOCALCODEX_HOME to another folder")
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"the receipts database {self.path} was written by a newer localcodex (schema {current}, "
                f"this one knows {SCHEMA_VERSION})", "upgrade localcodex, or set LOCALCODEX_HOME elsewhere")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply each missing migration in its own transaction, recording the version with it."""
        current = self._stored_version(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with _transaction(conn):
                for statement in MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    # -- writing ---------------------------------------------------------------------------------------------

    def begin_session(
        self,
        kind: str,
        fingerprint: Fingerprint,
        *,
        endpoint: str | None = None,
        endpoint_local: bool = True,
        api: str | None = None,
        server_version: str | None = None,
        models: Sequence[str] = (),
        settings: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        status: str = "running",
    ) -> int:
        endpoint = redact_url(endpoint) if endpoint else endpoint  # receipts are exported and shared
        values = (kind, status, _now(), fingerprint.hash, fingerprint.label, _json(fingerprint.facts), endpoint,
                  int(endpoint_local), api, server_version, _json(list(models)), _json(settings or {}),
                  _json(details or {}), __version__)
        with self._errors("saving a receipt"), _transaction(self.conn):
            cursor = self.conn.execute(
                "INSERT INTO sessions (kind, status, started_at, fingerprint, machine_label, machine_json, "
                "endpoint, endpoint_local, api, server_version, models_json, settings_json, details_json, "
                "localcodex_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        return int(cursor.lastrowid or 0)

    def add_run(self, session_id: int, run: RunResult) -> None:
        """One run, committed on its own: a crash after this call keeps it."""
        columns = ("session_id", "model_key", *RUN_COLUMNS)
        values = (session_id, model_key(run.model), *(getattr(run, c) for c in RUN_COLUMNS))
        with self._errors("saving a run"), _transaction(self.conn):
            self.conn.execute(
                f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values)

    def add_summary(self, session_id: int, summary: SeriesSummary) -> None:
        s = summary
        decode = s.decode_tps
        values = (
            session_id, model_key(s.model), s.model, s.digest, s.prompt_target, s.prompt_tokens, s.parallel,
            s.status, s.runs_ok, s.runs_failed, decode.median if decode else None, decode.low if decode else None,
            decode.high if decode else None, s.prompt_tps.median if s.prompt_tps else None,
            s.ttft_s.median if s.ttft_s else None, s.e2e_tps.median if s.e2e_tps else None,
            s.aggregate_tps.median if s.aggregate_tps else None, s.pct_of_ceiling, _json(s),
        )
        with self._errors("saving a summary"), _transaction(self.conn):
            self.conn.execute(
                "INSERT INTO summaries (session_id, model_key, model, digest, prompt_target, prompt_tokens, parallel, "
                "status, runs_ok, runs_failed, decode_median, decode_low, decode_high, prompt_median, ttft_median, "
                "e2e_median, aggregate_median, pct_of_ceiling, data_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def finish_session(self, session_id: int, status: str, *, error: str | None = None,
                       details: Mapping[str, Any] | None = None) -> None:
        with self._errors("saving a receipt"), _transaction(self.conn):
            if details is not None:
                self.conn.execute("UPDATE sessions SET details_json = ? WHERE id = ?", (_json(details), session_id))
            self.conn.execute("UPDATE sessions SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                              (status, _now(), error, session_id))

    def record_trial(
        self,
        kind: str,
        details: Mapping[str, Any],
        *,
        fingerprint: Fingerprint,
        status: str = "ok",
        models: Sequence[str] = (),
        endpoint: str | None = None,
        endpoint_local: bool = True,
        api: str | None = None,
        server_version: str | None = None,
        settings: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> int:
        """Store a finished session of any kind (`"trial"` for `localcodex trial`) with JSON details."""
        session_id = self.begin_session(kind, fingerprint, endpoint=endpoint, endpoint_local=endpoint_local,
                                        api=api, server_version=server_version, models=models,
                                        settings=settings, details=details)
        self.finish_session(session_id, status, error=error)
        return session_id

    def add_task_run(self, session_id: int, run: Any) -> None:
        """One task attempt (`eval`, `trial`), committed on its own: a crash after this call keeps it."""
        values = (session_id, run.name, run.task_class, run.profile, run.repeat, run.status, run.wall_s,
                  run.input_tokens, run.output_tokens, run.cost, _json(run))
        with self._errors("saving a task run"), _transaction(self.conn):
            self.conn.execute(
                "INSERT INTO task_runs (session_id, task, task_class, profile, repeat, status, wall_s, input_tokens, "
                "output_tokens, cost, data_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def task_runs(self, session_id: int) -> tuple[dict[str, Any], ...]:
        """The task attempts of one session, in the order they finished, each as the JSON it was saved as."""
        conn = self._read()
        if conn is None:
            return ()
        with self._errors("reading receipts"):
            rows = conn.execute("SELECT data_json FROM task_runs WHERE session_id = ? ORDER BY id", (session_id,))
            return tuple(_loads(r["data_json"], {}) for r in rows)

    # -- reading ---------------------------------------------------------------------------------------------

    def _read(self) -> sqlite3.Connection | None:
        return self._connect(create=False)

    def sessions(self, *, limit: int | None = None, kind: str | None = None) -> list[SessionRecord]:
        """Newest first."""
        conn = self._read()
        if conn is None:
            return []
        query = "SELECT * FROM sessions" + (" WHERE kind = ?" if kind else "") + " ORDER BY id DESC"
        params: tuple[Any, ...] = (kind,) if kind else ()
        if limit is not None:
            query += " LIMIT ?"
            params += (limit,)
        with self._errors("reading receipts"):
            return [_session(row) for row in conn.execute(query, params)]

    def session(self, session_id: int) -> SessionDetail:
        conn = self._read()
        row = None
        if conn is not None:
            with self._errors("reading receipts"):
                row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if conn is None or row is None:
            raise NotFound(f"no receipt with id {session_id} in {self.path}", "see `localcodex receipts list`")
        summary_records = self.summaries(session_id)
        with self._errors("reading receipts"):
            runs = conn.execute("SELECT * FROM runs WHERE session_id = ? ORDER BY id", (session_id,))
            run_records = tuple(_run(r) for r in runs)
        return SessionDetail(_session(row), summary_records, run_records)

    def summaries(self, session_id: int) -> tuple[SummaryRecord, ...]:
        conn = self._read()
        if conn is None:
            return ()
        with self._errors("reading receipts"):
            rows = conn.execute("SELECT * FROM summaries WHERE session_id = ? ORDER BY id", (session_id,))
            return tuple(_summary(r) for r in rows)

    def all_runs(self) -> Iterator[tuple[SessionRecord, RunResult]]:
        """Every run with its session, oldest first (for export)."""
        conn = self._read()
        if conn is None:
            return
        with self._errors("reading receipts"):
            sessions = {r["id"]: _session(r) for r in conn.execute("SELECT * FROM sessions")}
            for row in conn.execute("SELECT * FROM runs ORDER BY session_id, id"):
                yield sessions[row["session_id"]], _run(row)

    def measured_decode_tps(self, fingerprint: Fingerprint | str, model: str, *,
                            prompt_tokens: int | None = None) -> float | None:
        """Decode tok/s measured for `model` on this machine, or None when it was never measured here.

        From the latest benchmark on the same machine fingerprint, against a server on this machine, that has
        a successful series at parallel 1: that series' median. With several prompt sizes, the one nearest to
        `prompt_tokens`, else the shortest (the figure closest to a bandwidth-bound estimate).
        """
        conn = self._read()
        if conn is None:
            return None
        key = fingerprint.hash if isinstance(fingerprint, Fingerprint) else fingerprint
        with self._errors("reading receipts"):
            rows = conn.execute(
                "SELECT s.session_id, s.decode_median, coalesce(s.prompt_tokens, s.prompt_target) AS size "
                "FROM summaries s JOIN sessions x ON x.id = s.session_id "
                "WHERE x.kind = 'bench' AND x.fingerprint = ? AND x.endpoint_local = 1 AND s.model_key = ? "
                "AND s.parallel = 1 AND s.runs_ok > 0 AND s.decode_median IS NOT NULL "
                "ORDER BY s.session_id DESC", (key, model_key(model))).fetchall()
        if not rows:
            return None
        latest = [r for r in rows if r["session_id"] == rows[0]["session_id"]]
        target = prompt_tokens if prompt_tokens is not None else 0
        best = min(latest, key=lambda r: abs((r["size"] or 0) - target))
        return float(best["decode_median"])


class BenchReceipt:
    """Records one `bench` into the store as it happens (the `BenchRecorder` of `localcodex.core.bench.run`)."""

    def __init__(self, store: ReceiptStore, fingerprint: Fingerprint) -> None:
        self.store = store
        self.fingerprint = fingerprint
        self.session_id: int | None = None

    def started(self, start: BenchStart) -> None:
        self.session_id = self.store.begin_session(
            "bench", self.fingerprint, endpoint=start.endpoint, endpoint_local=start.endpoint_local, api=start.api,
            server_version=start.server_version, models=[m.name for m in start.models], settings=start.settings,
            details={"models": start.models})

    def run_done(self, run: RunResult) -> None:
        if self.session_id is not None:
            self.store.add_run(self.session_id, run)

    def series_done(self, summary: SeriesSummary) -> None:
        if self.session_id is not None:
            self.store.add_summary(self.session_id, summary)

    def finished(self, report: BenchReport) -> None:
        if self.session_id is None:
            return
        details = {"models": [_model_details(m) for m in report.models], "failures": report.failures}
        error = report.failures[0].message if report.failures else None
        self.store.finish_session(self.session_id, report.status, error=error, details=details)

    def aborted(self, reason: str) -> None:
        if self.session_id is not None:
            self.store.finish_session(self.session_id, "interrupted", error=reason)


def _model_details(model: Any) -> dict[str, Any]:
    return {"name": model.model, "digest": model.digest, "status": model.status,
            "context_length": model.context_length, "gpu_fraction": model.gpu_fraction,
            "warmup": model.warmup, "notes": model.notes}


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _loads(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        id=row["id"], kind=row["kind"], status=row["status"], started_at=row["started_at"],
        finished_at=row["finished_at"], fingerprint=row["fingerprint"], machine=row["machine_label"],
        endpoint=row["endpoint"], endpoint_local=bool(row["endpoint_local"]), api=row["api"],
        server_version=row["server_version"], models=tuple(_loads(row["models_json"], [])),
        settings=_loads(row["settings_json"], {}), details=_loads(row["details_json"], {}), error=row["error"],
        localcodex_version=row["localcodex_version"],
    )


def _summary(row: sqlite3.Row) -> SummaryRecord:
    names = [f.name for f in fields(SummaryRecord) if f.name != "data"]
    return SummaryRecord(**{n: row[n] for n in names}, data=_loads(row["data_json"], {}))


def _run(row: sqlite3.Row) -> RunResult:
    return RunResult(**{c: row[c] for c in RUN_COLUMNS})
