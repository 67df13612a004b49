"""A wheel installed outside the repository finds its data: check-setup and notebook 02 run from it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build almat's wheel and install it, without dependencies, into a folder outside the repo."""
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(base / "dist"), str(ROOT)], check=True, cwd=base)
    wheel = next((base / "dist").glob("almat-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(base / "site"), str(wheel)], check=True, cwd=base)
    env = {**os.environ, "PYTHONPATH": str(base / "site")}
    return base, env


def test_the_wheel_is_what_runs_and_check_setup_passes(installed):
    base, env = installed
    where = subprocess.run([sys.executable, "-c", "import almat; print(almat.__file__)"],
                           capture_output=True, text=True, check=True, cwd=base, env=env)
    assert Path(where.stdout.strip()).is_relative_to(base / "site")
    out = subprocess.run([sys.executable, "-m", "almat.cli", "check-setup"], capture_output=True,
                         text=True, cwd=base, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Shipped pool loads: 630 orderings" in out.stdout


def test_notebook_02_runs_from_the_wheel(installed):
    base, env = installed
    script = textwrap.dedent(f"""
        import nbformat
        from nbclient import NotebookClient
        nb = nbformat.read({str(ROOT / "notebooks" / "02-enumeration.ipynb")!r}, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell("import almat; print(almat.__file__)"))
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={{"metadata": {{"path": {str(base)!r}}}}}).execute()
        print(nb.cells[-1].outputs[0]["text"].strip())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=base, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert Path(out.stdout.strip().splitlines()[-1]).is_relative_to(base / "site")
