"""The package surface: every advertised name imports, and modules import only earlier stages.

A subpackage (``almat/enumeration/``) is one stage: its modules may import each
other, as long as they form no cycle, while every module outside it imports only
its public ``__init__``.
"""

import ast
import builtins
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import almat

PIPELINE = list(almat.PIPELINE)  # the one record of the module order; the tests below check it
PACKAGE = Path(almat.__file__).parent
SUBPACKAGES = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def test_every_exported_name_resolves():
    for name in almat.__all__:
        assert getattr(almat, name) is not None, name


def _type_checking_imports() -> list[tuple[str, str, str | None]]:
    """(module, name, alias) of each import under ``if TYPE_CHECKING:`` in almat/__init__.py, in order."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    blocks = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    assert len(blocks) == 1
    assert all(isinstance(node, ast.ImportFrom) for node in blocks[0].body)
    return [(node.module, alias.name, alias.asname) for node in blocks[0].body for alias in node.names]


def test_exports_are_static_imports_in_pipeline_order():
    # What a type checker reads (the TYPE_CHECKING block) is exactly what almat exports at run time,
    # each name re-exported explicitly (``X as X``), module by module in pipeline order.
    imports = _type_checking_imports()
    assert sorted(name for _, name, _ in imports) == almat.__all__
    assert all(alias == name for _, name, alias in imports), [i for i in imports if i[1] != i[2]]
    stages = [module.split(".")[1] for module, _, _ in imports]
    assert all(module.startswith("almat.") for module, _, _ in imports)
    assert stages == sorted(stages, key=PIPELINE.index), stages
    for module, name, _ in imports:
        assert getattr(importlib.import_module(module), name) is getattr(almat, name), name


def test_a_mistyped_name_suggests_the_right_one():
    with pytest.raises(AttributeError, match=r"no attribute 'count_ordering'; did you mean 'count_orderings'\?"):
        almat.count_ordering
    with pytest.raises(AttributeError) as err:
        almat.zzz_not_there
    assert "did you mean" not in str(err.value)
    assert not hasattr(almat, "count_ordering")


def _almat_imports(path: Path) -> set[str]:
    """Dotted names of the almat modules ``path`` imports, without the leading ``almat.``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("almat."):
            found.add(node.module.split(".", 1)[1])
        if isinstance(node, ast.Import):
            found |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("almat.")}
    return found


def _stage_files() -> dict[str, list[Path]]:
    """Each stage and its files: one module, or every module of a subpackage."""
    stages = {p.stem: [p] for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    stages.update({name: sorted((PACKAGE / name).glob("*.py")) for name in SUBPACKAGES})
    return stages


def test_modules_import_only_earlier_stages():
    stages = _stage_files()
    assert set(stages) == set(PIPELINE), "add new modules to PIPELINE in their place"
    for stage in PIPELINE:
        later = set(PIPELINE[PIPELINE.index(stage) + 1:])
        for path in stages[stage]:
            assert not ({name.split(".")[0] for name in _almat_imports(path)} & later), path


def test_outside_a_subpackage_only_its_init_is_imported():
    for stage, paths in _stage_files().items():
        for path in paths:
            for name in _almat_imports(path):
                top, _, inner = name.partition(".")
                assert top not in SUBPACKAGES or top == stage or not inner, f"{path} imports almat.{name}"


def test_subpackage_modules_form_no_cycle():
    for package in SUBPACKAGES:
        modules = {p.stem: p for p in (PACKAGE / package).glob("*.py") if p.stem != "__init__"}
        graph = {m: {name.split(".")[1] for name in _almat_imports(p)
                     if name.startswith(f"{package}.")} for m, p in modules.items()}
        assert all(m in modules for deps in graph.values() for m in deps), graph
        done: list[str] = []  # Kahn's algorithm: a cycle leaves modules that never become free
        free = [m for m, deps in graph.items() if not deps]
        while free:
            m = free.pop()
            done.append(m)
            free += [o for o, deps in graph.items() if o not in done and o not in free and deps <= set(done)]
        assert set(done) == set(modules), f"import cycle among {sorted(set(modules) - set(done))}"


def _floors() -> dict[str, int]:
    """Floor of each stage in the import graph: 0 without almat imports, else one above its highest."""
    stages = _stage_files()
    imports = {s: {name.split(".")[0] for path in stages[s] for name in _almat_imports(path)} - {s}
               for s in PIPELINE}
    floors: dict[str, int] = {}
    for stage in PIPELINE:  # earlier stages first, so every import has its floor already
        floors[stage] = 1 + max((floors[m] for m in imports[stage]), default=-1)
    return floors


def test_pool_is_only_data_low_in_the_import_graph():
    floors = _floors()
    assert floors["errors"] == 0
    assert floors["pool"] <= 4, floors
    tree = ast.parse((PACKAGE / "pool.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    heavy = {"dask", "distributed", "chgnet", "torch", "almat.enumeration", "almat.features",
             "almat.parallel", "almat.scoring", "almat.relaxation"}
    assert not {m for m in imported if m in heavy or m.split(".")[0] in heavy}, imported


def test_loading_a_pool_loads_neither_dask_nor_chgnet():
    code = ("import sys, almat; almat.load_pool(); "
            "print(sorted(m for m in ('dask', 'distributed', 'chgnet', 'torch', 'almat.enumeration', "
            "'almat.features', 'almat.parallel') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


#: Built-in exceptions the package may raise by name, and why none of them is a refusal of bad input.
BUILTIN_RAISES_ALLOWED = {
    ("__init__.py", "AttributeError"): "the module __getattr__ protocol",
    ("enumeration/counting.py", "ArithmeticError"): "a broken invariant (a bug), not bad input",
    ("enumeration/walk.py", "ArithmeticError"): "a broken invariant (a bug), not bad input",
    ("journal.py", "OSError"): "a short write, caught at once and re-raised as the journal's error",
}


def test_every_deliberate_refusal_is_an_almat_error():
    """No ``raise ValueError(...)``/``TypeError``/... in the package: refusals derive from AlmatError."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(raised, ast.Name) and isinstance(getattr(builtins, raised.id, None), type):
                    found.add((path.relative_to(PACKAGE).as_posix(), raised.id, node.lineno))
    assert {(path, name) for path, name, _ in found} <= set(BUILTIN_RAISES_ALLOWED), sorted(found)


#: Where the number 2.0 may appear in code or messages, and what it is there (not the Li-Li cutoff).
TWO_ALLOWED = {
    "structures.py": "MIN_LI_LI itself, the cutoff's one home",
    "acquisition.py": "the default kappa of the lower confidence bound",
    "features.py": "the default shell edges of LiLiDistanceFeaturizer, 0-2-3-4-5 Å",
}


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def test_the_li_li_cutoff_has_one_home():
    """2.0 (Å) is written once, as structures.MIN_LI_LI; code and messages use the constant."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in skip:
                continue
            if (type(node.value) is float and node.value == 2.0) or (
                    isinstance(node.value, str) and re.search(r"(?<![\d.])2\.0(?![\d])", node.value)):
                found.add((path.relative_to(PACKAGE).as_posix(), node.lineno))
    assert {path for path, _ in found} <= set(TWO_ALLOWED), sorted(found)
