"""The package's import structure: no module imports another module's private names, and
no chain of imports (module level or inside functions) leads from a module back to itself,
so every module can be imported first, alone, in a stdlib-only Pyodide."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "py" / "neuroscope"


def _modules():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name, path, modules):
    """(imported module, [names], line) for each relative import in ``path``."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            yield target, [alias.name for alias in node.names], node.lineno


def test_no_module_imports_another_modules_private_names():
    modules = _modules()
    bad = [f"{modules[name].relative_to(PACKAGE.parent)}:{line} imports {names} from {target}"
           for name in modules for target, names, line in _imports(name, modules[name], modules)
           if target != name and any(n.startswith("_") and not n.startswith("__") for n in names)]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names, _ in _imports(name, path, modules):
            for candidate in [target, *(f"{target}.{n}" for n in names)]:
                if candidate in modules and candidate != name and not name.startswith(candidate + "."):
                    graph[name].add(candidate)
    cycles = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not cycles, "\n".join(cycles[:20])


def test_benchmarks_do_not_import_test_code():
    """bench/ runs without pytest: no benchmark reads tests/ (conftest, fixtures, helpers)."""
    bench = PACKAGE.parent.parent / "bench"
    bad = [f"{path.name}:{number}" for path in sorted(bench.iterdir()) if path.suffix in (".py", ".mjs", ".js")
           for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if "conftest" in line or '"tests"' in line or "'tests'" in line or "tests/" in line
           or "import pytest" in line]
    assert not bad, bad
