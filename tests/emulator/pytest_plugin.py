"""Pytest fixtures: ``emulator``, ``emulator_factory``, ``dead_url``.

Load it with ``pytest_plugins = ["emulator.pytest_plugin"]`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .server import Emulator

FAST = {"decode_rate": 2000.0, "prompt_rate": 100000.0, "load_time": 0.0, "pull_rate": 2e11}


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    """``(**kwargs) -> started Emulator``; defaults as for ``emulator``, all stopped at teardown.

    Each call without ``models_dir`` gets its own folder under ``tmp_path``.
    """
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        options = {**FAST, **kwargs}
        options.setdefault("models_dir", tmp_path / f"models-{len(started)}")
        emu = Emulator(**options).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., Emulator], tmp_path: Path) -> Emulator:
    """A started emulator: preset models in the registry, nothing installed, fast rates."""
    return emulator_factory(models_dir=tmp_path / "models")


@pytest.fixture
def dead_url() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` where nothing listens (connection refused).

    The port stays bound (without listening) for the whole test, so no other process on a busy machine can start
    a server there in the meantime: a connection to a bound socket that does not listen is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"
