"""The boundaries docs/architecture.md promises, checked on the source itself.

- no module-level import cycles between the project's modules;
- no import of another package's private module (``vidsel.io._probe`` from ``vidsel.codec``);
- the project's own imports at module level (optional third-party packages stay lazy);
- only ``vidsel.io`` imports PyAV (io is the only door to FFmpeg);
- library code raises no bare builtin exceptions (every error is a VidselError / OvisError);
- no module over 600 lines;
- every registry is a :class:`vidsel.registry.Registry`.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vidsel", "ovis_model")
MAX_LINES = 600
#: Builtin exceptions library code must not raise directly.
BARE = {"ValueError", "TypeError", "KeyError", "IndexError", "RuntimeError", "OSError",
        "FileNotFoundError", "NotImplementedError", "AssertionError", "Exception",
        "LookupError", "AttributeError", "IOError", "ImportError"}


def _modules() -> Iterator[tuple[str, Path]]:
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


MODULES = dict(_modules())


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, *, top_level_only: bool) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of a project module."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # imports guarded by `if TYPE_CHECKING:` do not run
        nodes = [n for n in nodes if not (isinstance(n, ast.If) and "TYPE_CHECKING"
                                          in ast.dump(n.test))]
        extra = [c for n in nodes if isinstance(n, (ast.Try, ast.If)) for c in ast.walk(n)]
        nodes = nodes + extra
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            if target.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else target), node.lineno


#: Modules that subclass a class of another library, loaded only by that library (lmms-eval
#: imports its model class by path): {module: the library}. Checked when the library is here.
PLUGIN_MODULES = {"vidsel.integrations._lmms_model": "lmms_eval"}


def _import(module: str) -> object | None:
    """The module, or None for a plug-in module whose library is not installed."""
    import importlib
    import importlib.util

    lib = PLUGIN_MODULES.get(module)
    if lib is not None and importlib.util.find_spec(lib) is None:
        return None
    return importlib.import_module(module)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _ in _imports(module, path, top_level_only=True):
            # importing a.b.c runs a and a.b first
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in MODULES and name != module:
                    graph[module].add(name)
    return graph


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            # a package importing its own submodules is the normal re-export pattern
            if n.startswith(m + "."):
                continue
            if state.get(n) == 1:
                cycles.append([*stack[stack.index(n):], n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    real = [c for c in cycles if not all(b.startswith(a + ".") or a.startswith(b + ".")
                                         for a, b in itertools.pairwise(c))]
    assert not real, "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)


def _package_of(module: str) -> str:
    """The package a module belongs to (a module of a package, or the package itself)."""
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


def test_no_private_imports_across_packages() -> None:
    bad = []
    for module, path in MODULES.items():
        own = _package_of(module)
        for target, line in _imports(module, path, top_level_only=False):
            parts = target.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])  # the package holding the private module
                    # private modules are private to their package and its subpackages
                    if not (own == owner or own.startswith(owner + ".")):
                        bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
                    break
    assert not bad, "\n".join(bad)


def test_project_imports_at_module_level() -> None:
    bad = []
    for _module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                local = (isinstance(node, ast.ImportFrom) and bool(
                    node.level or (node.module or "").split(".")[0] in PACKAGES))
                local |= isinstance(node, ast.Import) and any(
                    a.name.split(".")[0] in PACKAGES for a in node.names)
                if local:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "function-local imports of project modules:\n" + "\n".join(bad)


def test_only_io_imports_pyav() -> None:
    bad = []
    for module, path in MODULES.items():
        if module.startswith("vidsel.io"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            if any(n == "av" or n.startswith("av.") for n in names):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "PyAV used outside vidsel.io:\n" + "\n".join(bad)


def _resolve_raised(mod: object, expr: ast.expr) -> object:
    """The object a ``raise`` expression names (``X``, ``X(...)``, ``a.b.X(...)``), or None
    when it is a local variable or cannot be resolved statically."""
    node = expr.func if isinstance(expr, ast.Call) else expr
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    import builtins

    obj = getattr(mod, node.id, getattr(builtins, node.id, None))
    for attr in chain:
        obj = getattr(obj, attr, None)
    return obj


def test_library_raises_only_project_errors() -> None:
    """Every exception class raised by library code derives from VidselError (OvisError is
    one), whatever name it is raised under; no ``assert`` stands in for an error."""

    from vidsel.errors import VidselError

    bad = []
    for module, path in MODULES.items():
        mod = _import(module)
        if mod is None:
            continue
        tree = ast.parse(path.read_text())
        # a module's or class's __getattr__ must raise AttributeError (the attribute protocol)
        allowed = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                   and f.name == "__getattr__" for n in ast.walk(f)}
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                bad.append(f"{where}:{node.lineno} uses assert (disabled by python -O)")
            if not isinstance(node, ast.Raise) or node.exc is None or id(node) in allowed:
                continue
            obj = _resolve_raised(mod, node.exc)
            if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(
                    obj, VidselError):
                bad.append(f"{where}:{node.lineno} raises {obj.__name__}")
    assert not bad, "exceptions that are not VidselErrors:\n" + "\n".join(bad)


#: (file, function) pairs allowed to import by name at run time: the package's lazy
#: submodules, optional third-party packages, plugins, and the deprecated Selection adapters
#: (removed in 0.3).
IMPORTLIB_ALLOWED = {
    ("vidsel/__init__.py", "__getattr__"), ("vidsel/optional.py", "require"),
    ("vidsel/methods/_plugins.py", "load_plugins"),
    ("vidsel/results/_selection.py", "_adapter"),
    # model specs name user code (py:module:function), as plugins do
    ("vidsel/eval/_answerer.py", "_import_target"),
}


def test_no_run_time_imports_by_name() -> None:
    bad = []
    for _, path in MODULES.items():
        rel = str(path.relative_to(ROOT))
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("import_module", "__import__")
                        and (rel, fn.name) not in IMPORTLIB_ALLOWED):
                    bad.append(f"{rel}:{node.lineno} in {fn.name}()")
    assert not bad, "imports by name hide the call graph:\n" + "\n".join(bad)


def test_no_plain_dict_registries() -> None:
    """A public module-level ALL_CAPS dict of name -> callable is a registry of pluggable
    strategies: use Registry. (Private dispatch tables, ``_NAME``, are implementation.)"""

    bad = []
    for module in MODULES:
        mod = _import(module)
        if mod is None:
            continue
        for name, value in vars(mod).items():
            if (name.isupper() and not name.startswith("_") and type(value) is dict and len(value) >= 2
                    and all(isinstance(k, str) for k in value)
                    and all(callable(v) for v in value.values())):
                bad.append(f"{module}.{name}")
    assert not bad, "plain dicts used as registries:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (> {MAX_LINES}): split it by job"


def test_every_registry_is_a_registry() -> None:
    import ovis_model.attention as attention
    import vidsel.cli as cli
    import vidsel.embed as embed
    import vidsel.io as io
    import vidsel.methods as methods
    import vidsel.select as select
    from vidsel.registry import Registry

    found = {}
    for mod in (io, methods, select, embed, cli, attention):
        for sub in [mod, *(getattr(mod, n) for n in dir(mod) if n.startswith("_")
                           and type(getattr(mod, n)).__name__ == "module")]:
            for name in dir(sub):
                if isinstance(getattr(sub, name, None), Registry):
                    found[getattr(sub, name).kind] = getattr(sub, name)
    import vidsel.runs._executors

    for name in dir(vidsel.runs._executors):
        obj = getattr(vidsel.runs._executors, name)
        if isinstance(obj, Registry):
            found[obj.kind] = obj
    kinds = set(found)
    for expected in ("method", "backend", "selector", "embedder", "executor", "command",
                     "attn_impl"):
        assert any(expected in k for k in kinds), (expected, sorted(kinds))
