"""The invocation is read once at the edge and carried down: steps see the environment they are given, never
the process's own (each test sets os.environ to something else, so a step that read it would fail)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from machines import load_machine

from localcodex.core.recommend.rank import recommend_here
from localcodex.invocation import Invocation
from localcodex.wiring import Live


def test_host_is_parsed_from_the_given_environment(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "10.9.9.9:1")
    inv = Invocation.build(env={"OLLAMA_HOST": "gpu-box.lan:8080"})
    assert inv.host.native == "http://gpu-box.lan:8080" and inv.host.source == "OLLAMA_HOST"
    assert Invocation.build("127.0.0.1:7", env={}).host.source == "--host"


def test_environment_is_a_frozen_copy():
    given = {"LOCALCODEX_HOME": "/somewhere"}
    inv = Invocation.build(env=given)
    given["LOCALCODEX_HOME"] = "/elsewhere"
    assert str(inv.data_dir) == "/somewhere"
    with pytest.raises(TypeError):
        inv.env["X"] = "1"  # type: ignore[index]


def test_adapters_live_where_the_invocation_says(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCODEX_HOME", str(tmp_path / "process"))
    live = Live(Invocation.build(env={"LOCALCODEX_HOME": str(tmp_path / "given")}))
    assert live.receipts().path == tmp_path / "given" / "receipts.sqlite3"
    state = live.setup_state()
    state.save("http://127.0.0.1:11434", {"model": "m"})
    assert state.path.parent == tmp_path / "given"
    assert live.setup_state().load("http://127.0.0.1:11434") == {"model": "m"}
    assert not (tmp_path / "process").exists()


@dataclass(frozen=True)
class OfflineLive(Live):
    """The real wiring, minus the probes a unit test must not run (RAM bandwidth) and with no receipts."""

    def ram_bandwidth(self, machine):
        return None


def test_recommend_reads_ollama_settings_from_the_invocation(monkeypatch):
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "q4_0")
    monkeypatch.setenv("OLLAMA_FLASH_ATTENTION", "1")
    machine = load_machine("rtx4090")
    env = {"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "1", "LOCALCODEX_HOME": os.devnull + "-none"}
    result = recommend_here(machine, OfflineLive(Invocation.build("127.0.0.1:9", env=env)))
    assert result.settings.kv_cache_type == "q8_0"
