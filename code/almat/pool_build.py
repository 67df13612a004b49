"""Building pools: enumerate the allowed orderings, relax them on Dask, score and save them.

``almat build-pool`` runs :func:`build_pool`. A :class:`~almat.pool.Pool` is
only data; everything that computes one (the enumerator, CHGNet, Dask, the
Li-Li distances) lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from almat.orderings import Orderings
from almat.pool import POOL_DIR, Pool, PoolError, save_pool
from almat.relaxation import RelaxSettings, settings_dict
from almat.structures import MIN_LI_LI, min_li_li


def shortest_distances(orderings: Orderings, cutoff: float = 5.0) -> np.ndarray:
    """Shortest distance (Å) between occupied disordered sites of every ordering, from the table.

    Vectorised over rows (all 395,632 cell-size-2 orderings in seconds); the rare
    ordering with no pair closer than ``cutoff`` is built and measured with
    :func:`min_li_li`, so the result equals :func:`min_li_li` of every structure.
    """
    from almat.features import LiLiDistanceFeaturizer

    out = LiLiDistanceFeaturizer(orderings.parent, edges=(0.0, cutoff)).transform(orderings)[:, -1]
    for i in np.flatnonzero(out >= cutoff):
        out[i] = min_li_li(orderings.structure(int(i)))
    return out


def make_pool(orderings: Orderings, energies: Sequence[float] | None = None,
              name: str = "pool", ids: Sequence[str] | None = None) -> Pool:
    """Build a pool in memory from an orderings table and optional reference energies.

    Parameters
    ----------
    orderings
        The candidates.
    energies
        Reference energy per atom (eV/atom) of each candidate; NaN if unknown.
    name
        Name of the pool.
    ids
        Identifiers; ``c{cell size}-{row:06d}`` by default.
    """
    sizes = orderings.cell_sizes
    if ids is None:
        ids = [f"c{s}-{i:06d}" for i, s in enumerate(sizes)]
    e = np.full(len(orderings), np.nan) if energies is None else np.asarray(energies, dtype=float)
    ref = pd.DataFrame({
        "cell_size": sizes,
        "energy_per_atom": e,
        "min_li_li": shortest_distances(orderings).round(4),
    }, index=pd.Index(list(ids), name="id"))
    return Pool(name, orderings, ref)


def _provenance_versions() -> dict:
    import platform

    import chgnet
    import pymatgen.core
    import torch

    return {"almat": _version(), "chgnet": chgnet.__version__, "torch": torch.__version__,
            "pymatgen": pymatgen.core.__version__, "python": platform.python_version()}


def allowed_orderings(cell_sizes: Sequence[int], min_distance: float = MIN_LI_LI) -> Orderings:
    """Every Li6PS5Cl ordering (Li:vacancy 1:1 on 48h) with no two Li closer than ``min_distance``."""
    from almat.enumeration import enumerate_table
    from almat.structures import load_parent, set_occupancy

    half = set_occupancy(load_parent(), 0.5)
    return enumerate_table(half, max(cell_sizes), min(cell_sizes), min_distance=min_distance)


def _ids(table: Orderings) -> list[str]:
    sizes = table.cell_sizes
    seen: dict[int, int] = {}
    ids = []
    for s in sizes:
        ids.append(f"c{s}-{seen.get(int(s), 0):06d}")
        seen[int(s)] = seen.get(int(s), 0) + 1
    return ids


def check_target(directory: Path, names: Sequence[str], replace_shipped: bool) -> None:
    """Refuse to write pool files into the shipped data unless asked to."""
    if directory.resolve() == POOL_DIR.resolve() and not replace_shipped:
        existing = [n for n in names if (directory / f"{n}.npz").exists()]
        if existing:
            raise PoolError(
                f"{directory} holds the shipped pool(s) {', '.join(existing)}; building would "
                "replace them and make existing labels files unusable. Give another --out, or "
                "--replace-shipped if you mean to regenerate the lesson's data.")


def build_pool(directory: str | Path = "pools", cell_sizes: Sequence[int] = (1, 2),
               min_distance: float = MIN_LI_LI, screen_size: int | None = 3,
               screen_sample: int = 2000, seed: int = 0,
               settings: RelaxSettings = RelaxSettings(), scheduler: str | None = None,
               n_workers: int | None = None, torch_threads: int = 1,
               replace_shipped: bool = False, progress: bool = True) -> Pool:
    """Build the lesson's pools: every allowed ordering with three fidelities, and a screening set.

    ``li6ps5cl`` holds every ordering of ``cell_sizes`` with no two Li closer
    than ``min_distance`` (630 at cell sizes 1-2 and 2.0 Å), each with its
    Ewald energy, its unrelaxed CHGNet energy and its relaxed CHGNet energy
    (``energy_per_atom``, the expensive label). Relaxations run on Dask
    (:func:`almat.parallel.relax_many`) and are appended to
    ``li6ps5cl.relaxations.jsonl`` as they finish, so a killed build resumes
    without redoing any. ``li6ps5cl-size{screen_size}`` holds a random sample
    (``numpy.random.default_rng(seed)``) of ``screen_sample`` allowed
    orderings at ``screen_size`` with the cheap fidelities only.

    Parameters
    ----------
    directory
        Output folder. The shipped data folder is refused unless ``replace_shipped``.
    cell_sizes
        Cell sizes of the exhaustive, relaxed pool.
    min_distance
        Shortest Li-Li distance allowed (Å).
    screen_size, screen_sample
        Cell size and number of the cheap screening set; ``screen_size=None`` skips it.
    seed
        Seed of the screening sample.
    settings
        Relaxation settings.
    scheduler, n_workers, torch_threads
        Where relaxations run: see :func:`almat.parallel.relax_many`.
    replace_shipped
        Allow writing into the package's own data folder.
    progress
        Show progress bars.
    """
    from almat.enumeration import ewald_energies
    from almat.parallel import relax_many

    directory = Path(directory)
    screen_name = f"li6ps5cl-size{screen_size}"
    check_target(directory, ["li6ps5cl", screen_name], replace_shipped)
    table = allowed_orderings(cell_sizes, min_distance)
    ids = _ids(table)
    structures = table.structures()
    relaxed = relax_many({table.key(i): s for i, s in enumerate(structures)},
                         directory / "li6ps5cl.relaxations.jsonl", settings, scheduler=scheduler,
                         n_workers=n_workers, torch_threads=torch_threads, progress=progress)
    runs = [relaxed[table.key(i)] for i in range(len(table))]
    ref = pd.DataFrame({
        "cell_size": table.cell_sizes,
        "energy_per_atom": np.round([r.energy_per_atom for r in runs], 8),
        "unrelaxed_energy_per_atom": np.round([r.unrelaxed_energy_per_atom for r in runs], 8),
        "ewald_energy_per_atom": np.round(ewald_energies(table), 8),
        "min_li_li": shortest_distances(table).round(4),
        "relax_steps": [r.steps for r in runs],
        "converged": [r.converged for r in runs],
    }, index=pd.Index(ids, name="id"))
    pool = Pool("li6ps5cl", table, ref)
    sizes = ", ".join(str(s) for s in cell_sizes)
    save_pool(pool, directory, provenance={
        "command": _command(cell_sizes, min_distance, screen_size, screen_sample, seed),
        "parent": "almat/data/Li6PS5Cl.cif with the Li 48h occupancy set to 1/2",
        "candidates": f"every symmetry-distinct ordering at cell sizes {sizes} with no two Li "
                      f"closer than {min_distance} Å (almat's Hart-Forcade enumerator)",
        "columns": {
            "energy_per_atom": f"relaxed CHGNet energy, eV/atom: {settings.describe()}",
            "unrelaxed_energy_per_atom": "CHGNet energy of the ideal parent positions, eV/atom",
            "ewald_energy_per_atom": "Ewald energy of formal point charges, eV/atom "
                                     "(pymatgen EwaldSummation)",
            "min_li_li": "shortest Li-Li distance, Å",
            "relax_steps": "FIRE steps taken", "converged": "fmax reached within the step limit"},
        "relaxation": {**settings_dict(settings), "optimizer": "FIRE (ase)",
                       "filter": "FrechetCellFilter" if settings.relax_cell else None,
                       "device": "cpu", "relaxed_structures": "li6ps5cl.relaxations.jsonl"},
        "versions": _provenance_versions(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    })
    if screen_size is not None:
        build_screening_set(directory, screen_size, screen_sample, seed, min_distance, progress)
    return pool


def build_screening_set(directory: Path, cell_size: int, n_sample: int, seed: int,
                        min_distance: float = MIN_LI_LI, progress: bool = True) -> Pool:
    """A random sample of allowed orderings at one cell size, with the cheap fidelities only."""
    from almat.enumeration import ewald_energies
    from almat.scoring import score_structures

    every = allowed_orderings([cell_size], min_distance)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(every), size=min(n_sample, len(every)), replace=False))
    table = every.subset(pick)
    scores = score_structures(table.structures(), cache=False, progress=progress)
    ref = pd.DataFrame({
        "cell_size": table.cell_sizes,
        "energy_per_atom": np.nan,
        "unrelaxed_energy_per_atom": scores["energy_per_atom"].round(8).to_numpy(),
        "ewald_energy_per_atom": np.round(ewald_energies(table), 8),
        "min_li_li": shortest_distances(table).round(4),
    }, index=pd.Index([f"c{cell_size}-{i:06d}" for i in pick], name="id"))
    pool = Pool(f"li6ps5cl-size{cell_size}", table, ref)
    save_pool(pool, directory, provenance={
        "parent": "almat/data/Li6PS5Cl.cif with the Li 48h occupancy set to 1/2",
        "candidates": f"{len(pick)} of the {len(every)} orderings at cell size {cell_size} with no "
                      f"two Li closer than {min_distance} Å, drawn with "
                      f"numpy.random.default_rng({seed}).choice over the canonical order",
        "columns": {"energy_per_atom": "unknown (NaN): no relaxation",
                    "unrelaxed_energy_per_atom": "CHGNet, eV/atom, ideal positions",
                    "ewald_energy_per_atom": "Ewald energy of formal point charges, eV/atom"},
        "versions": _provenance_versions(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    })
    return pool


def _command(cell_sizes, min_distance, screen_size, screen_sample, seed) -> str:
    sizes = " ".join(str(s) for s in cell_sizes)
    screen = "--no-screen" if screen_size is None else (
        f"--screen-size {screen_size} --screen-sample {screen_sample}")
    return (f"almat build-pool --cell-sizes {sizes} --min-distance {min_distance} {screen} "
            f"--seed {seed}")


def _version() -> str:
    from almat import __version__

    return __version__
