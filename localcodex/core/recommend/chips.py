"""Memory bandwidth and compute of known GPUs and Apple chips: the table the speed model reads.

Figures are the vendors' published peaks (GB/s = 10^9 bytes/s; TFLOPS = dense FP16 through the matrix units,
no sparsity, FP32 accumulate where NVIDIA lists both; Apple and AMD iGPU figures are the FP32 shader rate,
which is also their FP16 rate through Metal/Vulkan). Each row says where its figures come from:

- NVIDIA: the GeForce/RTX/data-centre product spec pages and the Ada/Ampere/Blackwell architecture whitepapers
  (memory bandwidth row; "Peak FP16 Tensor TFLOPS with FP32 Accumulate").
- AMD: amd.com product specifications ("Peak Memory Bandwidth", "Peak Half Precision Compute Performance").
- Apple: apple.com tech-specs pages of the Macs that carry each chip ("Memory bandwidth") and Apple's chip
  announcements (GPU TFLOPS are from the launch material or cores x 128 ALUs x 2 x clock).
- Intel: ark.intel.com / intel.com Arc product pages.

A GPU the table does not know gets no figure here; the speed model then says its estimate is assumed.
Laptop parts are matched before desktop parts of the same number, because they share the name prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Chip:
    name: str
    bandwidth_gbs: float  # peak memory bandwidth, 10^9 bytes/s
    fp16_tflops: float | None  # peak dense FP16 throughput used for prompt processing
    source: str
    pattern: str = ""  # regex matched against the lower-cased GPU name; defaults to the name

    def matches(self, gpu_name: str) -> bool:
        return re.search(self.pattern or re.escape(self.name.lower()), gpu_name.lower()) is not None


_NV = "NVIDIA spec sheet"
_AMD = "AMD product specifications"
_APPLE = "Apple tech specs"
_INTEL = "Intel Arc product page"

CHIPS: tuple[Chip, ...] = (
    # NVIDIA laptop GPUs (before the desktop names they contain)
    Chip("RTX 4090 Laptop", 576, 79.0, _NV, r"4090 laptop|4090 mobile"),
    Chip("RTX 4080 Laptop", 432, 60.0, _NV, r"4080 laptop|4080 mobile"),
    Chip("RTX 4070 Laptop", 256, 42.0, _NV, r"4070 laptop|4070 mobile"),
    Chip("RTX 4060 Laptop", 256, 30.0, _NV, r"4060 laptop|4060 mobile"),
    Chip("RTX 4050 Laptop", 192, 24.0, _NV, r"4050 laptop|4050 mobile"),
    Chip("RTX 3080 Laptop", 448, 45.0, _NV, r"3080 laptop|3080 mobile"),
    Chip("RTX 3070 Laptop", 448, 40.0, _NV, r"3070 laptop|3070 mobile"),
    Chip("RTX 3060 Laptop", 336, 26.0, _NV, r"3060 laptop|3060 mobile"),
    Chip("RTX 5090 Laptop", 896, 100.0, _NV, r"5090 laptop|5090 mobile"),
    # NVIDIA desktop GeForce
    Chip("RTX 5090", 1792, 209.5, _NV, r"rtx 5090"),
    Chip("RTX 5080", 960, 112.6, _NV, r"rtx 5080"),
    Chip("RTX 5070 Ti", 896, 87.9, _NV, r"rtx 5070 ti"),
    Chip("RTX 5070", 672, 61.7, _NV, r"rtx 5070"),
    Chip("RTX 5060 Ti", 448, 47.4, _NV, r"rtx 5060 ti"),
    Chip("RTX 5060", 448, 38.4, _NV, r"rtx 5060"),
    Chip("RTX 4090", 1008, 165.2, _NV, r"rtx 4090"),
    Chip("RTX 4080 Super", 736, 104.4, _NV, r"rtx 4080 super"),
    Chip("RTX 4080", 716.8, 97.5, _NV, r"rtx 4080"),
    Chip("RTX 4070 Ti Super", 672, 88.2, _NV, r"rtx 4070 ti super"),
    Chip("RTX 4070 Ti", 504, 80.2, _NV, r"rtx 4070 ti"),
    Chip("RTX 4070 Super", 504, 71.0, _NV, r"rtx 4070 super"),
    Chip("RTX 4070", 504, 58.3, _NV, r"rtx 4070"),
    Chip("RTX 4060 Ti", 288, 44.1, _NV, r"rtx 4060 ti"),
    Chip("RTX 4060", 272, 30.2, _NV, r"rtx 4060"),
    Chip("RTX 3090 Ti", 1008, 80.0, _NV, r"rtx 3090 ti"),
    Chip("RTX 3090", 936, 71.0, _NV, r"rtx 3090"),
    Chip("RTX 3080 Ti", 912, 68.2, _NV, r"rtx 3080 ti"),
    Chip("RTX 3080", 760, 59.5, _NV, r"rtx 3080"),
    Chip("RTX 3070 Ti", 608, 43.5, _NV, r"rtx 3070 ti"),
    Chip("RTX 3070", 448, 40.6, _NV, r"rtx 3070"),
    Chip("RTX 3060 Ti", 448, 32.4, _NV, r"rtx 3060 ti"),
    Chip("RTX 3060", 360, 25.4, _NV, r"rtx 3060"),
    # NVIDIA workstation / data centre
    Chip("RTX PRO 6000 Blackwell", 1792, 250.0, _NV, r"rtx pro 6000"),
    Chip("RTX 6000 Ada", 960, 182.2, _NV, r"rtx 6000 ada"),
    Chip("RTX A6000", 768, 154.8, _NV, r"rtx a6000"),
    Chip("RTX A5000", 768, 111.1, _NV, r"rtx a5000"),
    Chip("RTX A4000", 448, 76.7, _NV, r"rtx a4000"),
    Chip("L40S", 864, 362.0, _NV, r"\bl40s\b"),
    Chip("A100 80GB", 2039, 312.0, _NV, r"a100.*80"),
    Chip("A100", 1555, 312.0, _NV, r"\ba100\b"),
    Chip("H100 SXM", 3350, 989.0, _NV, r"h100.*(sxm|hbm3)"),
    Chip("H100", 2000, 756.0, _NV, r"\bh100\b"),
    Chip("H200", 4800, 989.0, _NV, r"\bh200\b"),
    Chip("V100", 900, 125.0, _NV, r"\bv100\b"),
    Chip("Tesla T4", 320, 65.0, _NV, r"\bt4\b"),
    Chip("GB10 (DGX Spark)", 273, 62.5, _NV, r"gb10|dgx spark"),
    Chip("Jetson AGX Orin", 204.8, 42.5, _NV, r"orin"),
    # AMD
    Chip("Radeon RX 9070 XT", 644.6, 97.3, _AMD, r"9070 xt"),
    Chip("Radeon RX 9070", 644.6, 72.3, _AMD, r"rx 9070"),
    Chip("Radeon RX 9060 XT", 322.3, 51.3, _AMD, r"9060 xt"),
    Chip("Radeon AI PRO R9700", 644.6, 95.7, _AMD, r"r9700"),
    Chip("Radeon RX 7900 XTX", 960, 122.8, _AMD, r"7900 xtx"),
    Chip("Radeon RX 7900 XT", 800, 103.0, _AMD, r"7900 xt\b"),
    Chip("Radeon RX 7900 GRE", 576, 91.5, _AMD, r"7900 gre"),
    Chip("Radeon PRO W7900", 864, 122.6, _AMD, r"w7900"),
    Chip("Radeon RX 7800 XT", 624, 74.6, _AMD, r"7800 xt"),
    Chip("Radeon RX 7700 XT", 432, 70.3, _AMD, r"7700 xt"),
    Chip("Radeon RX 7600", 288, 43.5, _AMD, r"rx 7600"),
    Chip("Radeon RX 6900 XT", 512, 46.1, _AMD, r"6900 xt"),
    Chip("Radeon RX 6800 XT", 512, 41.5, _AMD, r"6800 xt"),
    Chip("Instinct MI300X", 5300, 1307.4, _AMD, r"mi300x"),
    Chip("Instinct MI250X", 3277, 383.0, _AMD, r"mi250"),
    Chip("Ryzen AI Max (Strix Halo, Radeon 8060S)", 256, 29.7, _AMD, r"8060s|8050s|strix halo|ai max|gfx1151"),
    Chip("Radeon 780M", 120, None, _AMD, r"\b780m\b"),  # LPDDR5X-7500 x 128 bit, the fastest memory AMD lists
    # Intel
    Chip("Arc B580", 456, 58.0, _INTEL, r"\bb580\b"),
    Chip("Arc B570", 380, 50.0, _INTEL, r"\bb570\b"),
    Chip("Arc A770", 560, 39.3, _INTEL, r"\ba770\b"),
    Chip("Arc A750", 512, 34.4, _INTEL, r"\ba750\b"),
)

# Apple silicon: (chip, GB/s, GPU TFLOPS). M3 Max and M4 Max come in two bins with different bandwidth;
# APPLE_BINS picks the bin from the GPU core count when detect saw it, else from the memory size (the
# smaller bin ships only with 36 GB, and the M3 Max small bin also with 96 GB).
APPLE: tuple[Chip, ...] = (
    Chip("Apple M1 Ultra", 800, 21.0, _APPLE, r"m1 ultra"),
    Chip("Apple M1 Max", 400, 10.4, _APPLE, r"m1 max"),
    Chip("Apple M1 Pro", 200, 5.2, _APPLE, r"m1 pro"),
    Chip("Apple M1", 68.25, 2.6, _APPLE, r"\bm1\b"),
    Chip("Apple M2 Ultra", 800, 27.2, _APPLE, r"m2 ultra"),
    Chip("Apple M2 Max", 400, 13.6, _APPLE, r"m2 max"),
    Chip("Apple M2 Pro", 200, 6.8, _APPLE, r"m2 pro"),
    Chip("Apple M2", 100, 3.6, _APPLE, r"\bm2\b"),
    Chip("Apple M3 Ultra", 819, 28.4, _APPLE, r"m3 ultra"),
    Chip("Apple M3 Max", 400, 16.4, _APPLE, r"m3 max"),
    Chip("Apple M3 Pro", 150, 7.4, _APPLE, r"m3 pro"),
    Chip("Apple M3", 100, 4.1, _APPLE, r"\bm3\b"),
    Chip("Apple M4 Max", 546, 16.1, _APPLE, r"m4 max"),
    Chip("Apple M4 Pro", 273, 9.2, _APPLE, r"m4 pro"),
    Chip("Apple M4", 120, 4.3, _APPLE, r"\bm4\b"),
    Chip("Apple M5", 153, 5.7, _APPLE, r"\bm5\b"),
)
APPLE_BINS = {
    # chip: (smaller-bin GPU cores, GB/s, TFLOPS, memory sizes in GB that only the smaller bin ships with)
    "Apple M3 Max": (30, 300.0, 12.3, (36, 96)),
    "Apple M4 Max": (32, 410.0, 12.9, (36,)),
}

_GPU_CORES_RE = re.compile(r"(\d+)[- ]core gpu|gpu[^\d]{0,12}(\d+)[- ]cores?")


def lookup(gpu_name: str, memory_bytes: int | None = None) -> Chip | None:
    """The table row for a GPU name (`NVIDIA GeForce RTX 4090`, `Apple M3 Max`, `AMD Radeon 8060S`), or None.

    >>> lookup("NVIDIA GeForce RTX 4090").bandwidth_gbs
    1008
    >>> lookup("NVIDIA GeForce RTX 4070 Laptop GPU").bandwidth_gbs
    256
    >>> lookup("Apple M3 Max", 36 * 10**9).bandwidth_gbs
    300.0
    >>> lookup("Apple M3 Max", 128 * 1024**3).bandwidth_gbs
    400
    >>> lookup("Apple M4 Max (40-core GPU)", 36 * 10**9).bandwidth_gbs
    546
    >>> lookup("Matrox G200") is None
    True
    """
    name = gpu_name.lower()
    for chip in APPLE:
        if chip.matches(name):
            return _apple_bin(chip, name, memory_bytes)
    return next((chip for chip in CHIPS if chip.matches(name)), None)


def _apple_bin(chip: Chip, name: str, memory_bytes: int | None) -> Chip:
    if chip.name not in APPLE_BINS:
        return chip
    small_cores, gbs, tflops, small_sizes = APPLE_BINS[chip.name]
    found = _GPU_CORES_RE.search(name)
    if found:
        small = int(found.group(1) or found.group(2)) <= small_cores
    elif memory_bytes:
        gb = round(memory_bytes / 1024**3)
        small = gb in small_sizes or round(memory_bytes / 1e9) in small_sizes
    else:
        small = True  # unknown bin: the slower one, so the estimate does not promise too much
    if not small:
        return chip
    return Chip(f"{chip.name} ({small_cores}-core GPU)", gbs, tflops, chip.source, chip.pattern)


# Memory of each chip (GiB as sold: "24 GB" GDDR = 24 GiB of addressable memory), from the same spec pages as
# the bandwidth. Apple chips come with several memory sizes: the figure is the largest configuration Apple
# sells (describe a smaller one with --ram). Chips listed in UNIFIED share system memory with the CPU.
MEMORY_GIB: dict[str, float] = {
    "RTX 5090 Laptop": 24, "RTX 4090 Laptop": 16, "RTX 4080 Laptop": 12, "RTX 4070 Laptop": 8,
    "RTX 4060 Laptop": 8, "RTX 4050 Laptop": 6, "RTX 3080 Laptop": 16, "RTX 3070 Laptop": 8, "RTX 3060 Laptop": 6,
    "RTX 5090": 32, "RTX 5080": 16, "RTX 5070 Ti": 16, "RTX 5070": 12, "RTX 5060 Ti": 16, "RTX 5060": 8,
    "RTX 4090": 24, "RTX 4080 Super": 16, "RTX 4080": 16, "RTX 4070 Ti Super": 16, "RTX 4070 Ti": 12,
    "RTX 4070 Super": 12, "RTX 4070": 12, "RTX 4060 Ti": 8, "RTX 4060": 8, "RTX 3090 Ti": 24, "RTX 3090": 24,
    "RTX 3080 Ti": 12, "RTX 3080": 10, "RTX 3070 Ti": 8, "RTX 3070": 8, "RTX 3060 Ti": 8, "RTX 3060": 12,
    "RTX PRO 6000 Blackwell": 96, "RTX 6000 Ada": 48, "RTX A6000": 48, "RTX A5000": 24, "RTX A4000": 16,
    "L40S": 48, "A100 80GB": 80, "A100": 40, "H100 SXM": 80, "H100": 80, "H200": 141, "V100": 32, "Tesla T4": 16,
    "GB10 (DGX Spark)": 128, "Jetson AGX Orin": 64,
    "Radeon RX 9070 XT": 16, "Radeon RX 9070": 16, "Radeon RX 9060 XT": 16, "Radeon AI PRO R9700": 32,
    "Radeon RX 7900 XTX": 24, "Radeon RX 7900 XT": 20, "Radeon RX 7900 GRE": 16, "Radeon PRO W7900": 48,
    "Radeon RX 7800 XT": 16, "Radeon RX 7700 XT": 12, "Radeon RX 7600": 8, "Radeon RX 6900 XT": 16,
    "Radeon RX 6800 XT": 16, "Instinct MI300X": 192, "Instinct MI250X": 128,
    "Ryzen AI Max (Strix Halo, Radeon 8060S)": 128, "Radeon 780M": 32,
    "Arc B580": 12, "Arc B570": 10, "Arc A770": 16, "Arc A750": 8,
    "Apple M1": 16, "Apple M1 Pro": 32, "Apple M1 Max": 64, "Apple M1 Ultra": 128, "Apple M2": 24,
    "Apple M2 Pro": 32, "Apple M2 Max": 96, "Apple M2 Ultra": 192, "Apple M3": 24, "Apple M3 Pro": 36,
    "Apple M3 Max": 128, "Apple M3 Ultra": 512, "Apple M4": 32, "Apple M4 Pro": 64, "Apple M4 Max": 128,
    "Apple M5": 32,
}  # fmt: skip
UNIFIED = frozenset({"GB10 (DGX Spark)", "Jetson AGX Orin", "Ryzen AI Max (Strix Halo, Radeon 8060S)", "Radeon 780M"})


def is_apple(chip: Chip) -> bool:
    return chip.name.startswith("Apple ")


def is_unified(chip: Chip) -> bool:
    return is_apple(chip) or chip.name in UNIFIED


def memory_gib(chip: Chip) -> float | None:
    """The chip's memory (GiB) from MEMORY_GIB; a binned Apple chip uses its base chip's figure.

    >>> memory_gib(lookup("RTX 4090")), memory_gib(lookup("Apple M3 Max", 36 * 10**9))
    (24, 128)
    """
    base = chip.name.split(" (")[0] if is_apple(chip) else chip.name
    return MEMORY_GIB.get(base)


def vendor_of(chip: Chip) -> tuple[str, str]:
    """(vendor, Ollama backend) of a table row."""
    if is_apple(chip):
        return "apple", "metal"
    if chip.source == _AMD:
        return "amd", "rocm"
    if chip.source == _INTEL:
        return "intel", "vulkan"
    return "nvidia", "cuda"


def hardware_table() -> tuple[tuple[str, float | None, float, str], ...]:
    """(name, memory GiB, bandwidth GB/s, source) for every GPU and Apple chip the speed model knows."""
    return tuple((c.name, memory_gib(c), c.bandwidth_gbs, c.source) for c in (*CHIPS, *APPLE))
