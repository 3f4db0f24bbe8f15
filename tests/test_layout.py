"""The shape of the code: the core library's modules import each other in one direction (no
import cycle, counting imports inside functions), and the core imports no orchestrator: ZenML
lives in steps/ and pipelines/ (the dashboard launcher only starts its server)."""

import ast
from pathlib import Path

from tests.conftest import REPO


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (REPO / package).rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in it but under ``if TYPE_CHECKING``."""
    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # ast.walk has not descended yet: typing-only imports are left out
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        found |= {m for m in map(resolve, targets) if m and m != name}
    # a module always loads its own packages first: naming one (``from photogenic.cli import
    # recipe``) is no arrow back
    return {m for m in found if not name.startswith(m + ".")}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_the_project_has_no_import_cycle():
    modules = {**_modules("photogenic"), **_modules("steps"), **_modules("pipelines")}
    edges = {name: _imports(path, name, modules) for name, path in modules.items()}
    assert _cycles(edges) == []


def test_the_cycle_check_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_library_imports_no_orchestrator():
    offenders = []
    for name, path in _modules("photogenic").items():
        text = path.read_text(encoding="utf-8")
        if name != "photogenic.dashboards" and ("from zenml" in text or "import zenml" in text):
            offenders.append(name)
    assert offenders == []
