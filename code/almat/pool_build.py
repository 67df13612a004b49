"""Building pools: enumerate the allowed orderings, relax them on Dask, score and save them.

``almat build-pool`` runs :func:`build_pool`. A :class:`~almat.pool.Pool` is
only data; everything that computes one (the enumerator, CHGNet, Dask, the
Li-Li distances) lives here.

A build checks every option, and the output folder, before any long work. Its
first file is each pool's JSON with the build's options (``"build"``); the
folder then belongs to that build: the same command resumes it, without
redoing a relaxation, to the same files as an uninterrupted build, while a
build with other options, or a folder with other files, is refused.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from almat.errors import AlmatError
from almat.files import OutputError, earlier_output, write_atomic
from almat.orderings import Orderings
from almat.pool import POOL_DIR, Pool, PoolError, load_pool, read_record, save_pool
from almat.relaxation import RelaxSettings, settings_dict
from almat.structures import MIN_LI_LI, min_li_li

#: Name of the relaxed pool that ``almat build-pool`` writes.
POOL_NAME = "li6ps5cl"
#: Where the relaxed pool's relaxations are appended as they finish, in the output folder.
RELAXATIONS_FILE = f"{POOL_NAME}.relaxations.jsonl"


class BuildError(AlmatError, ValueError):
    """Options of a pool build that cannot give a pool."""


class UnconvergedWarning(UserWarning):
    """Some relaxations of a build stopped at the step limit; their energies are NaN."""


def shortest_distances(orderings: Orderings, cutoff: float = 5.0) -> np.ndarray:
    """Shortest distance (Å) between occupied disordered sites of every ordering, from the table.

    Vectorised over rows (all 395,632 cell-size-2 orderings in seconds); the rare
    ordering with no pair closer than ``cutoff`` is built and measured with
    :func:`~almat.structures.min_li_li`, so the result equals ``min_li_li`` of every structure.
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

    Raises
    ------
    PoolError
        If ``energies`` or ``ids`` are not one number or name per ordering.
    """
    sizes = orderings.cell_sizes
    ids = [f"c{s}-{i:06d}" for i, s in enumerate(sizes)] if ids is None else list(ids)
    try:
        e = np.full(len(orderings), np.nan) if energies is None else np.asarray(energies, dtype=float)
    except (TypeError, ValueError) as exc:
        raise PoolError(f"make_pool: the energies must be numbers (eV/atom), NaN where unknown ({exc}).") from exc
    if e.shape != (len(orderings),) or len(ids) != len(orderings):
        raise PoolError(f"make_pool: {len(orderings)} orderings, but {e.size} energies and {len(ids)} ids; "
                        "give one of each per ordering, in table order.")
    ref = pd.DataFrame({
        "cell_size": sizes,
        "energy_per_atom": e,
        "min_li_li": shortest_distances(orderings).round(4),
    }, index=pd.Index(ids, name="id"))
    return Pool(name, orderings, ref)


def _half_parent():
    from almat.structures import load_parent, set_occupancy

    return set_occupancy(load_parent(), 0.5)


def allowed_orderings(cell_sizes: Sequence[int], min_distance: float = MIN_LI_LI) -> Orderings:
    """Every Li6PS5Cl ordering (Li:vacancy 1:1 on 48h) at ``cell_sizes`` with no two Li closer than
    ``min_distance`` (Å), in the enumerator's order."""
    from almat.enumeration import enumerate_table

    sizes = sorted({int(s) for s in cell_sizes})
    table = enumerate_table(_half_parent(), sizes[-1], sizes[0], min_distance=min_distance)
    if len(sizes) < sizes[-1] - sizes[0] + 1:  # e.g. 1 and 3, without 2
        table = table.subset(np.flatnonzero(np.isin(table.cell_sizes, sizes)))
    return table


def _ids(table: Orderings) -> list[str]:
    sizes = table.cell_sizes
    seen: dict[int, int] = {}
    ids = []
    for s in sizes:
        ids.append(f"c{s}-{seen.get(int(s), 0):06d}")
        seen[int(s)] = seen.get(int(s), 0) + 1
    return ids


# ------------------------------------------------------------------ options, before any work
def _whole(value: object, option: str, what: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise BuildError(f"{option} must be a whole number of at least {least} ({what}), not {value!r}.")
    return int(value)


def _count(sizes: Sequence[int], min_distance: float, option: str) -> int:
    """Allowed orderings at ``sizes``, counted without building them; refused if too many to build."""
    from almat.enumeration import DEFAULT_MAX_ROWS, EnumerationTooLargeError, count_orderings

    half = _half_parent()
    try:
        n = sum(count_orderings(half, s, s, min_distance=min_distance) for s in sizes)
    except EnumerationTooLargeError as exc:
        raise BuildError(f"{option} with --min-distance {min_distance}: {exc}") from exc
    if n > DEFAULT_MAX_ROWS:
        raise BuildError(f"{option}: more than {DEFAULT_MAX_ROWS:,} orderings at cell size(s) "
                         f"{', '.join(map(str, sizes))}, too many to enumerate; choose smaller cell sizes.")
    if n == 0:
        raise BuildError(f"{option}: no ordering at cell size(s) {', '.join(map(str, sizes))} keeps every "
                         f"two Li {min_distance} Å apart; lower --min-distance (the lesson uses {MIN_LI_LI}).")
    return int(n)


def build_plan(cell_sizes: Sequence[int] = (1, 2), min_distance: float = MIN_LI_LI,
               screen_size: int | None = 3, screen_sample: int = 2000, seed: int = 0,
               settings: RelaxSettings = RelaxSettings(), n_workers: int | None = None,
               torch_threads: int = 1) -> dict[str, dict]:
    """Check every option of :func:`build_pool`; return each pool's build record, by pool name.

    Runs in about a second: enumerations are counted, not built.

    Raises
    ------
    BuildError
        Naming the option (as ``--option`` of ``almat build-pool``) and what to give instead.
    """
    if isinstance(cell_sizes, np.ndarray):
        cell_sizes = cell_sizes.tolist()
    if isinstance(cell_sizes, (str, bytes)) or not isinstance(cell_sizes, Sequence) or not cell_sizes:
        raise BuildError(f"--cell-sizes must list one or more cell sizes, e.g. 1 2, not {cell_sizes!r}.")
    sizes = sorted({_whole(s, "--cell-sizes", "primitive cells per supercell") for s in cell_sizes})
    if (isinstance(min_distance, bool) or not isinstance(min_distance, numbers.Real)
            or not math.isfinite(min_distance) or min_distance < 0):
        raise BuildError(f"--min-distance must be a finite distance of 0 Å or more (the lesson uses "
                         f"{MIN_LI_LI}), not {min_distance!r}.")
    if not isinstance(settings, RelaxSettings):
        raise BuildError(f"settings must be a RelaxSettings, not {type(settings).__name__}.")
    if n_workers is not None:
        _whole(n_workers, "--workers", "Dask worker processes")
    _whole(torch_threads, "--threads", "torch threads per relaxation")
    plan = {POOL_NAME: {"cell_sizes": sizes, "min_distance": float(min_distance),
                        "relaxation": settings_dict(settings)}}
    if screen_size is not None:
        size = _whole(screen_size, "--screen-size", "the cell size of the screening set")
        sample = _whole(screen_sample, "--screen-sample", "orderings in the screening set")
        plan[f"{POOL_NAME}-size{size}"] = {"cell_size": size, "sample": sample,
                                           "seed": _whole(seed, "--seed", "the sample's seed", 0),
                                           "min_distance": float(min_distance)}
    _count(sizes, min_distance, "--cell-sizes")
    if screen_size is not None:
        _count([screen_size], min_distance, "--screen-size")
    return plan


def check_target(directory: Path, replace_shipped: bool) -> None:
    """Refuse to write into the shipped data unless asked to, and to be asked for another folder.

    Paths are compared once resolved, so relative, ``..`` and symlinked
    spellings of the shipped folder are refused too.
    """
    shipped = Path(directory).resolve() == POOL_DIR.resolve()
    if shipped and not replace_shipped:
        raise BuildError(
            f"{directory} is the package's own data folder with the shipped pools; building there "
            "would replace them and make existing labels files unusable. Give another --out, or "
            "--replace-shipped if you mean to regenerate the lesson's data.")
    if replace_shipped and not shipped:
        raise BuildError(f"replace_shipped writes into the shipped data folder {POOL_DIR}, not {directory}; "
                         "give that folder, or leave replace_shipped off.")


def _differences(recorded: object, wanted: dict) -> str:
    if not isinstance(recorded, dict):
        return f"the record {recorded!r}"
    keys = [k for k in wanted if recorded.get(k) != wanted[k]] + [k for k in recorded if k not in wanted]
    return ", ".join(f"{k} {recorded.get(k)!r} (this build: {wanted.get(k)!r})" for k in keys)


def claim_folder(directory: Path, plan: dict[str, dict], replace_shipped: bool = False) -> None:
    """The output-folder rule for a build, before any work; then mark the folder as this build's.

    The folder may be new or empty, or hold the files of an earlier run of
    this same build (its pools' JSONs record the same options), which it
    resumes. A pool built with other options is refused, not overwritten
    (unless ``replace_shipped``), and so is any other file
    (:func:`almat.files.earlier_output`). Each pool's JSON is then written
    with the build's options, if it is not there yet.
    """
    owned: set[str] | None = None
    for name, wanted in plan.items():
        try:
            info = read_record(name, directory)
        except PoolError:
            info = None  # not a record of ours: refused below as a file the build does not own
        if not isinstance(info, dict) or "build" not in info:
            if name == POOL_NAME:
                break
            continue
        if info["build"] != wanted and not replace_shipped:
            raise OutputError(
                f"The output folder '{directory}' holds the pool {name} built with other options "
                f"({_differences(info['build'], wanted)}); building here would replace it and make its "
                "labels files unusable. Choose another --out, or run the command that built it.")
        owned = (owned or set()) | {f"{name}{suffix}" for suffix in (".npz", ".csv", ".json")}
    if owned is not None:
        owned.add(RELAXATIONS_FILE)
    earlier_output(directory, f"{POOL_NAME}.json", owned, "almat build-pool")
    directory.mkdir(parents=True, exist_ok=True)
    for name, wanted in plan.items():
        if read_record(name, directory) is None:
            write_atomic(directory / f"{name}.json",
                         json.dumps({"build": wanted, "status": "being built"}, indent=2) + "\n")


# ------------------------------------------------------------------ the build
def provenance_versions() -> dict:
    import platform

    import chgnet
    import pymatgen.core
    import torch

    from almat import __version__

    return {"almat": __version__, "chgnet": chgnet.__version__, "torch": torch.__version__,
            "pymatgen": pymatgen.core.__version__, "python": platform.python_version()}


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


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
    (``energy_per_atom``, the expensive label; NaN where the relaxation did not
    converge within ``settings.steps``, with :class:`UnconvergedWarning`).
    Relaxations run on Dask (:func:`almat.parallel.relax_many`) and are
    appended to ``li6ps5cl.relaxations.jsonl`` as they finish, so a killed
    build resumes without redoing any. ``li6ps5cl-size{screen_size}`` holds a
    random sample (``numpy.random.default_rng(seed)``) of ``screen_sample``
    allowed orderings at ``screen_size`` with the cheap fidelities only; a
    finished one is kept when the build runs again.

    Parameters
    ----------
    directory
        Output folder (:func:`claim_folder`). The shipped data folder only with ``replace_shipped``.
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
        Write into the package's own data folder (``directory`` must be it).
    progress
        Show progress bars.

    Raises
    ------
    BuildError, OutputError
        Before any long work, for a bad option (:func:`build_plan`) or output folder.
    """
    from almat.enumeration import ewald_energies
    from almat.parallel import relax_many

    directory = Path(directory)
    plan = build_plan(cell_sizes, min_distance, screen_size, screen_sample, seed, settings,
                      n_workers, torch_threads)
    check_target(directory, replace_shipped)
    claim_folder(directory, plan, replace_shipped)
    table = allowed_orderings(cell_sizes, min_distance)
    relaxed = relax_many({table.key(i): s for i, s in enumerate(table.structures())},
                         directory / RELAXATIONS_FILE, settings, scheduler=scheduler,
                         n_workers=n_workers, torch_threads=torch_threads, progress=progress)
    runs = [relaxed[table.key(i)] for i in range(len(table))]
    converged = np.array([r.converged for r in runs], dtype=bool)
    ref = pd.DataFrame({
        "cell_size": table.cell_sizes,
        "energy_per_atom": np.where(converged, np.round([r.energy_per_atom for r in runs], 8), np.nan),
        "unrelaxed_energy_per_atom": np.round([r.unrelaxed_energy_per_atom for r in runs], 8),
        "ewald_energy_per_atom": np.round(ewald_energies(table), 8),
        "min_li_li": shortest_distances(table).round(4),
        "relax_steps": [r.steps for r in runs],
        "converged": converged,
    }, index=pd.Index(_ids(table), name="id"))
    pool = Pool(POOL_NAME, table, ref)
    sizes = ", ".join(str(s) for s in plan[POOL_NAME]["cell_sizes"])
    save_pool(pool, directory, provenance={
        "command": _command(plan, settings),
        "build": plan[POOL_NAME],
        "parent": "almat/data/Li6PS5Cl.cif with the Li 48h occupancy set to 1/2",
        "candidates": f"every symmetry-distinct ordering at cell sizes {sizes} with no two Li "
                      f"closer than {min_distance} Å (almat's Hart-Forcade enumerator)",
        "columns": {
            "energy_per_atom": f"relaxed CHGNet energy, eV/atom: {settings.describe()}; NaN where "
                               "the relaxation did not converge",
            "unrelaxed_energy_per_atom": "CHGNet energy of the ideal parent positions, eV/atom",
            "ewald_energy_per_atom": "Ewald energy of formal point charges, eV/atom "
                                     "(pymatgen EwaldSummation)",
            "min_li_li": "shortest Li-Li distance, Å",
            "relax_steps": "FIRE steps taken", "converged": "fmax reached within the step limit"},
        "relaxation": {**settings_dict(settings), "optimizer": "FIRE (ase)",
                       "filter": "FrechetCellFilter" if settings.relax_cell else None,
                       "device": "cpu", "relaxed_structures": RELAXATIONS_FILE},
        "versions": provenance_versions(),
        "created": _today(),
    })
    if not converged.all():
        warnings.warn(UnconvergedWarning(
            f"{(~converged).sum()} of {len(converged)} relaxations did not reach fmax {settings.fmax} "
            f"eV/Å within {settings.steps} steps; their energy_per_atom is NaN in {directory}/"
            f"{POOL_NAME}.csv (see its converged column), so no oracle serves them. Build again with "
            "more steps (--steps, or RelaxSettings(steps=...)) into a new --out folder."), stacklevel=2)
    for name, record in plan.items():
        if name != POOL_NAME:
            build_screening_set(directory, record, progress)
    return pool


def build_screening_set(directory: Path, record: dict, progress: bool = True) -> Pool:
    """A random sample of allowed orderings at one cell size, with the cheap fidelities only.

    ``record`` holds ``cell_size``, ``sample``, ``seed`` and ``min_distance``
    (see :func:`build_plan`). A finished set with the same record in
    ``directory`` is loaded instead of scored again.
    """
    from almat.enumeration import ewald_energies
    from almat.scoring import score_structures

    cell_size, n_sample, seed = record["cell_size"], record["sample"], record["seed"]
    name = f"{POOL_NAME}-size{cell_size}"
    info = read_record(name, directory)
    if isinstance(info, dict) and info.get("build") == record and "fingerprint" in info:
        return load_pool(name, directory)
    every = allowed_orderings([cell_size], record["min_distance"])
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
    pool = Pool(name, table, ref)
    save_pool(pool, directory, provenance={
        "build": record,
        "parent": "almat/data/Li6PS5Cl.cif with the Li 48h occupancy set to 1/2",
        "candidates": f"{len(pick)} of the {len(every)} orderings at cell size {cell_size} with no "
                      f"two Li closer than {record['min_distance']} Å, drawn with "
                      f"numpy.random.default_rng({seed}).choice over the canonical order",
        "columns": {"energy_per_atom": "unknown (NaN): no relaxation",
                    "unrelaxed_energy_per_atom": "CHGNet, eV/atom, ideal positions",
                    "ewald_energy_per_atom": "Ewald energy of formal point charges, eV/atom"},
        "versions": provenance_versions(),
        "created": _today(),
    })
    return pool


def _command(plan: dict[str, dict], settings: RelaxSettings) -> str:
    main = plan[POOL_NAME]
    screens = [r for name, r in plan.items() if name != POOL_NAME]
    screen = "--no-screen" if not screens else (
        f"--screen-size {screens[0]['cell_size']} --screen-sample {screens[0]['sample']} "
        f"--seed {screens[0]['seed']}")
    return (f"almat build-pool --cell-sizes {' '.join(map(str, main['cell_sizes']))} "
            f"--min-distance {main['min_distance']} {screen} --fmax {settings.fmax} "
            f"--steps {settings.steps}{' --fixed-cell' if not settings.relax_cell else ''}")
