"""`detect`: recorded machines give the right GPUs, free memory, iGPU flags and budget; odd machines degrade
to "unknown" with a note; overrides; the real machine this runs on."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from machines import MACHINES, FixtureRunner, fixture, load_machine

from localcodex.adapters.probes.base import RunResult, default_runner
from localcodex.core.detect import (
    RAM_MARGIN_FIXED,
    RESERVE_GPU,
    RESERVE_METAL,
    Overrides,
    compute_budget,
    detect,
)
from localcodex.domain.machine import GPU, LoadedModel, Machine, OllamaState
from localcodex.domain.units import GiB, MiB, parse_size
from localcodex.errors import UsageError
from localcodex.paths import ollama_host

KiB = 1024


def ram_margin(total: int) -> int:
    return RAM_MARGIN_FIXED + int(0.10 * total)


def used_gpus(m: Machine) -> list[GPU]:
    return [g for g in m.gpus if g.used_by_ollama]


# ------------------------------------------------------------------------------------------ recorded machines


def test_every_fixture_loads_without_notes_of_failure():
    assert len(MACHINES) >= 15
    for name in MACHINES:
        m = load_machine(name)
        assert m.budget is not None and m.budget.explanation, name
        assert m.ram_total > 0 and m.cpu_model, name
        assert not any("failed" in n or "unexpected" in n for n in m.notes), (name, m.notes)


def test_rtx4070_laptop_counts_the_nvidia_card_and_not_the_optimus_igpu():
    m = load_machine("rtx4070-laptop")
    nvidia, intel = m.gpus
    assert (nvidia.vendor, nvidia.name) == ("nvidia", "NVIDIA GeForce RTX 4070 Laptop GPU")
    assert (nvidia.memory_total, nvidia.memory_free) == (8188 * MiB, 7807 * MiB)
    assert (nvidia.backend, nvidia.compute, nvidia.driver, nvidia.pci_bus) == ("cuda", "8.9", "550.120", "0000:01:00.0")
    assert nvidia.used_by_ollama and not nvidia.integrated
    assert (intel.vendor, intel.name, intel.integrated, intel.used_by_ollama) == (
        "intel",
        "Intel Iris Xe Graphics",
        True,
        False,
    )
    assert m.budget.gpu == (7807 * MiB - RESERVE_GPU,)
    total, available = 32_535_708 * KiB, 27_104_332 * KiB
    assert (m.ram_total, m.ram_available) == (total, available)
    assert m.budget.ram == available - ram_margin(total)
    assert not m.budget.unified
    assert (m.cores_physical, m.cores_logical) == (14, 20)
    assert "avx2" in m.simd and "avx512" not in m.simd


def test_two_3090s_are_budgeted_per_card_never_summed_into_one():
    m = load_machine("2x3090")
    assert [(g.name, g.memory_total, g.memory_free) for g in m.gpus] == [
        ("NVIDIA GeForce RTX 3090", 24576 * MiB, 23582 * MiB),
        ("NVIDIA GeForce RTX 3090", 24576 * MiB, 24135 * MiB),
    ]
    assert m.budget.gpu == (23582 * MiB - RESERVE_GPU, 24135 * MiB - RESERVE_GPU)
    assert "GPU 0" in m.budget.explanation and "GPU 1" in m.budget.explanation


def test_rtx4090():
    m = load_machine("rtx4090")
    (gpu,) = m.gpus
    assert (gpu.memory_total, gpu.memory_free) == (24564 * MiB, 23868 * MiB)
    assert m.budget.gpu == (23868 * MiB - RESERVE_GPU,)


def test_rx7900xtx_from_sysfs_with_the_raphael_igpu_left_out():
    m = load_machine("rx7900xtx")
    dgpu, igpu = m.gpus
    assert dgpu.vendor == "amd" and "7900 XTX" in dgpu.name
    assert (dgpu.memory_total, dgpu.memory_free) == (25753026560, 25753026560 - 1129406464)
    assert (dgpu.backend, dgpu.compute, dgpu.integrated, dgpu.used_by_ollama) == ("rocm", "gfx1100", False, True)
    assert (igpu.compute, igpu.integrated, igpu.used_by_ollama) == ("gfx1036", True, False)
    assert m.budget.gpu == (25753026560 - 1129406464 - RESERVE_GPU,)


def test_strix_halo_is_an_apu_ollama_keeps_with_gtt_capped_by_free_ram():
    m = load_machine("strix-halo-128")
    (gpu,) = m.gpus
    ram_total, ram_available = 130_988_380 * KiB, 127_401_116 * KiB
    vram, vram_used, gtt, gtt_used = 536870912, 94371840, 137438953472, 31457280
    assert (gpu.name, gpu.compute, gpu.backend) == ("AMD Radeon 8060S", "gfx1151", "rocm")
    assert gpu.integrated and gpu.unified_memory and gpu.used_by_ollama
    assert gpu.memory_total == vram + min(gtt, ram_total)  # 128 GiB of GTT cannot exceed the RAM there is
    assert gpu.memory_free == (vram - vram_used) + min(gtt - gtt_used, ram_available)
    assert m.budget.gpu == (ram_available - RESERVE_GPU,)  # capped by the RAM actually free
    assert m.budget.unified
    assert "never add" in m.budget.explanation


@pytest.mark.parametrize(
    ("name", "ram", "working_set", "available"),
    [
        ("m3pro-36", 36 * GiB, 27 * GiB, 28 * GiB),  # 3/4 of 36 GiB (measured on a 36 GB M4 Max)
        ("m3max-128", 128 * GiB, 96 * GiB, 118 * GiB),  # 3/4
        ("m4max-128-wired", 128 * GiB, 114688 * MiB, 120 * GiB),  # iogpu.wired_limit_mb=114688
    ],
)
def test_apple_gpu_is_the_metal_working_set_not_total_ram(name, ram, working_set, available):
    m = load_machine(name)
    (gpu,) = m.gpus
    assert (m.os, m.arch, m.ram_total, m.ram_available) == ("darwin", "arm64", ram, available)
    assert (gpu.vendor, gpu.backend, gpu.memory_total, gpu.memory_free) == ("apple", "metal", working_set, None)
    assert gpu.integrated and gpu.unified_memory and gpu.used_by_ollama
    assert m.budget.gpu == (min(working_set, available) - RESERVE_METAL,)
    assert m.budget.unified
    assert m.budget.ram == available - ram_margin(ram)
    assert "neon" in m.simd and m.cpu_model.startswith("Apple M")


def test_wsl2_finds_nvidia_smi_outside_path():
    fx = fixture("wsl2-rtx4090")
    m = detect(root=fx.root, run=fx.runner, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    assert m.wsl
    (gpu,) = m.gpus
    assert (gpu.name, gpu.memory_total, gpu.memory_free) == ("NVIDIA GeForce RTX 4090", 24564 * MiB, 22987 * MiB)
    assert gpu.source == "nvidia-smi"
    tried = [argv[0] for argv in fx.runner.calls]
    assert tried[:2] == ["nvidia-smi", "/usr/lib/wsl/lib/nvidia-smi"]
    assert any("WSL2" in n for n in m.notes)


def test_container_with_4_gib_limit_budgets_against_the_limit_not_the_host():
    m = load_machine("container-4g")
    assert m.container and m.container_kind == "docker"
    assert m.ram_total == 65_842_236 * KiB  # the host's RAM, as /proc/meminfo shows it
    assert m.cgroup_limit == 4 * GiB
    assert m.cgroup_used == 1 * GiB - 256 * MiB  # memory.current without inactive_file
    left = 4 * GiB - m.cgroup_used
    assert m.budget.gpu == ()
    assert m.budget.ram == left - ram_margin(4 * GiB)
    assert "container limit" in m.budget.explanation


@pytest.mark.parametrize("name", ["cpu-16g", "intel-igpu-laptop", "vm-no-gpu"])
def test_machines_without_a_usable_gpu_run_on_the_cpu(name):
    m = load_machine(name)
    assert used_gpus(m) == []
    assert m.budget.gpu == ()
    assert "no GPU Ollama would use" in m.budget.explanation
    assert all(g.integrated for g in m.gpus)


def test_radeon_780m_is_named_and_flagged_as_an_unused_igpu():
    (gpu,) = load_machine("cpu-16g").gpus
    assert (gpu.name, gpu.compute, gpu.integrated, gpu.used_by_ollama) == (
        "AMD Radeon 780M Graphics",
        "gfx1103",
        True,
        False,
    )
    assert any("OLLAMA_IGPU_ENABLE" in n for n in gpu.notes)


def test_igpu_enable_makes_ollama_use_the_igpu():
    (gpu,) = load_machine("cpu-16g", env={"OLLAMA_IGPU_ENABLE": "1"}).gpus
    assert gpu.used_by_ollama


def test_virtual_display_adapter_is_named_and_ignored():
    m = load_machine("vm-no-gpu")
    assert m.gpus == ()
    assert any("QEMU virtual display" in n for n in m.notes)


def test_dgx_spark_gb10_reports_unified_memory_from_system_ram():
    m = load_machine("dgx-spark")
    (gpu,) = m.gpus
    total, available = 125_489_508 * KiB, 119_003_220 * KiB
    assert (gpu.name, gpu.compute, gpu.pci_bus) == ("NVIDIA GB10", "12.1", "000f:01:00.0")
    assert (gpu.memory_total, gpu.memory_free) == (total, available)
    assert gpu.unified_memory and gpu.integrated and gpu.used_by_ollama  # CUDA iGPUs are kept by Ollama
    assert m.budget.gpu == (available - RESERVE_GPU,)
    assert m.budget.unified
    assert m.arch == "arm64" and "sve2" in m.simd and "Cortex-X925" in m.cpu_model


def test_windows_16_gb_card_read_from_the_registry_never_from_wmi():
    fx = fixture("windows-16g")
    m = detect(root=fx.root, run=fx.runner, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    igpu, card = m.gpus
    assert (card.name, card.memory_total, card.source) == ("AMD Radeon RX 9060 XT", 0x3FF000000, "registry")
    assert card.memory_total > 15 * GiB  # WMI's AdapterRAM would have said 4293918720
    assert (igpu.name, igpu.integrated, igpu.used_by_ollama) == ("AMD Radeon(TM) Graphics", True, False)
    assert "Microsoft Basic" not in " ".join(g.name for g in m.gpus)
    assert m.budget.gpu == (0x3FF000000 - RESERVE_GPU,)
    assert not any("Win32_VideoController" in " ".join(a) or a[0] in ("wmic", "powershell") for a in fx.runner.calls)
    assert (m.cores_physical, m.cores_logical, m.simd) == (8, 16, ("avx", "avx2", "avx512"))
    assert m.cpu_model == "AMD Ryzen 7 7700 8-Core Processor"
    assert m.disk.free == 950 * 1000**3


def test_windows_nvidia_card_comes_from_the_registry_when_nvidia_smi_is_missing():
    fx = fixture("windows-16g")
    for key, rec in fx.runner.commands.items():
        if "DriverDesc" in key:
            rec["stdout"] = rec["stdout"].replace("AMD Radeon RX 9060 XT", "NVIDIA GeForce RTX 4080 SUPER")
        if "MatchingDeviceId" in key:
            rec["stdout"] = rec["stdout"].replace("VEN_1002&DEV_7590", "VEN_10DE&DEV_2702")
    m = detect(root=fx.root, run=fx.runner, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    card = next(g for g in m.gpus if g.vendor == "nvidia")
    assert (card.memory_total, card.backend, card.used_by_ollama) == (0x3FF000000, "cuda", True)


# ------------------------------------------------------------------------------ models already loaded, overhead


def test_loaded_model_is_not_subtracted_twice_from_measured_free_vram():
    # nvidia-smi's free already excludes what the loaded model holds; total − loaded is the other bound
    m = load_machine("rtx4090", loaded=[LoadedModel("qwen3:8b", size=8 * GiB, size_vram=6 * GiB)])
    assert m.budget.gpu == (min(23868 * MiB, 24564 * MiB - 6 * GiB) - RESERVE_GPU,)
    total, available = 65_536_952 * KiB, 59_812_440 * KiB
    assert m.budget.ram == available - ram_margin(total) - 2 * GiB  # the CPU-resident part
    assert "held by loaded models" in m.budget.explanation


def test_loaded_vram_is_split_across_gpus_in_proportion():
    m = load_machine("2x3090", loaded=[LoadedModel("big:70b", size=40 * GiB, size_vram=40 * GiB)])
    half = 20 * GiB
    assert m.budget.gpu == (
        min(23582 * MiB, 24576 * MiB - half) - RESERVE_GPU,
        min(24135 * MiB, 24576 * MiB - half) - RESERVE_GPU,
    )


def test_apple_loaded_model_reduces_the_working_set():
    m = load_machine("m3pro-36", loaded=[LoadedModel("gpt-oss:20b", size=14 * GiB, size_vram=14 * GiB)])
    assert m.budget.gpu == (min(27 * GiB - 14 * GiB, 28 * GiB) - RESERVE_METAL,)


def test_ollama_gpu_overhead_is_subtracted_per_gpu():
    m = load_machine("2x3090", env={"OLLAMA_GPU_OVERHEAD": str(GiB)})
    assert m.budget.gpu == (23582 * MiB - RESERVE_GPU - GiB, 24135 * MiB - RESERVE_GPU - GiB)
    assert "OLLAMA_GPU_OVERHEAD" in m.budget.explanation


# ------------------------------------------------------------------------------------------------- overrides


def test_vram_override_sets_each_used_gpu():
    m = load_machine("2x3090", overrides=Overrides(vram=parse_size("20GiB")))
    assert [g.memory_total for g in m.gpus] == [20 * GiB, 20 * GiB]
    assert m.budget.gpu == (20 * GiB - RESERVE_GPU,) * 2
    assert m.overrides == ("vram=20.0 GiB per GPU (--vram)",)
    assert all(g.source == "override" for g in m.gpus)


def test_vram_override_adds_a_gpu_where_none_was_found():
    m = load_machine("vm-no-gpu", overrides=Overrides(vram=parse_size("24G")))
    (gpu,) = m.gpus
    assert (gpu.name, gpu.memory_total, gpu.source) == ("GPU given by --vram", 24 * GiB, "override")
    assert m.budget.gpu == (24 * GiB - RESERVE_GPU,)


def test_gpu_none_keeps_the_gpus_listed_but_budgets_none():
    m = load_machine("rtx4090", overrides=Overrides(gpu_none=True))
    assert len(m.gpus) == 1 and not m.gpus[0].used_by_ollama
    assert m.budget.gpu == ()
    assert m.overrides == ("gpu=none (--gpu none)",)


def test_ram_override_also_moves_apples_working_set():
    m = load_machine("m3pro-36", overrides=Overrides(ram=16 * GiB))
    assert m.ram_total == 16 * GiB and m.ram_available == 16 * GiB
    assert m.gpus[0].memory_total == 16 * GiB * 2 // 3


def test_vram_and_gpu_none_contradict():
    with pytest.raises(UsageError):
        load_machine("rtx4090", overrides=Overrides(vram=GiB, gpu_none=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("24GiB", 24 * GiB), ("24G", 24 * GiB), ("16000MiB", 16000 * MiB), ("8GB", 8 * 10**9), ("1.5gib", 3 * GiB // 2)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1G", "24 apples", "0", "1e9"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


# ------------------------------------------------------------------------------------------------ remote host


def test_remote_host_reports_no_local_hardware():
    fx = fixture("rtx4090")
    m = detect(
        root=fx.root,
        run=fx.runner,
        env=fx.env,
        system=fx.system,
        native=fx.native,
        ollama_host=ollama_host("http://gpu-box.lan:11434", {}),
        query_ollama=False,
    )
    assert m.remote and m.gpus == () and m.ram_total == 0 and m.disk is None
    assert fx.runner.calls == []  # no local probe ran: they would describe the wrong machine
    assert m.budget.gpu == () and m.budget.ram == 0
    assert "remote" in m.budget.explanation and "--vram" in m.budget.explanation


def test_remote_host_with_overrides_and_loaded_models():
    fx = fixture("rtx4090")
    m = detect(
        root=fx.root,
        run=fx.runner,
        env=fx.env,
        system=fx.system,
        native=fx.native,
        ollama_host=ollama_host("gpu-box.lan", {}),
        query_ollama=False,
        overrides=Overrides(vram=24 * GiB, ram=64 * GiB),
    )
    m = dataclasses.replace(
        m, ollama=OllamaState("http://gpu-box.lan:11434", True, "0.32.15", (LoadedModel("a", 4 * GiB, 4 * GiB),))
    )
    budget = compute_budget(m)
    assert budget.gpu == (20 * GiB - RESERVE_GPU,)
    assert budget.ram == 64 * GiB - ram_margin(64 * GiB)


# ------------------------------------------------------------------------------ degrading: tools, permissions


def test_default_runner_starts_nothing_for_an_absent_tool(monkeypatch, tmp_path):
    def forbidden(*a, **k):
        raise AssertionError("a subprocess was started")

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    assert default_runner(["nvidia-smi", "-L"], 1.0) is None


@pytest.mark.parametrize("name", ["rtx4070-laptop", "rx7900xtx", "m3pro-36", "windows-16g", "wsl2-rtx4090"])
def test_no_tools_installed_starts_no_process_and_degrades(name, monkeypatch, tmp_path):
    def forbidden(*a, **k):
        raise AssertionError("a subprocess was started for a tool that is not installed")

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    fx = fixture(name)
    m = detect(root=fx.root, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    assert m.budget is not None and m.budget.explanation
    if name == "rtx4070-laptop":
        nvidia = next(g for g in m.gpus if g.vendor == "nvidia")
        assert nvidia.memory_total is None and not nvidia.used_by_ollama
        assert any("nvidia-smi was not found" in n for n in m.notes)
    if name == "rx7900xtx":  # sysfs needs no tool: the card is still fully known
        assert m.gpus[0].memory_total == 25753026560
    if name == "m3pro-36":
        assert any("sysctl not found" in n for n in m.notes)


def _deny(monkeypatch, pattern: str, exc: type[OSError] = PermissionError):
    real = pathlib.Path.read_text

    def read_text(self, *a, **k):
        if re.search(pattern, str(self)):
            raise exc(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)


def test_unreadable_amd_sysfs_falls_back_to_rocm_smi(monkeypatch):
    _deny(monkeypatch, r"mem_info_")
    m = load_machine("rx7900xtx")
    dgpu = m.gpus[0]
    assert (dgpu.memory_total, dgpu.memory_free, dgpu.source) == (25753026560, 25753026560 - 1129406464, "rocm-smi")
    assert any("permission denied" in n for n in m.notes)


def test_unreadable_meminfo_gives_unknown_ram_with_a_note(monkeypatch):
    _deny(monkeypatch, r"meminfo$")
    m = load_machine("rtx4090")
    assert m.ram_total == 0
    assert any("permission denied" in n for n in m.notes)
    assert "RAM: unknown" in m.budget.explanation and m.budget.ram == 0
    assert m.budget.gpu == (23868 * MiB - RESERVE_GPU,)  # the GPU is still known


def test_sysfs_io_error_is_a_note_not_a_crash(monkeypatch):
    _deny(monkeypatch, r"card0/device/vendor", OSError)
    m = load_machine("rx7900xtx")
    assert [g.compute for g in m.gpus] == ["gfx1036"]
    assert any("cannot read" in n for n in m.notes)


def _runner(answers: dict[str, RunResult]):
    calls: list[list[str]] = []

    def run(argv: list[str], timeout: float):
        calls.append(argv)
        for prefix, result in answers.items():
            if " ".join(argv).startswith(prefix):
                return result
        return None

    run.calls = calls
    return run


def test_nvidia_smi_failing_leaves_the_card_listed_as_unknown():
    fx = fixture("rtx4090")
    run = _runner(
        {
            "nvidia-smi": RunResult(
                9,
                "NVIDIA-SMI has failed because it couldn't communicate with the "
                "NVIDIA driver. Make sure that the latest NVIDIA driver is installed "
                "and running.\n",
            )
        }
    )
    m = detect(root=fx.root, run=run, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    (gpu,) = m.gpus
    assert gpu.memory_total is None and not gpu.used_by_ollama and gpu.pci_bus == "0000:01:00.0"
    assert any("couldn't communicate" in n for n in m.notes)
    assert m.budget.gpu == ()


def test_old_driver_without_compute_cap_is_asked_again_without_it():
    fx = fixture("rtx4090")
    run = _runner(
        {
            "nvidia-smi --query-gpu=index,name,memory.total,memory.free,driver_version,compute_cap": RunResult(
                2, 'Field "compute_cap" is not a valid field to query.\n\n'
            ),
            "nvidia-smi --query-gpu=index,name,memory.total,memory.free,driver_version,pci.bus_id": RunResult(
                0, "0, NVIDIA GeForce GTX 1080 Ti, 11264, 10938, 470.256.02, 00000000:01:00.0\n"
            ),
        }
    )
    m = detect(root=fx.root, run=run, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    (gpu,) = m.gpus
    assert (gpu.name, gpu.memory_total, gpu.compute, gpu.driver) == (
        "NVIDIA GeForce GTX 1080 Ti",
        11264 * MiB,
        None,
        "470.256.02",
    )


def test_garbage_from_tools_is_noted():
    fx = fixture("rx7900xtx")
    run = _runner(
        {
            "lspci": RunResult(0, '\x00\x01 not lspci output "unbalanced\n'),
            "nvidia-smi": RunResult(0, "this, is, not\n"),
        }
    )
    m = detect(root=fx.root, run=run, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    assert m.gpus[0].memory_total == 25753026560
    assert m.gpus[0].name.startswith("AMD GPU (PCI 1002:744c")


def test_timeout_of_a_tool_is_a_note():
    fx = fixture("rtx4090")
    run = _runner({"nvidia-smi": RunResult(-1, "", "timed out after 10 s")})
    m = detect(root=fx.root, run=run, env=fx.env, system=fx.system, native=fx.native, query_ollama=False)
    assert any("timed out" in n for n in m.notes)


def test_an_empty_root_is_an_unknown_machine_not_a_crash(tmp_path):
    fx = fixture("rtx4090")
    m = detect(
        root=tmp_path,
        run=lambda a, t: None,
        env={"HOME": "/nowhere"},
        system=fx.system,
        native=fx.native,
        query_ollama=False,
    )
    assert m.gpus == () and m.ram_total == 0 and m.cpu_model is None
    assert any("/proc/meminfo" in n for n in m.notes)


def test_fixture_runner_refuses_unrecorded_arguments():
    runner = FixtureRunner({"lspci -D -mm": {"returncode": 0, "stdout": ""}})
    assert runner(["nvidia-smi"], 1.0) is None
    with pytest.raises(AssertionError):
        runner(["lspci", "-vvv"], 1.0)


# --------------------------------------------------------------------------------------------- Ollama state


class _FakeOllama(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/version":
            body = {"version": "0.32.15"}
        elif self.path == "/api/ps":
            body = {
                "models": [
                    {
                        "name": "qwen3:8b",
                        "model": "qwen3:8b",
                        "size": 6654289920,
                        "digest": "a" * 64,
                        "details": {
                            "parent_model": "",
                            "format": "gguf",
                            "family": "qwen3",
                            "families": ["qwen3"],
                            "parameter_size": "8.2B",
                            "quantization_level": "Q4_K_M",
                        },
                        "expires_at": "2026-08-21T12:05:00.1-07:00",
                        "size_vram": 5000000000,
                        "context_length": 4096,
                    }
                ]
            }
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_ollama():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_loaded_models_from_a_running_ollama_are_subtracted(fake_ollama):
    fx = fixture("rtx4090")
    m = detect(root=fx.root, run=fx.runner, env=fx.env, system=fx.system, native=fx.native,
               ollama_host=ollama_host(fake_ollama, {}))
    assert m.ollama.reachable and m.ollama.version == "0.32.15"
    assert m.ollama.loaded == (LoadedModel("qwen3:8b", 6654289920, 5000000000, 4096),)
    assert m.budget.gpu == (min(23868 * MiB, 24564 * MiB - 5000000000) - RESERVE_GPU,)
    total, available = 65_536_952 * KiB, 59_812_440 * KiB
    assert m.budget.ram == available - ram_margin(total) - (6654289920 - 5000000000)


def test_unreachable_ollama_is_a_normal_state():
    fx = fixture("rtx4090")
    m = detect(root=fx.root, run=fx.runner, env=fx.env, system=fx.system, native=fx.native,
               ollama_host=ollama_host("127.0.0.1:9", {}))
    assert m.ollama is not None and not m.ollama.reachable
    assert "refused" in m.ollama.error or "not reachable" in m.ollama.error
    assert m.budget.gpu == (23868 * MiB - RESERVE_GPU,)


# ----------------------------------------------------------------------------------------- this real machine


def _meminfo_total() -> int:
    text = Path("/proc/meminfo").read_text()
    return int(re.search(r"^MemTotal:\s+(\d+) kB", text, re.M).group(1)) * 1024


def _has_gpu() -> bool:
    drm = Path("/sys/class/drm")
    cards = list(drm.glob("card[0-9]*")) if drm.exists() else []
    return bool(cards) or shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia").exists()


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_this_machine(tmp_path, monkeypatch):
    models = tmp_path / "ollama-models"
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "not-this-one"))  # detect reads the env it is given
    env = {**os.environ, "OLLAMA_MODELS": str(models)}
    m = detect(env=env)  # the real root and runner, this environment (HOME etc. point into tmp_path)
    assert m.os == "linux" and not m.remote
    assert abs(m.ram_total - _meminfo_total()) <= 0.01 * _meminfo_total()
    if not _has_gpu():
        assert m.gpus == ()
    assert m.disk.path == str(models)
    usage = shutil.disk_usage(tmp_path)  # models/ does not exist yet: its nearest parent is measured
    assert m.disk.total == usage.total
    assert abs(m.disk.free - usage.free) < 64 * MiB  # other processes write meanwhile
    if shutil.which("df"):
        out = subprocess.run(["df", "-B1", "--output=size,avail", str(tmp_path)], capture_output=True, text=True)
        size, avail = (int(x) for x in out.stdout.split()[-2:])
        assert m.disk.total == size and abs(m.disk.free - avail) < 64 * MiB
    assert m.budget.explanation.count("RAM:") == 1
    assert m.budget.ram > 0
    assert m.cores_logical == len(re.findall(r"^processor\s*:", Path("/proc/cpuinfo").read_text(), re.M))
    assert not m.ollama.reachable  # conftest points OLLAMA_HOST at a closed port


def test_this_machine_models_folder_existing(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.delenv("OLLAMA_MODELS")  # only the given env counts: a core step never reads os.environ
    m = detect(query_ollama=False, env={**os.environ, "OLLAMA_MODELS": str(models)})
    usage = shutil.disk_usage(models)
    assert (m.disk.path, m.disk.total) == (str(models), usage.total)
    assert not any("does not exist yet" in n for n in m.notes)


def test_detect_needs_no_tool_and_no_network_here(monkeypatch):
    started = []
    real = subprocess.run

    def spy(*a, **k):
        started.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(subprocess, "run", spy)
    detect(query_ollama=False)
    for argv in started:
        assert shutil.which(os.path.basename(argv[0])) or os.path.exists(argv[0])


# ------------------------------------------------------------------------------------ probes on small fake roots


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_cgroup_v1_limit_is_read(tmp_path):
    from localcodex.adapters.probes.memory import probe_cgroup

    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "12:memory:/docker/3f2a9c\n11:cpu,cpuacct:/docker/3f2a9c\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": "536870912\n",
            "sys/fs/cgroup/memory/memory.stat": "cache 134217728\ntotal_inactive_file 134217728\n",
        },
    )
    info = probe_cgroup(root, ram_total=64 * GiB)
    assert (info.version, info.limit, info.used) == (1, 2 * GiB, 512 * MiB - 128 * MiB)


def test_cgroup_v1_unlimited_and_v2_nested_limits(tmp_path):
    from localcodex.adapters.probes.memory import probe_cgroup

    v1 = _tree(
        tmp_path / "v1",
        {
            "proc/self/cgroup": "4:memory:/\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        },
    )
    assert probe_cgroup(v1, ram_total=64 * GiB).limit is None
    v2 = _tree(
        tmp_path / "v2",
        {
            "proc/self/cgroup": "0::/system.slice/ollama.service\n",
            "sys/fs/cgroup/cgroup.controllers": "memory\n",
            "sys/fs/cgroup/system.slice/memory.max": "8589934592\n",
            "sys/fs/cgroup/system.slice/ollama.service/memory.max": "max\n",
            "sys/fs/cgroup/system.slice/memory.current": "1073741824\n",
        },
    )
    info = probe_cgroup(v2, ram_total=64 * GiB)
    assert (info.version, info.limit, info.used, info.path) == (2, 8 * GiB, 1 * GiB, "/system.slice")
    bigger_than_ram = _tree(
        tmp_path / "big",
        {
            "proc/self/cgroup": "0::/\n",
            "sys/fs/cgroup/cgroup.controllers": "memory\n",
            "sys/fs/cgroup/memory.max": str(128 * GiB) + "\n",
        },
    )
    assert probe_cgroup(bigger_than_ram, ram_total=64 * GiB).limit is None


@pytest.mark.parametrize(
    ("version", "env", "expected"),
    [
        ("Linux version 5.15.167.4-microsoft-standard-WSL2 (root@f9c826d3017f)", {}, 2),
        ("Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com)", {}, 1),
        ("Linux version 6.8.0-48-generic (buildd@lcy02-amd64-052)", {}, None),
        ("", {"WSL_DISTRO_NAME": "Ubuntu"}, 2),
    ],
)
def test_wsl_versions(tmp_path, version, env, expected):
    from localcodex.adapters.probes.environment import probe_environment

    root = _tree(tmp_path, {"proc/version": version + "\n"} if version else {})
    assert probe_environment(root, env).wsl == expected


@pytest.mark.parametrize(
    ("files", "env", "expected"),
    [
        ({"run/.containerenv": ""}, {}, "podman"),
        ({"proc/1/cgroup": "0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-1.scope\n"}, {}, "kubepods"),
        ({}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "kubernetes"),
        ({"proc/1/cgroup": "0::/init.scope\n"}, {}, None),
    ],
)
def test_container_markers(tmp_path, files, env, expected):
    from localcodex.adapters.probes.environment import probe_environment

    assert probe_environment(_tree(tmp_path, files), env).container == expected


def test_linux_service_models_folder_is_used_when_the_users_is_missing(tmp_path):
    from localcodex.adapters.probes.disk import models_dir

    root = _tree(tmp_path, {"usr/share/ollama/.ollama/models/manifests/x": "", "home/alex/.bashrc": ""})
    env = {"HOME": "/home/alex"}
    assert models_dir(root, env, "linux") == "/usr/share/ollama/.ollama/models"
    (root / "home/alex/.ollama/models").mkdir(parents=True)
    assert models_dir(root, env, "linux") == "/home/alex/.ollama/models"
    assert models_dir(root, {**env, "OLLAMA_MODELS": '"/srv/models"'}, "linux") == "/srv/models"


def _with_nvml(name: str, report):
    fx = fixture(name)

    class Native(type(fx.native)):
        def nvml(self):
            return report

    return detect(
        root=fx.root, run=fx.runner, env=fx.env, system=fx.system, native=Native(fx.native.facts), query_ollama=False
    ), fx.runner


def test_nvml_answer_is_used_before_nvidia_smi():
    from localcodex.adapters.probes.native import NvmlDevice, NvmlReport

    device = NvmlDevice(0, "NVIDIA GeForce RTX 4090", 25757220864, 25027411968, "560.35.03", "8.9", "00000000:01:00.0")
    m, runner = _with_nvml("rtx4090", NvmlReport(devices=(device,)))
    (gpu,) = m.gpus
    assert (gpu.source, gpu.memory_total, gpu.memory_free, gpu.pci_bus) == (
        "nvml",
        25757220864,
        25027411968,
        "0000:01:00.0",
    )
    assert not any(argv[0] == "nvidia-smi" for argv in runner.calls)


def test_nvml_failure_falls_back_to_nvidia_smi_with_a_note():
    from localcodex.adapters.probes.native import NvmlReport

    m, _ = _with_nvml("rtx4090", NvmlReport(error="NVML did not start: Driver Not Loaded"))
    assert m.gpus[0].source == "nvidia-smi"
    assert any("NVML" in n and "nvidia-smi" in n for n in m.notes)


def test_nvml_gb10_without_memory_info_is_unified():
    from localcodex.adapters.probes.native import NvmlDevice, NvmlReport

    m, _ = _with_nvml(
        "dgx-spark",
        NvmlReport(devices=(NvmlDevice(0, "NVIDIA GB10", None, None, "580.95.05", "12.1", "0000000F:01:00.0"),)),
    )
    (gpu,) = m.gpus
    assert gpu.unified_memory and gpu.memory_total == 125_489_508 * KiB


def test_real_nvml_without_a_driver_is_an_error_report_not_a_crash():
    from localcodex.adapters.probes.native import Native

    if Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    report = Native().nvml()
    assert report is not None and report.devices == () and report.error


@pytest.mark.parametrize("mib", [1, 457, 8188, 24576, 1_048_576])
def test_parse_size_round_trips_whole_units(mib):
    assert parse_size(f"{mib}MiB") == mib * MiB
    assert parse_size(f"{mib} mib") == mib * MiB


def test_macos_13_wired_limit_and_rosetta():
    fx = fixture("m3pro-36")
    for key, rec in fx.runner.commands.items():
        if key.startswith("sysctl "):
            rec["stdout"] = (
                rec["stdout"]
                .replace("iogpu.wired_limit_mb: 0\n", f"debug.iogpu.wired_limit: {24 * GiB}\n")
                .replace("sysctl.proc_translated: 0", "sysctl.proc_translated: 1")
            )
    system = dataclasses.replace(fx.system, arch="x86_64")  # an Intel Python under Rosetta
    m = detect(root=fx.root, run=fx.runner, env=fx.env, system=system, native=fx.native, query_ollama=False)
    assert m.arch == "arm64"
    (gpu,) = m.gpus
    assert gpu.memory_total == 24 * GiB
    assert any("Rosetta" in n for n in gpu.notes)


def test_gpu_masks_in_this_shell_are_noted():
    m = load_machine("2x3090", env={"CUDA_VISIBLE_DEVICES": "1"})
    assert any("CUDA_VISIBLE_DEVICES='1'" in n for n in m.notes)
