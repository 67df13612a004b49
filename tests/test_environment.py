"""environment.yml (conda learners) and pyproject.toml (pip learners) ask for the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", req.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def _conda():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return env, conda, pip


def test_pip_section_is_the_learners_install():
    """The core dependencies only: no maintainers' extras, so nothing needs a compiler."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_norm(r) for r in project["dependencies"])
    _, _, pip = _conda()
    listed = dict(_norm(r) for r in pip if not r.startswith("-"))
    assert listed == wanted
    assert "-e ." in pip  # the package itself


def test_conda_side_has_a_supported_python_and_solves_without_enumlib():
    env, conda, _ = _conda()
    assert env["name"] == "almat"
    assert "conda-forge" in env["channels"]
    assert "python=3.12" in conda
    # conda-forge builds enumlib for linux-64 and osx-64 only; listing it would make the
    # environment unsolvable elsewhere. setup.md gives it as an optional extra step.
    assert not any(dep.split("=")[0] == "enumlib" for dep in conda)
    setup = (ROOT / "setup.md").read_text()
    assert "mamba install -n almat -c conda-forge enumlib" in setup
