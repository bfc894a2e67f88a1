"""Issue 19: nothing leaks, nothing is lost, nothing hangs. One test (at least) per numbered finding; each
fails on the behaviour the issue reproduced."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from localcodex.adapters import codex_changes, codex_cli, codex_write, toml_edit

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    tomllib = None

CTX = ["--model", "qwen3-coder:30b", "--context", "32768"]


def load_toml(text: str) -> dict:
    return tomllib.loads(text.lstrip("\ufeff")) if tomllib else toml_edit.plain(toml_edit.parse(text, "x"))


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(codex_cli, "codex_info", lambda *a, **k: codex_cli.CodexInfo(
        Path("codex"), (0, 169, 0), "codex-cli 0.169.0"))
    return Path(os.environ["CODEX_HOME"])


# ------------------------------------------------------------------ 6. valid files are edited, not refused


def test_top_level_dotted_feature_key_is_removed_for_a_hosted_url(cli, home: Path) -> None:
    config = home / "config.toml"
    config.write_text('model = "gpt-5"\nfeatures.unbounded_connection_retries = true\n\n[tui]\ntheme = "dark"\n')
    result = cli("configure", *CTX, "--base-url", "https://gateway.example.com/v1", "--default")
    assert result.code == 0, result.stderr
    data = load_toml(config.read_text())
    assert "features" not in data and data["tui"] == {"theme": "dark"}
    assert '[tui]\ntheme = "dark"\n' in config.read_text()


def test_utf8_bom_is_kept_and_named_when_the_file_is_broken(cli, home: Path) -> None:
    config = home / "config.toml"
    config.write_bytes(b'\xef\xbb\xbf# mine\nmodel = "gpt-5"\n')
    assert cli("configure", *CTX, "--default").code == 0
    raw = config.read_bytes()
    assert raw.startswith(b'\xef\xbb\xbf# mine\n') and raw.count(b"\xef\xbb\xbf") == 1
    assert load_toml(raw.decode())["model"] == "qwen3-coder:30b"
    broken = b'\xef\xbb\xbfmodel = = "x"\n'
    config.write_bytes(broken)
    result = cli("configure", *CTX, "--default")
    assert result.code == 5 and "byte-order mark" in result.stderr
    assert config.read_bytes() == broken


# ------------------------------------------------------------------ 8. large files, time proportional


def test_big_config_is_not_handed_to_the_slow_editor_whole(cli, home: Path, monkeypatch) -> None:
    """82 s for 40,000 [projects] tables: tomlkit parsed (and re-rendered) all of it, several times. Now only
    the part before the first table and the tables under the edited keys are; the rest stays text."""
    import tomlkit

    parts = ['model = "gpt-5"\n'] + [f'\n[projects."/src/p{i:05d}"]\ntrust_level = "trusted"\n' for i in range(3000)]
    parts.insert(1500, '\n[model_providers.mine]\nname = "mine"\nbase_url = "http://10.0.0.2:8080/v1"\n')
    text = "".join(parts)
    (home / "config.toml").write_text(text)
    parsed: list[int] = []
    real = tomlkit.parse
    monkeypatch.setattr(tomlkit, "parse", lambda s: parsed.append(len(s)) or real(s))
    assert cli("configure", *CTX, "--default").code == 0
    assert parsed and max(parsed) < len(text) // 20
    new = (home / "config.toml").read_text()
    data = load_toml(new)
    assert len(data["projects"]) == 3000 and set(data["model_providers"]) == {"mine", "local_ollama"}
    for part in parts[1:]:
        assert part.strip() in new


# ------------------------------------------------------------------ 2. concurrent runs lose nothing

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX processes")
def test_writers_with_separate_data_folders_exclude_each_other(home: Path, tmp_path: Path) -> None:
    """The lock used to live in LOCALCODEX_HOME: runs with different data folders lost tables."""
    import subprocess

    (home / "config.toml").write_text("# shared\n")
    procs = []
    for i in range(4):
        env = {**os.environ, "PYTHONPATH": str(REPO), "LOCALCODEX_HOME": str(tmp_path / f"data{i}")}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "localcodex", "configure", "--model", f"m{i}:1b", "--context", "8192",
             "--profile", f"p{i}", "--provider-id", f"prov{i}", "--default"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert set(load_toml((home / "config.toml").read_text())["model_providers"]) == {f"prov{i}" for i in range(4)}
    assert sorted(p.name for p in home.iterdir()) == ["config.toml", *(f"p{i}.config.toml" for i in range(4))]


def test_stale_temp_sweep_keeps_files_of_live_writers(tmp_path: Path) -> None:
    import subprocess

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "config.toml"
    live = tmp_path / f".config.toml{codex_write.TEMP_MARK}{os.getppid()}-1"
    gone = tmp_path / f".config.toml{codex_write.TEMP_MARK}{dead.pid}-2"
    live.write_text("another writer's half-written file")
    gone.write_text("left by a killed writer")
    codex_write.write_atomic(target, "x = 1\n")
    assert live.exists() and not gone.exists() and target.read_text() == "x = 1\n"


# ------------------------------------------------------------------ 3. a kill between two files


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing in localcodex catches it, so no clean-up code runs."""


def _die_before_writing(monkeypatch, name: str) -> None:
    def crash(tmp: Path, path: Path) -> None:
        if path.name == name:
            raise _Killed

    monkeypatch.setattr(codex_write, "_before_replace", crash)


def test_kill_between_profile_and_config_then_restore_undoes_exactly_that(cli, home: Path, monkeypatch) -> None:
    original = '# mine\nmodel = "gpt-5"\n'
    (home / "config.toml").write_text(original)
    _die_before_writing(monkeypatch, "config.toml")
    with pytest.raises(_Killed):
        cli("configure", *CTX, "--default")
    monkeypatch.setattr(codex_write, "_before_replace", lambda tmp, path: None)
    result = cli("configure", "--restore")
    assert result.code == 0, result.stderr
    assert (home / "config.toml").read_text() == original
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]


def test_kill_between_profile_and_config_is_finished_by_the_next_run(cli, home: Path, monkeypatch) -> None:
    (home / "config.toml").write_text('model = "gpt-5"\n')
    _die_before_writing(monkeypatch, "config.toml")
    with pytest.raises(_Killed):
        cli("configure", *CTX, "--default")
    assert load_toml((home / "config.toml").read_text())["model"] == "gpt-5"  # out of step for now
    monkeypatch.setattr(codex_write, "_before_replace", lambda tmp, path: None)
    result = cli("configure", *CTX, "--profile", "other")  # any run that locks the folder finishes it
    assert result.code == 0 and "interrupted localcodex run" in result.stderr
    assert load_toml((home / "config.toml").read_text())["model"] == "qwen3-coder:30b"
    assert load_toml((home / "local_ollama.config.toml").read_text())["model"] == "qwen3-coder:30b"
    assert codex_changes.JOURNAL_NAME not in {p.name for p in home.iterdir()}


# ------------------------------------------------------------------ 7. read-only files


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX modes")
def test_read_only_config_is_refused_unless_forced(cli, home: Path) -> None:
    config = home / "config.toml"
    config.write_text('model = "gpt-5"\n')
    config.chmod(0o444)
    result = cli("configure", *CTX, "--default")
    assert result.code == 5 and "read-only" in result.stderr and "--force" in result.stderr
    assert config.read_text() == 'model = "gpt-5"\n' and not (home / "local_ollama.config.toml").exists()
    assert cli("configure", *CTX, "--default", "--force").code == 0
    assert load_toml(config.read_text())["model"] == "qwen3-coder:30b"
    assert stat.S_IMODE(config.stat().st_mode) == 0o444


# ------------------------------------------------------------------ 1. files and folders are private


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX modes")
def test_everything_localcodex_creates_is_private(cli, home: Path, tmp_path: Path) -> None:
    from localcodex.adapters.files import write_text_atomic
    from localcodex.adapters.receipts import ReceiptStore

    old = os.umask(0o022)
    try:
        data = tmp_path / "fresh" / "data"
        with ReceiptStore(data / "receipts.sqlite3") as store:
            assert store.schema_version() >= 1
        write_text_atomic(data / "state" / "setup.json", "{}")
        assert cli("configure", *CTX).code == 0
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(data / "receipts.sqlite3") == 0o600
    assert [mode(p) for p in (tmp_path / "fresh", data, data / "state")] == [0o700] * 3
    assert mode(data / "state" / "setup.json") == 0o600
    lc = Path(os.environ["LOCALCODEX_HOME"])
    assert mode(lc) == 0o700 and mode(lc / "backups") == 0o700
    assert mode(home / "local_ollama.config.toml") == 0o600


def test_codex_home_that_is_a_file_is_a_clear_error(cli, home: Path, tmp_path: Path, monkeypatch) -> None:
    plain = tmp_path / "not-a-folder"
    plain.write_text("x")
    monkeypatch.setenv("CODEX_HOME", str(plain))
    result = cli("configure", *CTX)
    assert result.code == 5 and "is a file, not a folder" in result.stderr and "internal error" not in result.stderr


# ------------------------------------------------------------------ 4. nothing hangs: total deadlines


@pytest.fixture
def trickle():
    """HTTP 200, then one byte every 50 ms, forever (tests/fault_server.py)."""
    from fault_server import FaultServer

    with FaultServer("trickle", interval=0.05) as server:
        yield server


def test_a_trickling_stream_ends_at_its_total_deadline(trickle) -> None:
    from localcodex.adapters.ollama import OllamaServer
    from localcodex.errors import StepTimeout

    server = OllamaServer(trickle.url, timeout=30.0)
    with pytest.raises(StepTimeout) as caught, server.deadline(0.5, "pulling qwen3:0.6b"):
        list(server.pull("qwen3:0.6b"))
    assert "pulling qwen3:0.6b" in caught.value.message and "0.5 s" in caught.value.message
    with pytest.raises(StepTimeout), server.deadline(0.5, "asking the version"):
        server.version()


def test_bench_timeout_bounds_the_warm_up_and_exits_10(cli, emulator_factory) -> None:
    from emulator import Fault, preset_models

    from localcodex.errors import ExitCode

    emu = emulator_factory(installed=[next(m for m in preset_models() if m.name == "llama3.2:3b")])
    emu.inject(Fault("stall", path="/api/generate", seconds=60.0, times=None))
    result = cli("bench", "llama3.2:3b", "--host", emu.url, "--timeout", "1", "--prompt-tokens", "short")
    assert result.code == ExitCode.TIMEOUT, result.output
    assert "warmup" in result.stderr and "1 s" in result.stderr


def test_pull_has_a_total_limit(cli, trickle) -> None:
    result = cli("pull", "qwen3:0.6b", "--host", trickle.url, "--timeout", "1")
    assert result.code == 10 and "pulling qwen3:0.6b" in result.stderr and "1 s limit" in result.stderr


def test_setup_steps_have_total_limits(monkeypatch, trickle) -> None:
    from localcodex.core import setup as setup_mod
    from localcodex.core.setup import run as setup_run

    monkeypatch.setattr(setup_run, "STEP_LIMITS", dict.fromkeys(setup_run.STEP_LIMITS, 1.0))
    from localcodex.wiring import live

    report = setup_mod.setup(setup_mod.SetupRequest(host=trickle.url, model="qwen3:0.6b"), live(trickle.url))
    # ends: no hang
    failed = report.failed
    # the server never answered in time: Ollama counts as unreachable (exit 3), not "no such model" (4)
    assert failed is not None and failed.exit_code == 3 and "Ollama is not running" in failed.summary


def test_setup_against_a_silent_server_says_it_is_not_answering(cli) -> None:
    """A server that accepts the connection and never answers is running: the message must not send the user off
    to install Ollama as if nothing listened there."""
    from fault_server import FaultServer

    with FaultServer("stall") as server:
        result = cli("setup", "--model", "qwen3:0.6b", "--host", server.url, "--yes")
    assert result.code == 3, result.output
    assert "is not answering at" in result.stderr and "is not running" not in result.stderr


# ------------------------------------------------------------------ 5 and 7. values Codex cannot load, bad names


@pytest.mark.parametrize("args, needle", [
    (["--idle-timeout", "-1"], "--idle-timeout"),
    (["--context", "1000000000000"], "--context"),
    (["--model", "bad name"], "invalid model name"),
    (["--model", "../../etc/passwd"], "invalid model name"),
    (["--model", "x" * 5000], "invalid model name"),
])
def test_values_codex_cannot_load_are_refused_up_front(cli, home: Path, args: list[str], needle: str) -> None:
    base = {"--model": "qwen3-coder:30b", "--context": "32768"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    result = cli("configure", *[x for kv in base.items() for x in kv])
    assert result.code == 2 and needle in result.stderr
    assert len([x for x in result.stderr.splitlines() if x.startswith("error:")]) == 1
    assert list(home.iterdir()) == []


def test_bench_refuses_a_bad_model_name_before_any_request(cli, dead_url) -> None:
    result = cli("bench", "bad name", "--host", dead_url)
    assert result.code == 2 and "invalid model name" in result.stderr


def test_check_against_an_unreachable_ollama_exits_3(cli, dead_url) -> None:
    result = cli("check", "--model", "qwen3:0.6b", "--host", dead_url)
    assert result.code == 3, result.output


@pytest.mark.parametrize("args", [["models", "import", "missing.gguf", "--name", "x"],
                                  ["models", "import-bundle", "missing.lcbundle"]])
def test_a_missing_file_exits_4(cli, tmp_path: Path, args: list[str], dead_url) -> None:
    args = [str(tmp_path / a) if a.startswith("missing") else a for a in args]
    result = cli(*args, "--host", dead_url)
    assert result.code == 4 and "does not exist" in result.stderr


def test_an_empty_base_url_is_refused_not_replaced_by_ollama(cli, home: Path) -> None:
    result = cli("configure", *CTX, "--base-url", "")
    assert result.code == 2 and "--base-url is empty" in result.stderr
    assert list(home.iterdir()) == []


# ------------------------------------------------------------------ 1. no secret reaches a file or the terminal

PASSWORD = "s3cr3tPW"
KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c"


@pytest.mark.parametrize("args", [
    ["--base-url", f"http://alice:{PASSWORD}@127.0.0.1:8080/v1"],
    ["--base-url", f"http://127.0.0.1:8080/v1?api_key={KEY}"],
    ["--header", f"X-Custom=Bearer {KEY}"],
    ["--base-url", "http://127.0.0.1:8080/v1", "--header", f"X-Custom={KEY}"],
])
def test_credentials_are_refused_and_never_echoed(cli, home: Path, args: list[str]) -> None:
    if "--base-url" not in args:
        args = [*args, "--base-url", "http://127.0.0.1:8080/v1"]
    result = cli("configure", *CTX, *args, "--default")
    assert result.code == 2, result.output
    assert PASSWORD not in result.output and KEY not in result.output
    assert "--env-key" in result.stderr or "--env-header" in result.stderr
    assert list(home.iterdir()) == []


def test_provider_template_value_that_is_a_secret_is_refused(cli, home: Path) -> None:
    result = cli("provider", "add", "company-gateway", "--set", f"team={KEY}", "--model", "m", "--context", "32768")
    assert result.code == 2 and KEY not in result.output
    assert list(home.iterdir()) == []


def test_bench_refuses_a_url_with_credentials_and_receipts_never_hold_one(cli, tmp_path: Path) -> None:
    from localcodex.adapters.receipts import ReceiptStore
    from localcodex.domain.fingerprint import Fingerprint

    result = cli("bench", "m", "--base-url", f"http://alice:{PASSWORD}@127.0.0.1:9/v1")
    assert result.code == 2 and PASSWORD not in result.output
    with ReceiptStore(tmp_path / "r.sqlite3") as store:
        fp = Fingerprint("abc", "test machine", {})
        sid = store.begin_session("bench", fp, endpoint=f"http://bob:{PASSWORD}@10.0.0.2:8080/v1?token={KEY}")
        store.finish_session(sid, "ok")
        endpoint = store.sessions()[0].endpoint
    assert PASSWORD not in endpoint and KEY not in endpoint and "10.0.0.2:8080/v1" in endpoint


@pytest.mark.parametrize("url, needle", [
    ("http://[::1:8080/v1", "not a valid URL"),
    ("http://127.0.0.1:99999/v1", "port"),
    ("http://127.0.0.1:8080/v1/v1", "/v1"),
    ("http://gpu box:8080/v1", "space"),
    ("http://gpu\nbox:8080/v1", "space"),
])
def test_base_urls_codex_cannot_use_are_refused(cli, home: Path, url: str, needle: str) -> None:
    result = cli("configure", *CTX, "--base-url", url)
    assert result.code == 2 and needle in result.stderr and "internal error" not in result.stderr
    assert len([x for x in result.stderr.splitlines() if x.startswith("error:")]) == 1
    assert list(home.iterdir()) == []


# ------------------------------------------------------ 4 (continued). total deadlines: check, doctor, models
# A stalled server accepts the connection and never answers; a trickling one answers HTTP 200 and then sends
# one byte every 50 ms. Both are held (tests/fault_server.py) for the whole test. Every command must end with
# exit 10 naming the step and its limit; no timing is asserted, only that it ended and what it said.


@pytest.fixture(params=["stall", "trickle"])
def fault(request):
    from fault_server import FaultServer

    with FaultServer(request.param, interval=0.05) as server:
        yield server


def test_check_against_a_stuck_server_exits_10_naming_the_probe_and_limit(cli, fault) -> None:
    result = cli("check", "--model", "m", "--host", fault.url, "--timeout", "1", "--json")
    assert result.code == 10, result.output
    error = result.json()["errors"][0]
    assert error["code"] == "timeout" and "check: Reachable" in error["message"] and "1 s limit" in error["message"]
    reach = next(p for p in result.json()["data"]["probes"] if p["name"] == "reachable")
    assert reach["status"] == "fail" and reach["data"]["time_limit_s"] == 1


def test_check_base_url_against_a_stuck_server_exits_10(cli, fault) -> None:
    result = cli("check", "--model", "m", "--base-url", fault.url + "/v1", "--timeout", "1")
    assert result.code == 10 and "Reachable: not finished within its 1 s limit" in result.stderr


def test_doctor_against_a_stuck_ollama_exits_10_naming_the_probe(cli, home: Path, fault) -> None:
    result = cli("doctor", "--host", fault.url, "--timeout", "1", "--json")
    assert result.code == 10, result.output
    stuck = [e for e in result.json()["errors"] if e["code"] == "doctor.probe-timeout"]
    assert stuck and f"asking {fault.url} for its version" in stuck[0]["message"]
    assert "1 s limit" in stuck[0]["message"]


def test_doctor_against_a_stuck_provider_exits_10(cli, home: Path, fault) -> None:
    (home / "config.toml").write_text(
        'model = "m"\nmodel_provider = "box"\n\n[model_providers.box]\nname = "box"\n'
        f'base_url = "{fault.url}/v1"\nwire_api = "responses"\n')
    result = cli("doctor", "--host", fault.url, "--timeout", "1", "--json")
    assert result.code == 10, result.output
    stuck = [e["message"] for e in result.json()["errors"] if e["code"] == "doctor.probe-timeout"]
    assert any("probe Reachable" in m and "1 s limit" in m for m in stuck), stuck


def test_models_context_against_a_stuck_server_exits_10(cli, fault) -> None:
    result = cli("models", "context", "tiny-coder:1b", "--ctx", "8192", "--host", fault.url, "--timeout", "1")
    assert result.code == 10 and "models context tiny-coder:1b" in result.stderr and "1 s limit" in result.stderr


def test_models_import_against_a_stuck_server_exits_10(cli, tmp_path: Path, fault) -> None:
    from test_gguf import write_gguf

    gguf = write_gguf(tmp_path / "tiny.gguf")
    result = cli("models", "import", str(gguf), "--name", "tiny:1", "--host", fault.url, "--timeout", "1")
    assert result.code == 10 and "importing tiny:1" in result.stderr and "1 s limit" in result.stderr


def test_models_import_bundle_against_a_stuck_server_exits_10(cli, tmp_path: Path, emulator_factory, fault) -> None:
    from emulator import preset_models

    tiny = next(m for m in preset_models() if m.name == "tiny-coder:1b")
    source = emulator_factory(installed=[tiny], models_dir=tmp_path / "store")
    bundle = tmp_path / "tiny.tar"
    assert cli("models", "export", tiny.name, "--to", str(bundle), "--models-dir", str(source.models_dir)).code == 0
    result = cli("models", "import-bundle", str(bundle), "--host", fault.url, "--timeout", "1")
    assert result.code == 10 and "importing tiny.tar" in result.stderr and "1 s limit" in result.stderr


class _Reachable:
    """An OllamaServer on a stuck socket that knows its answers to the quick questions, so an import gets as far
    as the upload or the create (what the test is about)."""

    @staticmethod
    def at(url: str, *, blob_there: bool):
        from localcodex.adapters.ollama import OllamaServer

        class Server(OllamaServer):
            def find(self, model: str):
                return None

            def has_blob(self, digest: str) -> bool:
                return blob_there

        return Server(url, timeout=30.0)


@pytest.mark.parametrize("blob_there, step", [(False, "uploading tiny.gguf"), (True, "creating tiny:1")])
def test_an_import_upload_and_create_have_their_own_total_limits(tmp_path: Path, monkeypatch, fault, blob_there,
                                                                  step) -> None:
    """Without --timeout, the upload and the create still end: each step has a total limit (per-read timeouts
    of 30 s never fire on a trickle)."""
    from test_gguf import write_gguf

    from localcodex.core.transfer import run as transfer
    from localcodex.errors import StepTimeout

    monkeypatch.setattr(transfer, "transfer_limit", lambda size: 0.5)
    monkeypatch.setattr(transfer, "CREATE_LIMIT", 0.5)
    gguf = write_gguf(tmp_path / "tiny.gguf")
    with pytest.raises(StepTimeout) as caught:
        transfer.import_gguf(_Reachable.at(fault.url, blob_there=blob_there), gguf, "tiny:1")
    assert step in caught.value.message and "0.5 s limit" in caught.value.message


def test_variant_create_has_a_total_limit(emulator_factory, monkeypatch) -> None:
    from emulator import Fault, preset_models

    from localcodex.adapters.ollama import OllamaServer
    from localcodex.core import variant
    from localcodex.errors import StepTimeout

    emu = emulator_factory(installed=[next(m for m in preset_models() if m.name == "tiny-coder:1b")])
    emu.inject(Fault("stall", path="/api/create", seconds=60.0, times=None))
    monkeypatch.setattr(variant, "CREATE_LIMIT", 0.5)
    try:
        with pytest.raises(StepTimeout) as caught:
            variant.ensure_variant(OllamaServer(emu.url, timeout=30.0), "tiny-coder:1b", 8192)
    finally:
        emu.clear_faults()
    assert "creating tiny-coder:1b-ctx8k" in caught.value.message and "0.5 s limit" in caught.value.message


# ------------------------------------------------------------------ 1. no secret reaches the terminal, any command

PROJ_KEY = "sk-proj-4f9a8b7c6d5e4f3a2b1c"
USERINFO_URL = f"http://alice:{PASSWORD}@127.0.0.1:8080/v1"


@pytest.mark.parametrize("args", [
    ["configure", *CTX, "--base-url", USERINFO_URL, "--default"],
    ["configure", *CTX, "--base-url", "http://127.0.0.1:8080/v1", "--header", f"X-Custom=Bearer {PROJ_KEY}"],
    ["configure", *CTX, "--header", f"Bearer {PROJ_KEY}"],  # the name forgotten: the value is not echoed
    ["configure", *CTX, "--env-key", PROJ_KEY],
    ["configure", *CTX, "--env-header", f"X-Api-Key={PROJ_KEY}"],
    ["provider", "add", "company-gateway", "--base-url", USERINFO_URL, "--set", "team=core", *CTX],
    ["provider", "add", "company-gateway", "--set", f"base_url=http://127.0.0.1:8080/v1?api_key={PROJ_KEY}",
     "--set", "team=core", *CTX],
    ["provider", "add", "llama-cpp", "--base-url", f"http://127.0.0.1:8080/v1?key={PROJ_KEY}", *CTX],
    ["check", "--model", "m", "--base-url", USERINFO_URL],
    ["check", "--model", "m", "--base-url", f"http://127.0.0.1:8080/v1?token={PROJ_KEY}", "--json"],
    ["bench", "m", "--base-url", f"http://127.0.0.1:8080/v1?api_key={PROJ_KEY}"],
])
def test_no_command_echoes_a_credential_it_was_given(cli, home: Path, args: list[str]) -> None:
    result = cli(*args)
    assert result.code == 2, result.output
    assert PASSWORD not in result.output and PROJ_KEY not in result.output and PROJ_KEY[8:20] not in result.output
    assert list(home.iterdir()) == []


def test_doctor_and_receipts_export_never_show_a_credential_from_a_file(cli, home: Path, tmp_path: Path) -> None:
    from localcodex.adapters.receipts import ReceiptStore
    from localcodex.domain.fingerprint import Fingerprint
    from localcodex.paths import receipts_db

    (home / "config.toml").write_text(
        f'model = "m"\nmodel_provider = "gw"\n[model_providers.gw]\nname = "gw"\n'
        f'base_url = "{USERINFO_URL}?key={KEY}"\nhttp_headers = {{ "X-Custom" = "Bearer {PROJ_KEY}" }}\n'
        f'query_params = {{ api_key = "{KEY}" }}\n')
    with ReceiptStore(receipts_db()) as store:
        sid = store.begin_session("bench", Fingerprint("abc", "test", {}), endpoint=f"{USERINFO_URL}?key={KEY}")
        store.finish_session(sid, "ok")
    outputs = [cli("doctor").output, cli("doctor", "--json").output, cli("receipts", "list").output,
               cli("receipts", "export").output, cli("receipts", "list", "--json").output]
    for text in outputs:
        assert PASSWORD not in text and KEY not in text and PROJ_KEY not in text
    assert "127.0.0.1:8080/v1" in outputs[2] and "secret-in-config" in outputs[0]
