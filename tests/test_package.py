"""The package surface: every advertised name imports, and modules import only earlier stages.

A subpackage (``almat/enumeration/``) is one stage: its modules may import each
other, as long as they form no cycle, while every module outside it imports only
its public ``__init__``.
"""

import ast
import subprocess
import sys
from pathlib import Path

import almat

PIPELINE = ["errors", "files", "journal", "structures", "orderings", "enumeration", "scoring", "relaxation",
            "parallel", "clusters", "features", "pool", "pool_build", "surrogates", "acquisition", "screening",
            "oracles", "labels", "batch_book", "ledger", "batches", "campaign", "dft", "evaluation", "plots", "views", "widget", "notebooks", "cli"]
PACKAGE = Path(almat.__file__).parent
SUBPACKAGES = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def test_every_exported_name_resolves():
    for name in almat.__all__:
        assert getattr(almat, name) is not None, name


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
