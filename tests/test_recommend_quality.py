"""`recommend` and what a Codex user would notice: tool calls that arrive as text, an honest verdict, a stable pick."""

from __future__ import annotations

import dataclasses

import pytest
from emulator import preset_models
from machines import MACHINES, load_machine

from localcodex.adapters.ollama import OllamaServer
from localcodex.core.recommend.rank import RecommendRequest, recommend
from localcodex.core.recommend.speed import RamBandwidth
from localcodex.domain.catalog import load_catalog, parse_catalog

GiB = 1024**3
CAT = load_catalog()
RAM_BW = RamBandwidth(40e9, "test: 40 GB/s")
PRESETS = {m.name: m for m in preset_models()}


def run(machine, **kw):
    return recommend(RecommendRequest(machine, ram_bandwidth=RAM_BW, **kw))


# -- 1. tool calls as text ---------------------------------------------------------------------------------


def test_the_catalog_marks_qwen25_coder_as_text_tool_calls_with_a_source():
    marked = [m for m in CAT if m.tool_calls_as_text]
    assert {m.tag for m in marked} >= {f"qwen2.5-coder:{s}" for s in ("1.5b", "3b", "7b", "14b", "32b")}
    for m in marked:
        assert "tools" in m.capabilities  # Ollama lists it: that is exactly the trap
        assert "github.com" in m.tool_calls_source or "#" in m.tool_calls_source
    assert not CAT.get("qwen3-coder:30b").tool_calls_as_text


def test_a_text_tool_call_entry_without_a_source_is_rejected():
    import re

    from localcodex.domain.catalog import CatalogError

    text = (CAT_TEXT := _catalog_text())
    broken = re.sub(r'tool_calls_source = ".*"\n', "", text, count=1)
    assert broken != CAT_TEXT
    with pytest.raises(CatalogError, match="tool_calls_source"):
        parse_catalog(broken)


def _catalog_text() -> str:
    from importlib.resources import files

    return files("localcodex").joinpath("data").joinpath("catalog.toml").read_text()


@pytest.mark.parametrize("name", MACHINES)
def test_text_tool_call_models_are_never_picked_nor_ranked(name):
    result = run(load_machine(name), include_all=True)
    if result.pick is not None:
        assert not result.pick.model.startswith("qwen2.5-coder")
    coder = [c for c in result.candidates if c.model.startswith("qwen2.5-coder")]
    assert coder and all(not c.offered and c.rank is None for c in coder)
    assert all("as text" in c.excluded for c in coder)
    assert all(any("12174" in line for line in c.why) for c in coder)  # --all says who saw it


def test_an_installed_qwen25_coder_variant_unknown_to_the_catalog_is_marked_too(emulator_factory):
    odd = dataclasses.replace(PRESETS["qwen2.5-coder:7b"], name="qwen2.5-coder:7b-instruct-q8_0")
    emu = emulator_factory(installed=[odd])
    result = run(load_machine("rtx4090"), server=OllamaServer(emu.url), include_all=True)
    found = next(c for c in result.candidates if c.model == "qwen2.5-coder:7b-instruct-q8_0")
    assert found.installed and not found.offered and "as text" in found.excluded


def test_cli_all_shows_why(cli, dead_url):
    result = cli("recommend", "--all", "--host", dead_url, "--gpu", "none", "--ram", "32GiB", "--json")
    rows = {c["model"]: c for c in result.json()["data"]["candidates"]}
    assert "as text" in rows["qwen2.5-coder:7b"]["excluded"]
    assert rows["qwen2.5-coder:7b"]["rank"] is None
