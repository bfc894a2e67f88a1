"""localcodex against a real llama.cpp llama-server (SmolLM2-135M from PyPI), not an emulator.

The servers are shared by the whole session (tests/conftest.py: llama_8k, llama_16k) because prefill is slow on a
small CPU; the tests keep the number of Codex-sized prompts small. They skip when llama-server is not installed,
except in CI, where scripts/test installs it and a missing server fails the suite.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_server_states_its_context(llama_8k):
    props = llama_8k.get_json("/props")
    assert props["default_generation_settings"]["n_ctx"] == 8192
    models = llama_8k.get_json("/v1/models")
    assert [m["meta"]["n_ctx"] for m in models["data"]] == [8192]
    assert not llama_8k.is_processing()
