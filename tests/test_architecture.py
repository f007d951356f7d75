"""The package's import graph: no cycles, counting imports inside functions.

Imports are read with ``ast`` from the source (nothing is imported), so an import hidden in a
function body counts as much as one at the top of a module. ``from convlstm.a import b`` is an
edge to ``convlstm.a.b`` when that is a module, else to ``convlstm.a``. The implicit import of a
parent package (``convlstm/__init__.py``, the public API that imports everything) is not an edge.
"""

import ast
import inspect
import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "convlstm"


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """The package modules that ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in MODULES)
    found.discard(name)
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walk_sees_function_level_imports():
    # Sequential.save_keras imports convlstm.keras inside the method
    assert "convlstm.keras" in GRAPH["convlstm.models"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_registry_is_a_leaf():
    assert GRAPH["convlstm.registry"] == set()


# The rows of README's Architecture table: each module's row, and the rows it may import from.
ROWS = {
    "convlstm._validation": 0,
    "convlstm._files": 0,
    "convlstm.limits": 0,
    "convlstm._version": 0,
    "convlstm.registry": 0,
    "convlstm.functional": 1,
    "convlstm.initializers": 2,
    "convlstm.losses": 2,
    "convlstm.optimizers": 2,
    "convlstm.callbacks": 2,
    "convlstm.fit_arguments": 2,
    "convlstm.metrics": 2,
    "convlstm.training_metrics": 2,
    "convlstm.layers": 3,
    "convlstm.saving": 4,
    "convlstm.keras": 4,
    "convlstm.onnx": 4,
    "convlstm.models": 5,
    "convlstm.data": 6,
    "convlstm.figures": 6,
    "convlstm.datasets": 6,
    "convlstm.demo": 6,
    "convlstm.forecasting": 6,
    "convlstm.pretrained": 6,
    "convlstm.console": 6,
    "convlstm.distributed": 6,
    "convlstm.cli": 7,
    "convlstm.arguments": 7,
    "convlstm.runs": 7,
    "convlstm.__main__": 7,
}
MAY_IMPORT = {0: set(), 1: {1}, **{row: set(range(row + 1)) for row in range(2, 7)}}
README = Path(__file__).resolve().parents[1] / "README.md"


def row_of(module: str) -> int | None:
    """The module's row (by its package for modules inside functional/, layers/, keras/);
    None for the package itself, the public API on top of everything."""
    for prefix in sorted(ROWS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return ROWS[prefix]
    assert module == "convlstm", f"{module} is in no row of README's Architecture table"
    return None


def test_every_module_imports_only_from_its_row_or_above():
    upward = [
        f"{module} (row {row_of(module)}) imports {target} (row {row_of(target)})"
        for module, targets in GRAPH.items()
        if row_of(module) in MAY_IMPORT
        for target in targets
        if row_of(target) not in MAY_IMPORT[row_of(module)]
    ]
    assert upward == [], "\n".join(upward)


def test_the_readme_table_lists_every_module_in_its_row():
    lines = [line for line in README.read_text().splitlines() if line.startswith("| ")]
    table = {int(line[2]): line for line in lines if line[2].isdigit() and line[3] == "."}
    for module, row in ROWS.items():
        name = module.removeprefix("convlstm.")
        assert f"`{name}`" in table[row] or f"`{name}/`" in table[row], (module, row)


def test_the_names_table_uses_the_constructors_names():
    from convlstm import Conv2D, ConvLSTM2D, Dense, MaxPooling3D
    from convlstm._validation import KERAS_NAMES

    section = README.read_text().split("### Names", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[2:4] for line in section.splitlines() if line.startswith("| ")]
    public = {name for cell in rows[2:] for name in re.findall(r"`(\w+)`", "".join(cell))}
    signatures = {
        name
        for cls in (ConvLSTM2D, MaxPooling3D, Conv2D, Dense)
        for name in inspect.signature(cls).parameters
    }
    # The seed's layers also take Keras' names, each beside the seed's name it stands for.
    aliases = {keras for keras, seed in KERAS_NAMES.items() if seed in signatures}
    assert public and public <= signatures | aliases, public - signatures - aliases
    assert set(KERAS_NAMES) <= public and set(KERAS_NAMES.values()) <= public


def test_no_module_over_600_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in lengths.items() if n > 600} == {}
