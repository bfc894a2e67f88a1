"""Option types shared by every command, so each flag reads and behaves the same everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from localcodex.core.detect import Overrides

Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON envelope on stdout (progress goes to stderr).")
]
Host = Annotated[
    str | None,
    typer.Option("--host", help="Ollama server, as OLLAMA_HOST takes it (default: $OLLAMA_HOST or 127.0.0.1:11434)."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to every question (no prompts).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]

# detect's manual overrides, for when detection cannot know (shared by detect, recommend and setup)
Vram = Annotated[
    str | None,
    typer.Option(
        "--vram", metavar="SIZE",
        help="Memory of each GPU Ollama would use, when detection cannot know it (24GiB, 24G, 16000MiB, 8GB).",
    ),
]  # fmt: skip
Ram = Annotated[str | None, typer.Option("--ram", metavar="SIZE", help="System RAM, instead of the detected.")]
Gpu = Annotated[
    str | None,
    typer.Option("--gpu", metavar="none|auto", help="`--gpu none`: count no GPU (run models on the CPU); `--gpu auto`: "
                 "use the detected GPUs."),
]

AUTO = "auto"  # `--vram auto`, `--ram auto`, `--gpu auto`: detect it (and forget what setup remembered)


def is_auto(text: str | None) -> bool:
    return text is not None and text.strip().lower() == AUTO


def parse_overrides(vram: str | None, ram: str | None, gpu: str | None) -> Overrides:
    """The `--vram/--ram/--gpu` options as detect's Overrides; bad values are a UsageError."""
    from localcodex.core.detect import Overrides
    from localcodex.domain.units import parse_size
    from localcodex.errors import UsageError

    def size(flag: str, text: str | None) -> int | None:
        if text is None or is_auto(text):
            return None
        try:
            return parse_size(text)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}", f"for example {flag} 24GiB") from None

    if gpu is not None and gpu.strip().lower() not in ("none", AUTO):
        raise UsageError(f"--gpu {gpu!r}: only `--gpu none` and `--gpu auto` are understood",
                         "leave --gpu out (or pass --gpu auto) to use the detected GPUs")
    gpu_none = gpu is not None and gpu.strip().lower() == "none"
    if gpu_none and vram is not None and not is_auto(vram):
        raise UsageError("--vram and --gpu none contradict each other", "pass one of them")
    return Overrides(vram=size("--vram", vram), ram=size("--ram", ram), gpu_none=gpu_none)


def forgotten(**given: str | None) -> tuple[str, ...]:
    """setup's remembered choices an `auto` asks to forget: `forgotten(vram="auto", gpu="auto")` ->
    ('vram', 'gpu_none')."""
    keys = {"gpu": "gpu_none"}
    return tuple(keys.get(flag, flag) for flag, text in given.items() if is_auto(text))
