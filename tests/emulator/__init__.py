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

Where real Ollama is strict, so is the emulator (``shared/reference/ollama-corrections.md`` 1-10, tested in
``tests/test_emulator_real.py``): ``developer`` messages vanish on models whose template does not render them
(``FakeModel.renders_developer``, by architecture by default: qwen3.5, gemma4 and gpt-oss keep them);
``/api/ps`` names the model that first loaded a runner (runners are keyed by weights); an error after a
``/v1`` stream started ends it without a terminator (chat: one empty chunk; Responses: nothing); a
non-local ``Host`` header gets 403 with an empty body; overflow is a 400 for ``native_template=True``
models and ``context_shift=False`` ones; ``/api/show`` ``parameters`` are Go floats in random order;
non-canonical paths (``//v1``, ``/./``) get 301; GGUF creates validate, convert into a new layer and take
capabilities from the file's chat template; old ``-partial`` / non-digest blob files are pruned at
start-up; unknown Responses items/content types and malformed blob digests are 400s.
"""

from .faults import Fault
from .httpbase import RecordedRequest
from .models import FakeModel, preset_models
from .responder import Reply, ResponderRequest
from .server import Emulator
from .tokens import count_text, prompt_tokens

__all__ = ["Emulator", "FakeModel", "Fault", "RecordedRequest", "Reply", "ResponderRequest",
           "count_text", "preset_models", "prompt_tokens"]
