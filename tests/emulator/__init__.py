"""An Ollama API emulator for tests: a real HTTP server on 127.0.0.1.

It speaks Ollama's native API and its OpenAI-compatible layer (``/v1``) as described in
``shared/reference/ollama-api.md``, keeps models in an on-disk store laid out like
Ollama's, generates tokens on a known schedule, and injects faults on request::

    from emulator import Emulator, FakeModel, Fault, Reply, preset_models

    with Emulator(models_dir=tmp_path / "models", installed=[preset_models()[0]]) as emu:
        ollama.Client(emu.url).chat(model="qwen3.5:27b", messages=[...])
        emu.inject(Fault("reset", path="/api/chat", after=2))

Modules: ``server`` (Emulator), ``models`` (FakeModel, presets), ``store`` (disk layout),
``tokens`` (tokenizer and truncation rules), ``engine`` (timing), ``responder`` (answers),
``faults`` (fault kinds), ``native`` / ``generation`` / ``transfer`` (``/api``),
``openai_layer`` / ``responses`` (``/v1``), ``pytest_plugin`` (fixtures).
"""

from .faults import Fault
from .httpbase import RecordedRequest
from .models import FakeModel, preset_models
from .responder import Reply, ResponderRequest
from .server import Emulator
from .tokens import count_text, prompt_tokens

__all__ = ["Emulator", "FakeModel", "Fault", "RecordedRequest", "Reply", "ResponderRequest",
           "count_text", "preset_models", "prompt_tokens"]
