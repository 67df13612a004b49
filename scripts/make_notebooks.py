"""Write the lesson notebooks from the cells listed here, then run them in place.

The notebooks in ``notebooks/`` are generated, never edited by hand: change the
cells below (and the matching episode), then run::

    python scripts/make_notebooks.py                  # every notebook
    python scripts/make_notebooks.py 02-enumeration   # just one
    python scripts/make_notebooks.py --no-execute     # write the cells, keep no outputs

Each notebook is executed top to bottom in a fresh kernel from the ``notebooks/``
folder, as a learner and ``pytest --nbval`` run it, with ``ALMAT_LABELS_DIR`` pointed at
a new temporary folder so that the labeling campaign starts from an empty labels file.
Every ``{: .language-python}`` block of episode ``NN`` must appear in one code cell of
notebook ``NN`` (``tests/test_consistency.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from textwrap import dedent

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SITE = "the lesson website"
#: Per-cell time limit while executing (s).
CELL_TIMEOUT = 600
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: Cells whose output is a live widget: nbval runs them but does not compare their output.
IGNORE_OUTPUT = "nbval-ignore-output"


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(dedent(text).strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def challenge(title: str, hint: str) -> nbformat.NotebookNode:
    """A cell for the learner to complete; it runs as it is (comments only)."""
    lines = [f"# Challenge: {title}"] + [f"# {line}" for line in dedent(hint).strip().splitlines()]
    lines.append("# Write your code here; the solution is in the episode.")
    return code("\n".join(lines))


def header(number: str, title: str, episode: str) -> nbformat.NotebookNode:
    return md(f"""
        # {number}. {title}

        This notebook goes with the episode *{title}* (`_episodes/{episode}.md`).
        Run the cells from top to bottom; the outputs stored here are what you should see.
        Cells marked **Challenge** are for you to complete.
    """)


NOTEBOOKS: dict[str, list[nbformat.NotebookNode]] = {}

NOTEBOOKS["02-enumeration"] = [
    header("2", "Enumerating Li/vacancy orderings", "02-enumeration"),
    md("## The parent structure"),
    code("""
        import almat

        structure = almat.load_parent()
        print(len(structure))
        print(structure.composition)
    """),
    md("## Rounding the occupancy\n\nOccupancy 0.56 cannot be realised in a small cell:"),
    code("""
        try:
            almat.count_orderings(structure, max_cell_size=2)
        except almat.OccupancyError as error:
            print(error)
    """),
    code("""
        half = almat.set_occupancy(structure, 0.5)
        print(half.composition)
    """),
    challenge("Why exactly one half?", """
        How many Li+ ions make one primitive cell (P5+, 5 S2-, Cl-) charge-neutral,
        and which occupancy of the 12 Li sites gives that number?
    """),
    md("## Counting orderings"),
    code("""
        orderings = almat.enumerate_orderings(half, max_cell_size=1)
        print(len(orderings))
    """),
    challenge("From 924 to 48", """
        How many ways are there to choose which 6 of the 12 Li sites hold Li?
        Hint: from math import comb
    """),
    md("## The explosion"),
    code("""
        for size in range(1, 5):
            count = almat.count_orderings(half, max_cell_size=size, min_cell_size=size)
            print(size, f"{count:,}")
    """),
    challenge("Where does the factor come from?", """
        Ignoring symmetry, how many fillings are there at cell size 2 (7 supercells,
        12 Li on 24 sites) and at cell size 3 (13 supercells, 18 Li on 36 sites)?
        Divide by the counts above. Hint: from math import comb
    """),
    md("## A cheap first ranking"),
    code("""
        import numpy as np

        table = almat.enumerate_table(half, max_cell_size=1)
        ewald = almat.ewald_energies(table)  # eV/atom
        ranking = np.argsort(ewald)
        print(ranking[:5])
        print(ewald[ranking[:5]].round(4))
    """),
    code("""
        import matplotlib.pyplot as plt
        from almat.plots import plot_structure

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
        plot_structure(table, left, index=ranking[0], title="lowest Ewald energy")
        plot_structure(table, right, index=ranking[-1], title="highest Ewald energy")
        plt.show()
    """),
    code("""
        from almat.pool import min_li_li

        shortest = np.array([min_li_li(s) for s in orderings])  # Å
        print(np.unique(shortest.round(2), return_counts=True))
        print(shortest[ranking[:5]].round(2))
    """),
    challenge("Is the lowest Ewald energy the ground state?", """
        Give one reason why the ordering with the lowest Ewald energy need not have the
        lowest energy in a real calculation (answer in words).
    """),
]

NOTEBOOKS["03-scoring"] = [
    header("3", "Scoring orderings with CHGNet", "03-scoring"),
    md("We start again from the 48 orderings of episode 2."),
    code("""
        import almat

        half = almat.set_occupancy(almat.load_parent(), 0.5)
        table = almat.enumerate_table(half, max_cell_size=1)
        orderings = table.structures()
    """),
    md("## Scoring the orderings"),
    code("""
        scores = almat.score_structures(orderings)
        scores.round(4).head()
    """),
    code("""
        details = almat.score_structures(orderings[:3], forces=True, stress=True, magmoms=True)
        first = details.iloc[0]
        print(first["forces"].shape, first["stress"].shape, first["magmoms"].shape)
        print(first["forces"][0].round(3), "eV/Å on the first atom")
        print(abs(first["magmoms"]).max().round(3), "μB at most")
    """),
    challenge("Find the lowest orderings", """
        List the three orderings with the lowest energy per atom, and the spread
        (highest minus lowest) in meV/atom.
    """),
    code("""
        import matplotlib.pyplot as plt

        ewald = almat.ewald_energies(table)  # eV/atom
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
        left.hist(scores["energy_per_atom"], bins=20)
        left.set_xlabel("CHGNet energy (eV/atom)")
        right.scatter(ewald, scores["energy_per_atom"])
        right.set_xlabel("Ewald energy (eV/atom)")
        right.set_ylabel("CHGNet energy (eV/atom)")
        plt.show()
    """),
    code("""
        import pandas as pd

        rho = scores["energy_per_atom"].corr(pd.Series(ewald), method="spearman")
        print(round(rho, 3))
    """),
    md("## Traps in the original script"),
    code("""
        try:
            from pymatgen import Structure
        except ImportError as error:
            print("ImportError:", error)
    """),
    code("""
        import warnings

        model = almat.load_chgnet()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a harmless torch warning from inside CHGNet
            prediction = model.predict_structure(orderings[0])
        print(sorted(prediction))
    """),
    code("""
        try:
            energy = prediction["energy"]
        except KeyError as error:
            print("KeyError:", error)
        energy = prediction["e"]  # eV/atom
        print(round(float(energy), 4))
    """),
    challenge("Fix the old script", """
        Rewrite the import and the key of the original lines (see the episode) so that they
        run, and think about whether data/Li6PS5Cl.cif can be scored as it is.
    """),
]


def build(name: str, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, labels_dir: str) -> float:
    """Run every cell in a fresh kernel from notebooks/; return the wall time in seconds."""
    os.environ["ALMAT_LABELS_DIR"] = labels_dir
    # The python3 kernelspec runs `python`: make it this environment's.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                            store_widget_state=False,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"notebooks to build; all of {', '.join(NOTEBOOKS)}")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown notebook(s) {unknown}; choose from {', '.join(NOTEBOOKS)}")
    for name in args.names or list(NOTEBOOKS):
        nb = build(name, NOTEBOOKS[name])
        path = NOTEBOOK_DIR / f"{name}.ipynb"
        if not args.no_execute:
            with tempfile.TemporaryDirectory(prefix="almat-labels-") as labels_dir:
                seconds = execute(nb, labels_dir)
            print(f"{path.relative_to(ROOT)}: ran in {seconds:.0f} s")
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
