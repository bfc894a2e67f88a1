"""The display devices Linux knows, from `/sys/class/drm/card*/device`: one entry per PCI device.

Every GPU vendor shows up here (the NVIDIA entry is used only to match and de-duplicate what NVML or
nvidia-smi report), plus devices that are no use for inference: BMC consoles (ASPEED, Matrox) and virtual
adapters (QEMU, VirtIO, VMware, Hyper-V). Those are named in a note and never counted as GPUs, so they can
neither hide the real GPU nor stand in for it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from localcodex.adapters.probes.base import Runner, parse_int, read_text, under

VENDORS = {0x10DE: "nvidia", 0x1002: "amd", 0x8086: "intel"}
NOT_COMPUTE = {
    0x1A03: "ASPEED BMC display",
    0x102B: "Matrox display",
    0x1234: "QEMU virtual display",
    0x1AF4: "VirtIO virtual GPU",
    0x15AD: "VMware virtual display",
    0x1414: "Hyper-V virtual display",
    0x1B36: "QEMU virtual display",
}


@dataclass(frozen=True)
class DrmCard:
    card: str  # "card1"
    device: Path  # the card's device folder (inside the probed root)
    vendor_id: int
    device_id: int | None
    slot: str | None  # PCI address, "0000:03:00.0"
    driver: str | None

    @property
    def vendor(self) -> str:
        return VENDORS.get(self.vendor_id, "other")


def list_cards(root: Path, notes: list[str]) -> list[DrmCard]:
    drm = under(root, "/sys/class/drm")
    try:
        names = sorted((p.name for p in drm.iterdir() if re.fullmatch(r"card\d+", p.name)), key=lambda n: int(n[4:]))
    except FileNotFoundError:
        return []
    except OSError as exc:
        notes.append(f"cannot list {drm}: {exc.strerror or exc}")
        return []
    cards: list[DrmCard] = []
    seen: set[str] = set()
    for name in names:
        device = drm / name / "device"
        vendor = parse_int(read_text(device / "vendor", notes) or "")
        if vendor is None:
            continue
        uevent = dict(
            line.split("=", 1) for line in (read_text(device / "uevent", notes) or "").splitlines() if "=" in line
        )
        slot = uevent.get("PCI_SLOT_NAME")
        key = slot or str(device.resolve())
        if key in seen:  # several cards of one device (display + render nodes): count it once
            continue
        seen.add(key)
        if vendor in NOT_COMPUTE:
            notes.append(f"ignored {NOT_COMPUTE[vendor]} at {slot or name}: not a GPU Ollama can use")
            continue
        cards.append(
            DrmCard(name, device, vendor, parse_int(read_text(device / "device") or ""), slot, uevent.get("DRIVER"))
        )
    return cards


def lspci_names(run: Runner) -> dict[str, str]:
    """PCI address -> device name from `lspci -D -mm` (None-safe: {} when lspci is absent).

    Only asked when a card needs a name and sysfs has none; `-mm` is lspci's stable machine-readable form.
    """
    result = run(["lspci", "-D", "-mm"], 5.0)
    if result is None or result.returncode != 0:
        return {}
    names: dict[str, str] = {}
    for line in result.stdout.splitlines():
        try:
            fields = shlex.split(line)
        except ValueError:
            continue
        if len(fields) >= 4 and re.search(r"VGA|3D|Display", fields[1]):
            names[fields[0].lower()] = pretty_pci_name(fields[2], fields[3])
    return names


def pretty_pci_name(vendor: str, device: str) -> str:
    """`Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]` -> `AMD Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M`.

    >>> pretty_pci_name("Intel Corporation", "Raptor Lake-P [Iris Xe Graphics]")
    'Intel Iris Xe Graphics'
    >>> pretty_pci_name("Advanced Micro Devices, Inc. [AMD/ATI]", "Device 1586")
    'AMD Device 1586'
    >>> pretty_pci_name("Intel Corporation", "Meteor Lake-P [Intel Arc Graphics]")
    'Intel Arc Graphics'
    """
    short = "AMD" if "AMD" in vendor else "NVIDIA" if "NVIDIA" in vendor else vendor.split()[0]
    marketing = re.search(r"\[([^\]]+)\]\s*$", device)
    name = marketing.group(1) if marketing else device
    return name if name.startswith(short) else f"{short} {name}"


def normalize_bus_id(bus_id: str | None) -> str | None:
    """NVIDIA's `00000000:01:00.0` and sysfs's `0000:01:00.0` compare equal after this.

    >>> normalize_bus_id("00000000:01:00.0"), normalize_bus_id("0000000F:01:00.0"), normalize_bus_id("[N/A]")
    ('0000:01:00.0', '000f:01:00.0', None)
    """
    if not bus_id:
        return None
    m = re.fullmatch(r"([0-9a-fA-F]+):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])", bus_id.strip())
    if not m:
        return None
    return f"{int(m.group(1), 16):04x}:{m.group(2).lower()}:{m.group(3).lower()}.{m.group(4)}"
