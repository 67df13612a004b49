"""``scripts/make_notebooks.py`` as a module for the tests (``scripts/`` is not a package)."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_make_notebooks():
    """The generator module, loaded once per test session."""
    if "make_notebooks" in sys.modules:
        return sys.modules["make_notebooks"]
    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  ROOT / "scripts" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_notebooks"] = module
    spec.loader.exec_module(module)
    return module
