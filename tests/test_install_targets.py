"""A learner's install needs no compiler on any laptop of the room.

``pip install -e .`` resolves the core dependencies of ``pyproject.toml``. On each target
platform and Python, uv resolves them twice from PyPI: as pip would (the newest versions
that fit) and with every package that is not pure Python allowed only as a wheel. The two
must agree: then pip, too, finds a wheel for every compiled package and builds only
pure-Python source distributions (:data:`PURE_PYTHON_SDISTS`), which need no compiler.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.specifiers import SpecifierSet

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: (uv's platform name, what a learner calls it).
PLATFORMS = [("x86_64-manylinux_2_28", "Linux x86-64"), ("x86_64-pc-windows-msvc", "Windows x86-64"),
             ("aarch64-apple-darwin", "macOS arm64")]
PYTHONS = ["3.11", "3.12"]
#: Dependencies published only as source, in pure Python: building them needs no compiler.
PURE_PYTHON_SDISTS = ("nvidia-ml-py3", "bibtexparser")

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="uv is in the [test] extra")


def _compile(platform: str, python: str, wheels_only: bool) -> dict[str, str]:
    """The pinned versions uv resolves for the core dependencies, by package name."""
    command = ["uv", "pip", "compile", str(ROOT / "pyproject.toml"), "--python-platform", platform,
               "--python-version", python, "--no-header", "--no-annotate", "--quiet"]
    if wheels_only:
        command += ["--only-binary", ":all:"]
        for name in PURE_PYTHON_SDISTS:
            command += ["--no-binary", name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (f"{platform} Python {python}"
                                  f"{' with wheels only' if wheels_only else ''}:\n{done.stderr}")
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", done.stdout, flags=re.M))
    return {name.lower().replace("_", "-"): version for name, version in pins.items()}


@pytest.fixture(scope="module")
def resolutions() -> dict[tuple[str, str, bool], dict[str, str]]:
    """Every resolution at once: uv spends its time waiting for PyPI, not computing."""
    cases = [(p, v, w) for p, _ in PLATFORMS for v in PYTHONS for w in (False, True)]
    with ThreadPoolExecutor(len(cases)) as pool:
        return dict(zip(cases, pool.map(lambda case: _compile(*case), cases)))


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform,name", PLATFORMS, ids=[p[1] for p in PLATFORMS])
def test_every_compiled_dependency_comes_as_a_wheel(resolutions, platform, name, python):
    as_pip_would = resolutions[platform, python, False]
    wheels_only = resolutions[platform, python, True]
    assert {"chgnet", "torch", "numba", "pymatgen", "jupyterlab"} <= set(as_pip_would)
    assert "icet" not in as_pip_would, "icet compiles C++: it belongs in the 'reference' extra"
    differ = {k: (as_pip_would.get(k), wheels_only.get(k))
              for k in set(as_pip_would) | set(wheels_only) if as_pip_would.get(k) != wheels_only.get(k)}
    assert not differ, (f"On {name} with Python {python}, pip would build these from source "
                        f"(newest version, wheels-only version): {differ}")


def test_pip_refuses_pythons_without_wheels_before_any_build():
    """pip checks requires-python first: on Python 3.13 it stops with one line, building nothing."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = SpecifierSet(project["requires-python"])
    assert [v for v in ("3.10", "3.11", "3.12", "3.13", "3.14") if v in allowed] == PYTHONS
