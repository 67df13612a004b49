"""Write the lesson notebooks from the cells listed here, then run them in place.

The notebooks in ``notebooks/`` are generated, never edited by hand: change the
cells below (and the matching episode), then run::

    python scripts/make_notebooks.py                  # every notebook
    python scripts/make_notebooks.py 02-enumeration   # just one
    python scripts/make_notebooks.py --no-execute     # write the cells, keep no outputs

Each notebook is executed top to bottom in a fresh kernel, as a learner and
``pytest --nbval`` run it. The kernel starts in an empty temporary folder with
``ALMAT_LABELS_DIR`` unset, so that the labeling campaign starts from an empty
``labels/`` folder and shows the path a learner sees; no notebook reads files relative
to its own folder (the pool and the structure come from the installed package). The
state of the labeling app is saved with the notebook, so that JupyterLab shows a
snapshot of it, rather than "model not found", before the notebook is run.
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


NOTEBOOKS["04-surrogates"] = [
    header("4", "Surrogate models and uncertainty", "04-surrogates"),
    md("## From structures to numbers"),
    code("""
        import almat

        pool = almat.load_pool("li6ps5cl")
        print(pool)
        pool.reference.round(4).head()
    """),
    code("""
        featurizer = almat.ClusterVectorFeaturizer(pool.orderings.parent)
        X = featurizer.transform(pool)
        y = pool.energies  # CHGNet, eV/atom
        print(X.shape)
        print(featurizer.feature_names[:3])
    """),
    challenge("Pairs on a tiny lattice", """
        Four sites on a ring hold +1, +1, -1, -1. What is the average of the product over the
        four nearest-neighbour pairs? And for +1, -1, +1, -1?
    """),
    md("## A Bayesian cluster expansion"),
    code("""
        import numpy as np

        rng = np.random.default_rng(0)
        train = rng.choice(len(pool), size=50, replace=False)
        test = np.setdiff1d(np.arange(len(pool)), train)
        X_train, y_train = X[train], y[train]
        X_test, y_test = X[test], y[test]
    """),
    code("""
        model = almat.BayesianClusterExpansion()
        model.fit(X_train, y_train)
        mu, sigma = model.predict(X_test, return_std=True)
        print(mu[:3].round(4), sigma[:3].round(4))
        print(y_test[:3].round(4))
    """),
    md("## Is the model any good?"),
    code("""
        from almat.plots import plot_parity

        print(round(1000 * np.abs(mu - y_test).mean(), 1), "meV/atom mean absolute error")
        ax = plot_parity(y_test, mu, sigma, xlabel="CHGNet energy (eV/atom)")
    """),
    challenge("Check the calibration", """
        What fraction of the test orderings have an error |y_test - mu| smaller than sigma?
    """),
    md("## A physical descriptor instead"),
    code("""
        lili = almat.LiLiDistanceFeaturizer(pool.orderings.parent)
        X_lili = lili.transform(pool)
        print(lili.feature_names)
        model_lili = almat.BayesianClusterExpansion().fit(X_lili[train], y_train)
        mu_lili, sigma_lili = model_lili.predict(X_lili[test], return_std=True)
        print(round(1000 * np.abs(mu_lili - y_test).mean(), 1), "meV/atom mean absolute error")
    """),
    code("""
        ax = plot_parity(y_test, mu_lili, sigma_lili, xlabel="CHGNet energy (eV/atom)")
    """),
    md("## Pairs, or triplets too?"),
    code("""
        triplets = almat.ClusterVectorFeaturizer(pool.orderings.parent, cutoffs=(6.0, 5.0))
        X_3 = triplets.transform(pool)
        print(X_3.shape)
        print("labels, then MAE with pairs and with pairs and triplets (meV/atom)")
        for n in (20, 50, 200):
            train_n = np.random.default_rng(0).choice(len(pool), size=n, replace=False)
            test_n = np.setdiff1d(np.arange(len(pool)), train_n)
            errors = []
            for features in (X, X_3):
                model_n = almat.BayesianClusterExpansion().fit(features[train_n], y[train_n])
                errors.append(1000 * np.abs(model_n.predict(features[test_n]) - y[test_n]).mean())
            print(n, *np.round(errors, 1))
    """),
    challenge("More data, smaller sigma?", """
        Fit the cluster expansion on 10 and on 200 training orderings instead of 50.
        How do the mean sigma over the test orderings and the error change?
    """),
]

NOTEBOOKS["05-strategies"] = [
    header("5", "Query strategies", "05-strategies"),
    challenge("Choose by hand", """
        For A (mu -4.10, sigma 0.01), B (-4.02, 0.06) and C (-4.08, 0.02) eV/atom, which one
        does uncertainty, greedy and LCB with kappa = 2 pick? almat.STRATEGIES["lcb"] and
        the others take arrays of mu and sigma and return one score per candidate.
    """),
    challenge("Expected improvement at the best energy", """
        What is EI when mu equals the best energy so far? Try
        almat.STRATEGIES["ei"]([-4.1], [0.01], best=-4.1)
    """),
    md("## Running a campaign"),
    code("""
        import almat

        pool = almat.load_pool("li6ps5cl")
        oracle = almat.TableOracle()  # the pool's CHGNet energies, looked up
        campaign = almat.Campaign(pool, oracle, strategy="lcb", seed=0)
        history = campaign.run(20)
        history[["step", "id", "strategy", "mu", "sigma", "label"]].round(4).tail()
    """),
    code("""
        print(campaign)
        print(round(1000 * almat.regret(campaign), 1), "meV/atom above the pool minimum")
    """),
    md("## Comparing strategies"),
    code("""
        curves = almat.compare_strategies(pool, almat.STRATEGIES, seeds=3, n_labels=40, oracle=oracle)
        curves.head(3).round(4)  # regret: best found minus the pool's lowest energy, meV/atom
    """),
    code("""
        found = curves[curves["regret"] == 0].groupby(["strategy", "seed"])["n_labels"].min()
        found.unstack().reindex(list(almat.STRATEGIES))  # labels to the minimum; NaN: not in 40
    """),
    code("""
        from almat.plots import plot_strategy_curves

        ax = plot_strategy_curves(curves, y="regret")
    """),
    challenge("Read the curves", """
        What does a flat stretch of a curve mean? Why do the curves start together?
    """),
    challenge("Try another strategy", """
        Run a campaign with strategy="greedy", seed=0 and 20 labels, and compare it with the
        LCB campaign above: which labels do the two share?
    """),
]

NOTEBOOKS["06-labeling-loop"] = [
    header("6", "You are the oracle: the labeling loop", "06-labeling-loop"),
    md("## The app"),
    code("""
        import almat

        pool = almat.load_pool("li6ps5cl")
        labels = almat.labels_file("06-labeling-loop")
        campaign = almat.Campaign(pool, almat.CHGNetOracle(), strategy="lcb", seed=0,
                                  ledger_path=labels, n_initial=3, budget=30)
        print(campaign.n_labels, "labels resumed from", labels.name)
    """),
    code("""
        app = almat.LabelingApp(campaign)
        app
    """, IGNORE_OUTPUT),
    md("""
        Use the buttons above. The cells below do the same through the app's methods,
        so that the stored outputs show what to expect.
    """),
    code("""
        for _ in range(3):
            print(app.compute().message)
    """),
    code("""
        print(app.submit("-4.25").message)
    """),
    code("""
        for text in ["abc", "-4250"]:
            outcome = app.submit(text)
            print(outcome.ok, outcome.message)
    """),
    code("""
        print(app.undo().message)
        print(app.counter_text())
    """),
    challenge("Be the oracle", """
        Use the app: compute, submit a value, try a refused entry and undo.
    """),
    md("## What the labels file holds"),
    code("""
        print(len(labels.read_text().splitlines()), "lines in", labels.name)
        columns = ["step", "event", "id", "strategy", "label", "labelled_by", "undoes"]
        campaign.history[columns].round(4)
    """),
    code("""
        resumed = almat.Campaign(pool, almat.CHGNetOracle(), strategy="lcb", seed=0,
                                 ledger_path=labels, n_initial=3, budget=30)
        print(resumed)
    """),
    challenge("Restart the kernel", """
        Restart the kernel, run the first two cells again and look at the counters.
    """),
]


def build(name: str, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    for number, cell in enumerate(nb.cells):
        cell.id = f"{name[:2]}-{number:02d}"  # stable ids keep regenerated notebooks' diffs small
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, workdir: str) -> float:
    """Run every cell in a fresh kernel started in ``workdir``; return the wall time in seconds."""
    os.environ.pop("ALMAT_LABELS_DIR", None)
    # The python3 kernelspec runs `python`: make it this environment's.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": workdir}})
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
            with tempfile.TemporaryDirectory(prefix="almat-notebook-") as workdir:
                seconds = execute(nb, workdir)
            print(f"{path.relative_to(ROOT)}: ran in {seconds:.0f} s")
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
