"""The package's import graph: data flows one way (docs/architecture.md).

Every ``import`` of a hampart module, at module level or inside a function (lazy imports hide
circles from Python but not from here), is read with ``ast``. The graph must have no cycle, and
no module may import one of a higher layer:

    0  errors, keys, allocator, the package root (``__version__``)
    1  io, basis, so3, conventions, blocks, graph     (the bottom: data and geometry)
       testing                                        (test helpers: rotations, structures)
    2  partition, generate, dft                       (partitions; synthetic and DFT datasets)
    3  model
    4  distributed
    5  evaluate
    6  cli, command, inspect, experiments and every ``<area>.commands`` (the command line and
       the experiment scripts' shared code, which drive any)
"""

import ast
import importlib
import sys
from pathlib import Path

import pytest

import hampart

ROOT = Path(hampart.__file__).resolve().parent
TOP = 6
LAYERS = {
    "errors": 0, "keys": 0, "allocator": 0,
    "io": 1, "basis": 1, "so3": 1, "conventions": 1, "blocks": 1, "graph": 1, "testing": 1,
    "partition": 2, "generate": 2, "dft": 2,
    "model": 3,
    "distributed": 4,
    "evaluate": 5,
    "cli": TOP, "command": TOP, "inspect": TOP, "experiments": TOP,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("hampart",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module an imported dotted name lives in (``hampart.graph.radius_graph`` ->
    ``hampart.graph``)."""
    while name not in MODULES:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str) -> set[str]:
    """hampart modules that ``module`` imports anywhere in its file."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import launch` names a module; `from .graph import radius_graph` a symbol
            names = [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        found |= {_resolve(n) for n in names if n == "hampart" or n.startswith("hampart.")}
    found.discard(module)
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    if parts[-1] == "commands":
        return TOP
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module}: give hampart.{parts[1]} a layer in this test")
    return LAYERS[parts[1]]


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer_and_lazy_imports_are_seen():
    for m in MODULES:
        layer(m)
    # a function-level import must count: predict imports the partition package inside one
    assert "hampart.partition" in GRAPH["hampart.evaluate.predict"]
    assert "hampart.distributed.launch" in GRAPH["hampart.distributed.trainer"]  # `from . import`
    # model files are the model's: the trainer and the predictor read them from model.io
    assert "hampart.model.io" in GRAPH["hampart.distributed.trainer"]
    assert "hampart.model.io" in GRAPH["hampart.evaluate.predict"]
    assert not any(m.startswith("hampart.distributed") for m in GRAPH["hampart.model.io"])


def test_every_module_imports():
    """Each module imports on its own (a circle Python cannot resolve would fail here)."""
    for m in sorted(MODULES):
        importlib.import_module(m)


def test_partition_storage_is_apart_from_building():
    """store.py writes, reads and verifies the format; building (build, halo, owners) and
    planning (plan) never import it, and nothing in partition imports the model."""
    for m in ("build", "halo", "owners", "plan", "key"):
        assert "hampart.partition.store" not in GRAPH[f"hampart.partition.{m}"], m
    for m, targets in GRAPH.items():
        if m.startswith("hampart.partition.") and not m.endswith(".commands"):
            assert not any(t.startswith("hampart.model") for t in targets), m
    assert not any(t.startswith("hampart.partition") for t in GRAPH["hampart.model.network"])


def test_no_lower_layer_imports_a_higher_one():
    upward = sorted(f"{m} ({layer(m)}) imports {t} ({layer(t)})"
                    for m, targets in GRAPH.items() for t in targets if layer(t) > layer(m))
    assert not upward, "\n".join(upward)


def test_import_graph_has_no_cycle():
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_the_checker_finds_a_cycle_and_an_upward_import(monkeypatch):
    """The two checks fail on a graph that has what they look for."""
    bad = dict(GRAPH)
    bad["hampart.partition.store"] = GRAPH["hampart.partition.store"] | {"hampart.model.memory"}
    monkeypatch.setattr(sys.modules[__name__], "GRAPH", bad)
    with pytest.raises(AssertionError, match="partition.store .2. imports hampart.model.memory"):
        test_no_lower_layer_imports_a_higher_one()
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_import_graph_has_no_cycle()
