"""`localcodex detect`: the command on this machine, its options and its output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from localcodex.core.detect import RESERVE_GPU
from localcodex.domain.machine import OllamaState
from localcodex.domain.units import GiB
from localcodex.errors import ExitCode


def _meminfo_total() -> int:
    text = Path("/proc/meminfo").read_text()
    return int(re.search(r"^MemTotal:\s+(\d+) kB", text, re.M).group(1)) * 1024


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_detect_json_as_a_real_process(cli_process, tmp_path):
    result = cli_process("detect", "--json", env={"OLLAMA_MODELS": str(tmp_path / "models")})
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["command"] == "detect" and doc["status"] == "ok" and doc["errors"] == []
    data = doc["data"]
    assert abs(data["ram_total"] - _meminfo_total()) <= 0.01 * _meminfo_total()
    assert data["disk"]["path"] == str(tmp_path / "models")
    assert "RAM:" in data["budget"]["explanation"]
    assert data["remote"] is False and data["ollama"]["reachable"] is False


def test_detect_human_output(cli):
    result = cli("detect")
    assert result.code == 0, result.output
    assert result.stderr == ""
    for label in ("System", "CPU", "RAM", "Disk", "Ollama", "Budget"):
        assert label in result.stdout


def test_vram_override_in_json(cli):
    doc = cli("detect", "--json", "--vram", "24GiB").json()
    assert doc["status"] == "ok"
    data = doc["data"]
    assert data["overrides"] == ["vram=24.0 GiB per GPU (--vram)"]
    used = [g for g in data["gpus"] if g["used_by_ollama"]]
    assert used and all(g["memory_total"] == 24 * GiB for g in used)
    assert data["budget"]["gpu"] == [24 * GiB - RESERVE_GPU] * len(used)


def test_override_marked_in_human_output(cli):
    result = cli("detect", "--ram", "8G", "--gpu", "none")
    assert result.code == 0
    assert "[override]" in result.stdout and "Overrides" in result.stdout
    assert "gpu=none (--gpu none)" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("--vram", "lots"), ("--ram", "-4G"), ("--gpu", "all"), ("--vram", "8G", "--gpu", "none")],
)
def test_bad_options_are_usage_errors(cli, args):
    result = cli("detect", "--json", *args)
    assert result.code == ExitCode.USAGE
    doc = result.json()
    assert doc["status"] == "error" and doc["errors"][0]["code"] == "usage"


def test_remote_host_says_what_cannot_be_known(cli, monkeypatch):
    # no network in tests: the server's answer is stubbed, the host is never contacted
    import localcodex.core.detect as core

    monkeypatch.setattr(
        core, "_ollama", lambda host, timeout: OllamaState(host.native, False, error="not reachable (stub)")
    )
    doc = cli("detect", "--json", "--host", "http://gpu-box.lan:11434").json()
    data = doc["data"]
    assert data["remote"] is True and data["gpus"] == [] and data["ram_total"] == 0
    assert "remote" in data["budget"]["explanation"]
    human = cli("detect", "--host", "gpu-box.lan").stdout
    assert "remote Ollama host" in human
