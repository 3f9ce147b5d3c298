"""The package's layers, checked from its source (``ast``, nothing imported).

    dags                          the DAG factory: app configs -> release DAGs
    airflow                       operators, sensors, triggers, approval, timetable, run notes, plugin
    platforms                     the adapters, implementing release.ports.Platform
    hooks                         the API clients the adapters use (BCS, Prometheus), their retries
    release                       the release model, the lifecycle and the Platform interface it needs
    apps                          app configs: pure data

Imports point down only (or stay within a layer), and no two modules import each other, however
indirectly: an import inside a function counts too, since a lazy import still ties the two
modules together (it only moves the failure to run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "plugins" / "bluegreen"

# bottom to top
LAYERS = ("apps", "release", "hooks", "platforms", "airflow", "dags")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def layer_of(module: str) -> str | None:
    """The layer a module belongs to; None for the package itself (its version, nothing else)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    top = parts[1]
    if top in ("apps", "release", "hooks", "platforms"):
        return top
    if top == "dags":
        return "dags"
    return "airflow"


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                # a package's own __init__ is its level-1 base; a module's is its package
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                # "from . import records" imports a module; "from .model import Plan" a name
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return {name for name in found if name in known and name != module}


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    found = modules(root)
    known = set(found)
    return {name: imported_modules(name, path, known) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one node (Tarjan's algorithm)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[tuple[str, str, str]]]:
    """layer -> {(target layer, importing module, imported module)} across layers."""
    edges: dict[str, set[tuple[str, str, str]]] = {layer: set() for layer in LAYERS}
    for source, targets in graph.items():
        for target in targets:
            a, b = layer_of(source), layer_of(target)
            if a and b and a != b:
                edges[a].add((b, source, target))
    return edges


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} ({a}) imports {target} ({b})"
        for a, edges in layer_graph(graph).items()
        for b, source, target in edges
        if LAYERS.index(b) > LAYERS.index(a)
    )


def airflow_imports(root: Path = PACKAGE_ROOT, layers=("apps", "release")) -> list[str]:
    found = []
    for name, path in modules(root).items():
        if layer_of(name) not in layers:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [f"{name} imports {n}" for n in names if n == "airflow" or n.startswith("airflow.")]
    return found


def platform_accesses(root: Path = PACKAGE_ROOT) -> list[str]:
    """``.platform`` read outside release/ and platforms/ (apps/ is checked by its imports: it
    cannot reach a Release).  ``AppConfig.platform`` is the platform's name, plain data, and
    stays readable as ``app.platform`` / ``<...>.app.platform`` / ``config.platform``; the
    adapter behind a Release is what the layers above must not touch."""
    found = []
    for name, path in modules(root).items():
        if layer_of(name) not in ("airflow", "dags"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Attribute) and node.attr == "platform"):
                continue
            base = node.value
            app_config = (isinstance(base, ast.Name) and base.id in ("app", "config")) or (
                isinstance(base, ast.Attribute) and base.attr == "app"
            )
            if not app_config:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_import_circle_between_modules():
    assert cycles(import_graph()) == []


def test_layers_import_only_downwards():
    graph = import_graph()
    assert upward_imports(graph) == []
    edges = {a: {b for b, _, _ in targets} for a, targets in layer_graph(graph).items()}
    assert cycles(edges) == [], "the layers import each other"


def test_the_app_configs_and_the_release_model_do_not_import_airflow():
    assert airflow_imports() == []


def test_task_classes_reach_the_cluster_only_through_release():
    assert platform_accesses() == []


def test_the_checks_see_the_package():
    """Guards the guards: the scan finds the modules and the imports it is meant to judge."""
    graph = import_graph()
    assert {"bluegreen.operators", "bluegreen.release.steps", "bluegreen.platforms.kubernetes"} <= set(graph)
    assert "bluegreen.release.model" in graph["bluegreen.release.steps"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
