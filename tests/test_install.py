"""A wheel installed outside the repository finds its data and carries the lesson's notebooks.

check-setup passes from it, and ``almat notebooks DIR`` writes the notebooks into a fresh folder
where Run All of every notebook works, as for a learner who installed the wheel without a
checkout (no ``ALMAT_LABELS_DIR``: the labeling notebook keeps its labels next to it).
"""

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


def test_the_wheel_holds_every_module_of_the_checkout(installed):
    base, _ = installed
    modules = {p.relative_to(ROOT / "code").as_posix()
               for p in (ROOT / "code" / "almat").rglob("*.py") if "__pycache__" not in p.parts}
    shipped = {p.relative_to(base / "site").as_posix()
               for p in (base / "site" / "almat").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules == shipped


def test_notebooks_copied_from_the_wheel_run_all(installed):
    base, env = installed
    work = base / "my lesson"  # a space, as in many learners' folder names
    out = subprocess.run([sys.executable, "-m", "almat.cli", "notebooks", str(work)],
                         capture_output=True, text=True, cwd=base, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    repository = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in work.iterdir()) == [p.name for p in repository]
    for path in repository:
        assert (work / path.name).read_bytes() == path.read_bytes(), path.name
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import nbformat
        from nbclient import NotebookClient
        for path in sorted(Path({str(work)!r}).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell("import almat; print(almat.__file__)"))
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={{"metadata": {{"path": str(path.parent)}}}}).execute()
            print(path.name, nb.cells[-1].outputs[0]["text"].strip(), flush=True)
    """)
    env = {k: v for k, v in env.items() if k != "ALMAT_LABELS_DIR"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=work, env=env, timeout=1800)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    ran = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert sorted(ran) == [p.name for p in repository]
    for name, module in ran.items():
        assert Path(module).is_relative_to(base / "site"), name
    assert (work / "labels").is_dir()  # the labeling notebook kept its labels beside it
