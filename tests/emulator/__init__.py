"""An Ollama API emulator for tests: a real HTTP server on 127.0.0.1 (standard library only).

It speaks Ollama's native API and its OpenAI-compatible layer as described in
``shared/reference/ollama-api.md``, keeps models in an on-disk store laid out like
Ollama's, generates tokens on a known schedule, and injects faults on request::

    from emulator import Emulator, FakeModel, Fault, Reply, preset_models

    with Emulator(models_dir=tmp_path / "models", installed=preset_models()[:1]) as emu:
        ollama.Client(host=emu.url).chat(model="qwen3.5:27b", messages=[...])
        emu.inject(Fault("reset", path="/api/chat", after=2))

``Emulator(models_dir=None, version="0.32.15", vram_bytes=0, registry=None, installed=(),
decode_rate=40.0, prompt_rate=2000.0, load_time=0.2, pull_rate=5e9, host="127.0.0.1",
port=0, context_length_env=None, keep_alive=300.0)``: ``registry`` = what ``/api/pull`` can
fetch (default :func:`preset_models`), ``installed`` = models written to the store at once
(also added to the registry). Then ``start()``/``stop()`` or ``with``; ``url``, ``port``,
``models_dir``, ``store``, ``requests`` (:class:`RecordedRequest`: ``method``, ``path``,
``query``, ``headers`` lower-case, ``body``, ``json``), ``inject(Fault)``, ``clear_faults()``,
``responder`` (``(ResponderRequest) -> Reply | str``), ``set_version()``, ``loaded`` (the
``/api/ps`` entries), ``install(model)``, ``add_to_registry(model)``.

Where the rules live: ``tokens`` (tokenizer, truncation), ``engine`` (timing), ``runtime``
(num_ctx, memory, keep-alive), ``responder`` (default answers), ``faults`` (fault kinds),
``store`` / ``models`` (disk layout, presets), ``native`` / ``generation`` / ``transfer``
(``/api``), ``openai_layer`` / ``responses`` (``/v1``), ``pytest_plugin`` (fixtures
``emulator``, ``emulator_factory``, ``dead_url``). ``scripts/ollama-emulator`` runs it by hand.
"""

from .faults import Fault
from .httpbase import RecordedRequest
from .models import FakeModel, preset_models
from .responder import Reply, ResponderRequest
from .server import Emulator
from .tokens import count_text, prompt_tokens

__all__ = ["Emulator", "FakeModel", "Fault", "RecordedRequest", "Reply", "ResponderRequest",
           "count_text", "preset_models", "prompt_tokens"]
