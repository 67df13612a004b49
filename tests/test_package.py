"""The package surface: every advertised name imports, and modules import only earlier stages."""

import ast
import subprocess
import sys
from pathlib import Path

import almat

PIPELINE = ["errors", "files", "structures", "orderings", "exclusion", "hnf", "hart_forcade", "enumeration", "scoring", "relaxation",
            "parallel", "features",
            "pool", "pool_build", "surrogates", "acquisition", "screening", "oracles", "ledger", "campaign", "dft", "evaluation", "plots",
            "widget", "cli"]
PACKAGE = Path(almat.__file__).parent


def test_every_exported_name_resolves():
    for name in almat.__all__:
        assert getattr(almat, name) is not None, name


def _almat_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("almat."):
            found.add(node.module.split(".")[1])
    return found


def test_modules_import_only_earlier_stages():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(PIPELINE), "add new modules to PIPELINE in their place"
    for module in PIPELINE:
        later = set(PIPELINE[PIPELINE.index(module) + 1:])
        assert not (_almat_imports(PACKAGE / f"{module}.py") & later), module


def _floors() -> dict[str, int]:
    """Floor of each module in the import graph: 0 without almat imports, else one above its highest."""
    imports = {m: _almat_imports(PACKAGE / f"{m}.py") for m in PIPELINE}
    floors: dict[str, int] = {}
    for module in PIPELINE:  # earlier stages first, so every import has its floor already
        floors[module] = 1 + max((floors[m] for m in imports[module]), default=-1)
    return floors


def test_pool_is_only_data_low_in_the_import_graph():
    floors = _floors()
    assert floors["errors"] == 0
    assert floors["pool"] <= 4, floors
    tree = ast.parse((PACKAGE / "pool.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    heavy = {"dask", "distributed", "chgnet", "torch", "almat.enumeration", "almat.hart_forcade",
             "almat.features", "almat.parallel", "almat.scoring", "almat.relaxation"}
    assert not {m for m in imported if m in heavy or m.split(".")[0] in heavy}, imported


def test_loading_a_pool_loads_neither_dask_nor_chgnet():
    code = ("import sys, almat; almat.load_pool(); "
            "print(sorted(m for m in ('dask', 'distributed', 'chgnet', 'torch', 'almat.enumeration', "
            "'almat.features', 'almat.parallel') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
