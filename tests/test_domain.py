"""The pure rules of localcodex.domain, and the cases where copies of a rule used to disagree."""

from __future__ import annotations

import pytest

from localcodex.domain import urls
from localcodex.domain.urls import BaseUrlMistake, Locality, locality, repair_base_url

# -- locality ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "where"), [
    ("http://127.0.0.1:11434/v1", Locality.LOOPBACK),
    ("http://127.0.0.2:11434", Locality.LOOPBACK),
    ("http://localhost:8080/v1", Locality.LOOPBACK),
    ("http://[::1]:11434", Locality.LOOPBACK),
    ("http://0.0.0.0:11434", Locality.LOOPBACK),
    ("http://192.168.1.20:8080/v1", Locality.PRIVATE),
    ("http://10.1.2.3:11434", Locality.PRIVATE),
    ("http://172.16.0.9:11434", Locality.PRIVATE),
    ("http://172.31.255.1:11434", Locality.PRIVATE),
    ("http://[fe80::1]:11434", Locality.PRIVATE),
    ("http://[fc00::1]:11434", Locality.PRIVATE),
    ("http://gpu-box.local:11434", Locality.PRIVATE),
    ("http://172.32.0.1:11434", Locality.PUBLIC),
    ("https://openrouter.ai/api/v1", Locality.PUBLIC),
    ("not a url at all", Locality.PUBLIC),
])
def test_locality_names_loopback_private_and_public_apart(url: str, where: Locality) -> None:
    assert locality(url) is where


def test_a_lan_server_is_local_network_for_configure_but_not_this_machine_for_bench_trial_and_hosts() -> None:
    """Disagreement: configure.is_local_url counted 192.168.x as local, bench/trial/OllamaHost did not.

    Both were right for their question, now named apart: configure asks "will waiting help?" (no: fail-fast
    retries for a LAN box too); bench, trial, pull and detect ask "is it this machine?" (no for a LAN box).
    """
    from localcodex.core.bench.run import BenchRequest
    from localcodex.core.configure import is_local_url
    from localcodex.core.eval.attempt import is_local as receipt_is_local
    from localcodex.invocation import Invocation
    from localcodex.paths import ollama_host
    from localcodex.wiring import Live

    lan = "http://192.168.1.20:11434/v1"
    assert is_local_url(lan) is True
    assert receipt_is_local(lan) is False  # trial and eval receipts
    assert ollama_host("192.168.1.20", {}).is_local is False
    endpoint = Live(Invocation.build(env={})).bench_endpoint
    assert endpoint(BenchRequest(models=("m",), base_url=lan)).is_local is False
    assert endpoint(BenchRequest(models=("m",), base_url="http://127.0.0.1:8080/v1")).is_local is True
    assert is_local_url("https://openrouter.ai/api/v1") is False


# -- base URL repair --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "fixed", "mistake"), [
    ("http://localhost:11434/v1", "http://localhost:11434/v1", None),
    ("http://localhost:11434/v1/", "http://localhost:11434/v1", None),
    ("http://localhost:11434/v1/v1", "http://localhost:11434/v1", BaseUrlMistake.DOUBLED_V1),
    ("http://localhost:8080/v1/chat/completions", "http://localhost:8080/v1", BaseUrlMistake.ENDPOINT_PATH),
    ("http://localhost:11434", "http://localhost:11434/v1", BaseUrlMistake.OLLAMA_ROOT),
    ("http://gw.example", "http://gw.example/v1", BaseUrlMistake.MISSING_V1),
    ("localhost:11434", "http://localhost:11434/v1", BaseUrlMistake.NOT_A_URL),
    ("https://gw.example/ollama/v1", "https://gw.example/ollama/v1", None),
])
def test_repair_base_url(given: str, fixed: str, mistake: BaseUrlMistake | None) -> None:
    repair = repair_base_url(given)
    assert repair.fixed == fixed and repair.mistake is mistake
    assert repair.native == fixed.removesuffix("/v1")


def test_check_and_doctor_share_the_mistake_labels() -> None:
    """Disagreement: doctor said "endpoint path" / "missing /v1" where check said "endpoint path in base_url" /
    "Ollama port without /v1". check's labels are in its --json output, so they are the ones kept."""
    assert repair_base_url("http://h:1/v1/responses").mistake is urls.diagnose("http://h:1/v1/responses", False)
    assert repair_base_url("http://h:11434").mistake is urls.diagnose("http://h:11434", True)
    assert BaseUrlMistake.ENDPOINT_PATH.value == "endpoint path in base_url"


# -- versions ---------------------------------------------------------------------------------------------------


def test_one_version_parser() -> None:
    """Disagreement: check anchored at the start (so `codex-cli 0.169.0` was no version), fit padded `0.13`
    to (0, 13, 0) and read garbage as 0.0.0. Now: the first x.y.z anywhere, else None; fit still treats a
    server without a version as an old one."""
    from localcodex.core.recommend.fit import _version

    assert urls.parse_version("codex-cli 0.169.0") == (0, 169, 0)
    assert urls.parse_version("v0.33.0-rc2") == (0, 33, 0)
    assert urls.parse_version("0.13") is None
    assert _version("garbage") == (0, 0, 0) and _version("0.30.0-rc1") == (0, 30, 0)
    assert urls.supports_profile_files((0, 134, 0)) and not urls.supports_profile_files((0, 133, 9))


# -- model names ------------------------------------------------------------------------------------------------


def test_model_name_parts_base_and_variant() -> None:
    from localcodex.domain.names import ModelName, base_of, model_key, normalize_name, same_model

    name = ModelName.parse("hf.co/Org/Model-GGUF:Q4_K_M-ctx64k")
    assert (name.registry, name.namespace, name.model, name.tag) == ("hf.co", "Org", "Model-GGUF", "Q4_K_M-ctx64k")
    assert name.variant_ctx == 65536 and str(name.base) == "hf.co/Org/Model-GGUF:Q4_K_M"
    assert ModelName.parse("qwen3:8b").variant_ctx is None
    assert normalize_name("registry.ollama.ai/library/qwen3") == "qwen3:latest"
    assert base_of("qwen3.5:27b-ctx64k") == "qwen3.5:27b"
    assert model_key("Qwen3") == "qwen3:latest" and same_model("QWEN3", "qwen3:latest")
    with pytest.raises(Exception, match="invalid model name"):
        ModelName.parse("bad name")


def test_an_installed_mixed_case_name_keeps_its_spelling_for_the_profile() -> None:
    """Disagreement: catalog.normalize_tag lower-cased every name, so an installed `hf.co/Org/Model:Q4_K_M` was
    evaluated (and written to the profile) as `hf.co/org/model:q4_k_m`. Look-ups stay case-insensitive; the
    name a model is evaluated and written under keeps the installed spelling."""
    from localcodex.adapters.ollama import InstalledModel, ModelDetails
    from localcodex.core.recommend.live import from_show
    from localcodex.domain.catalog import load_catalog, normalize_tag

    installed = InstalledModel("hf.co/Org/Model-GGUF:Q4_K_M", 4 * 10**9, "0" * 64, "2026-01-01T00:00:00Z")
    details = ModelDetails("hf.co/Org/Model-GGUF:Q4_K_M", "llama", 7 * 10**9, 32768, None, ("completion",),
                           block_count=32, head_count=32, head_count_kv=8, embedding_length=4096)
    model, _ = from_show(installed, details)
    assert model is not None and model.tag == "hf.co/Org/Model-GGUF:Q4_K_M"
    assert normalize_tag("hf.co/Org/Model-GGUF:Q4_K_M") == "hf.co/org/model-gguf:q4_k_m"
    catalog = load_catalog()
    some = next(iter(catalog))
    assert catalog.get(some.tag.upper()) is not None


# -- units ------------------------------------------------------------------------------------------------------


def test_one_byte_formatter() -> None:
    """Disagreement: render's human_bytes printed 457 MiB as '457.0 MiB', domain's format_bytes as '457 MiB'
    and 1.5 KiB as '2 KiB'. One rule now, three significant figures, used by render too."""
    from localcodex.domain.units import GiB, MiB, format_bytes
    from localcodex.render.output import human_bytes

    for n in (512, 1536, 457 * MiB, 98_400_000, 17 * GiB, 7 * GiB + 200 * MiB):
        assert human_bytes(n) == format_bytes(n)
    assert format_bytes(457 * MiB) == "457 MiB" and format_bytes(1536) == "1.5 KiB"
    assert format_bytes(98_400_000, decimal=True) == "98.4 MB" and format_bytes(17 * GiB) == "17.0 GiB"


# -- Codex facts and config layering ----------------------------------------------------------------------------


def test_check_and_doctor_resolve_a_profile_through_the_same_deep_merge(tmp_path) -> None:
    """Disagreement: codex_config.read_profile merged [model_providers.<id>] shallowly, so a profile that set
    only `name` in a table config.toml defines lost the table's base_url for check and trial, while doctor
    (deep merge, as Codex does) kept it."""
    from localcodex.adapters.codex_config import read_profile
    from localcodex.adapters.codex_files import read_config
    from localcodex.core.doctor.types import ConfigFile, build_targets

    (tmp_path / "config.toml").write_text(
        '[model_providers.box]\nname = "Box"\nbase_url = "http://127.0.0.1:11434/v1"\nwire_api = "responses"\n')
    (tmp_path / "local.config.toml").write_text(
        'model = "qwen3:8b"\nmodel_provider = "box"\n[model_providers.box]\nname = "Box (profile)"\n')
    info = read_profile(tmp_path, "local")
    assert (info.model, info.provider, info.base_url) == ("qwen3:8b", "box", "http://127.0.0.1:11434/v1")
    files = [ConfigFile.from_parsed(read_config(tmp_path / "config.toml", "user")),
             ConfigFile.from_parsed(read_config(tmp_path / "local.config.toml", "profile", "local"))]
    target = next(t for t in build_targets(files) if t.profile == "local")
    assert target.merged["model_providers"]["box"]["base_url"] == info.base_url


def test_one_set_of_codex_facts_for_configure_and_doctor() -> None:
    """Disagreements: configure refused reserved ids case-insensitively (`OpenAI`), doctor matched them exactly.
    Both kept, named apart: Codex compares TOML keys exactly, so doctor reports a fatal error only for the exact
    ids (is_reserved_provider_id); configure still refuses to write an id that reads as a built-in one
    (is_confusable_with_built_in; test_configure pins `OpenAI`). Profile names:
    doctor accepted a leading '-' (read as a flag by `codex -p`) and any length, configure neither; configure's
    pattern is the one now (doctor no longer treats `-x.config.toml` as a profile). Secret headers: doctor knew
    six exact names, configure a pattern; the pattern wins, so doctor also flags e.g. X-Goog-Api-Key."""
    from localcodex.core.configure import validate_profile_name, validate_provider_id
    from localcodex.domain import codex
    from localcodex.errors import ConfigError, UsageError

    assert codex.is_reserved_provider_id("ollama") and not codex.is_reserved_provider_id("Ollama")
    with pytest.raises(ConfigError):
        validate_provider_id("Ollama")
    with pytest.raises(ConfigError):
        validate_provider_id("ollama")
    with pytest.raises(ConfigError):
        validate_provider_id("gcp")
    assert validate_profile_name("p" * 64) == "p" * 64
    with pytest.raises(UsageError):
        validate_profile_name("-x")
    assert not codex.PROFILE_NAME.match("-x")
    assert codex.looks_secret("AIzaSyExampleExampleExample", "X-Goog-Api-Key")
    assert codex.looks_secret("anything-at-all", "X-Goog-Api-Key")
    assert not codex.looks_secret("team-a", "X-Team-Id")
