"""The module map of docs/architecture.md: no import circle, nothing low imports the facade."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sktail"
#: Modules allowed to import the estimator facade (they sit above it).
ABOVE_THE_FACADE = {"sktail", "sktail.cli", "sktail._demo", "sktail.distributed", "sktail.__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set:
    """Every sktail module ``path`` imports, at the top or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("sktail"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("sktail"))
    return found


def _graph():
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, name) if m in modules and m != name}
    return graph


def test_there_is_no_import_circle():
    graph = _graph()
    # The package face lazily imports everything; leave it out, as Python does for parents.
    graph = {k: {m for m in v if m != "sktail" and not k.startswith(m + ".")} for k, v in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_nothing_low_imports_the_facade_or_the_package_face():
    graph = _graph()
    offenders = {
        name: sorted(m for m in deps if m in ("sktail", "sktail.classifier"))
        for name, deps in graph.items() if name not in ABOVE_THE_FACADE
    }
    assert {k: v for k, v in offenders.items() if v} == {}
