"""The import graph of the package: no circles, and no layer imports a layer above it.

Layers, lowest first (see README "For developers"): ``domain`` (pure rules; may import ``localcodex.errors`` only),
``adapters`` (network, files, processes; may import domain), ``core`` (the steps; may import domain and adapters),
``render`` (may import domain), ``wiring`` (builds adapters for the steps), ``commands`` + ``cli`` (anything).
Every import counts, including those inside functions (read with ``ast``, so nothing is imported to check).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "localcodex"

# May import: the layers named here (always also itself).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "domain": {"errors"},
    "paths": {"errors", "domain"},
    "invocation": {"errors", "domain", "paths"},
    "adapters": {"errors", "domain", "paths"},
    "core": {"errors", "domain", "paths", "invocation", "adapters"},
    "render": {"errors", "domain", "paths"},
    "wiring": {"errors", "domain", "paths", "invocation", "adapters", "core"},
    "commands": {"errors", "domain", "paths", "invocation", "adapters", "core", "render", "wiring"},
    "cli": {"errors", "domain", "paths", "invocation", "adapters", "core", "render", "wiring", "commands"},
    "__main__": {"cli"},
    "__init__": set(),
}
# The top package holds only __version__, which every layer may read.
for _allowed in ALLOWED.values():
    _allowed.add("__init__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import of ours in a file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: list[tuple[str, list[str], int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "localcodex"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "localcodex":
                continue
            names = [a.name for a in node.names]
            # `from localcodex.core import bench` imports the module localcodex.core.bench
            modules = [f"{target}.{n}" for n in names if (PKG.parent / f"{target}.{n}".replace(".", "/")).exists()
                       or (PKG.parent / (f"{target}.{n}".replace(".", "/") + ".py")).exists()]
            if modules:
                out += [(m, [], node.lineno) for m in modules]
            else:
                out.append((target, names, node.lineno))
    return out


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def graph() -> dict[str, list[tuple[str, list[str], int]]]:
    return {name: imports_of(path) for name, path in all_modules().items()}


def test_every_module_has_a_layer():
    unknown = sorted({layer_of(m) for m in all_modules()} - set(ALLOWED))
    assert not unknown, f"modules outside any known layer: {unknown}; add them to ALLOWED"


def test_no_layer_imports_a_higher_one():
    bad = []
    for module, imports in graph().items():
        mine = layer_of(module)
        for target, _names, line in imports:
            theirs = layer_of(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                bad.append(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_only_wiring_and_commands_build_live_adapters():
    """Core receives its Ollama client, /v1 client and receipts store; it never builds one from a host string."""
    builders = {"OllamaServer", "OpenAICompatClient", "ReceiptStore", "SetupState"}
    bad = []
    for module, path in all_modules().items():
        if layer_of(module) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in builders:
                    bad.append(f"{module}:{node.lineno} builds {name}")
    assert not bad, "core builds adapters:\n" + "\n".join(bad)


def test_no_private_names_imported_across_modules():
    bad = [f"{module}:{line} imports {n} from {target}"
           for module, imports in graph().items() for target, names, line in imports
           for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    edges = {m: {t for t, _n, _l in imps if t in all_modules()} for m, imps in graph().items()}
    # A package's __init__ importing its own children is not a circle worth reporting.
    for m in edges:
        edges[m] = {t for t in edges[m] if not t.startswith(m + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_core_step_reads_the_process_environment():
    """Steps read the invocation's environment (`Invocation.env`), never `os.environ` or `os.getenv`."""
    bad = []
    for module, path in all_modules().items():
        if layer_of(module) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                    and node.attr in ("environ", "getenv", "putenv"):
                bad.append(f"{module}:{node.lineno} reads os.{node.attr}")
    assert not bad, "\n".join(bad)
