"""ovis_model's boundaries: its own error tree, module-level project imports, no import cycle,
vidsel's public API only, modules under 600 lines."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

import ovis_model
import vidsel.errors
from ovis_model import errors

PACKAGE = Path(ovis_model.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
#: vidsel's base helpers shared by both packages (docs/architecture.md, "base"): deprecated
#: aliases for renamed names.
VIDSEL_BASE: set[str] = set()
BUILTIN_EXCEPTIONS = {name for name, obj in vars(builtins).items()
                      if isinstance(obj, type) and issubclass(obj, BaseException)}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_error_tree():
    assert issubclass(errors.OvisError, vidsel.errors.VidselError)
    for cls, vidsel_cls, builtin in (
            (errors.InvalidArgumentError, vidsel.errors.InvalidArgumentError, ValueError),
            (errors.MissingDependencyError, vidsel.errors.MissingDependencyError, ImportError),
            (errors.ModelNotAvailableError, vidsel.errors.ModelNotAvailableError, OSError),
            (errors.CheckpointError, vidsel.errors.VidselError, ValueError)):
        assert issubclass(cls, errors.OvisError) and issubclass(cls, vidsel_cls)
        assert issubclass(cls, builtin)
    assert ovis_model.CheckpointError is errors.CheckpointError
    from ovis_model.checkpoint import CheckpointError

    assert CheckpointError is errors.CheckpointError


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_rules(path):
    tree = _tree(path)
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 600
    for node in ast.walk(tree):
        # every raise is from ovis_model.errors, never a bare builtin
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name):
                assert exc.id not in BUILTIN_EXCEPTIONS, f"{path.name}:{node.lineno} raises {exc.id}"
        # vidsel's public API only
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "vidsel" and node.module not in VIDSEL_BASE:
                assert not any(p.startswith("_") for p in parts), f"{path.name}: {node.module}"
                assert not any(a.name.startswith("_") for a in node.names), path.name
            if path.name != "errors.py":
                assert node.module != "vidsel.errors", f"{path.name}: use ovis_model.errors"
    # project imports at module level only
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom):
                own = node.level > 0 or (node.module or "").split(".")[0] in ("vidsel",
                                                                              "ovis_model")
                assert not own, f"{path.name}:{node.lineno} imports {node.module} in a function"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in ("vidsel", "ovis_model"), path.name


def _own_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
    return out


def test_no_import_cycles():
    graph = {p.stem: _own_imports(p) for p in MODULES}
    assert "modeling" not in graph["checkpoint"]  # checkpoint sits below modeling
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        assert state.get(name) != 1, f"import cycle: {' -> '.join([*stack, name])}"
        state[name] = 1
        for dep in graph.get(name, ()):
            visit(dep, [*stack, name])
        state[name] = 2

    for name in graph:
        visit(name, [])


def test_import_without_the_model_extra_names_it(run_without):
    """Without torch (the ``model`` extra), ``import ovis_model`` says what to install."""
    res = run_without(("torch", "transformers", "safetensors"), """
        from vidsel.errors import MissingDependencyError
        try:
            import ovis_model
        except MissingDependencyError as exc:
            print(exc)
    """, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ovis_model needs torch: pip install 'vidsel[model]'"


def test_flash_attention_llm_without_flash_attn_names_the_extra(run_without):
    """Optional kernels go through the one ``require`` helper: the message names the extra."""
    proc = run_without(("flash_attn",), """
        from ovis_model import MissingDependencyError, preset
        from ovis_model.modeling import build_llm
        try:
            build_llm(preset("tiny"), attn_impl="flash_attention_2")
        except MissingDependencyError as e:
            print(e)
        """)
    assert proc.stdout.strip() == ("llm_attn_impl='flash_attention_2' needs flash-attn: "
                                   "pip install 'vidsel[gpu]'"), proc.stderr
