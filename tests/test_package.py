"""The package surface: every advertised name imports, and modules import only earlier stages."""

import ast
from pathlib import Path

import almat

PIPELINE = ["errors", "files", "structures", "orderings", "exclusion", "hnf", "hart_forcade", "enumeration", "scoring", "relaxation",
            "parallel", "features",
            "pool", "surrogates", "acquisition", "screening", "oracles", "ledger", "campaign", "evaluation", "plots",
            "views", "widget", "cli"]
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
