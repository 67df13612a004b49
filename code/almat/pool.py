"""Candidate pools: orderings with reference CHGNet energies, shipped in ``data/pools``.

The shipped pool ``"li6ps5cl"`` holds all 48 orderings of Li6PS5Cl at cell
size 1 and a fixed-seed random sample of the 395,632 orderings at cell size 2,
each with its CHGNet energy per atom. ``almat build-pool`` regenerates it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from almat.errors import AlmatError
from almat.files import write_atomic
from almat.orderings import Orderings
from almat.relaxation import RelaxSettings, settings_dict
from almat.structures import DATA_DIR, MIN_LI_LI, min_li_li

POOL_DIR = DATA_DIR / "pools"
POOLS = ("li6ps5cl",)
#: How the reference CSV writes floats (and how :attr:`Pool.reference_fingerprint` reads them).
REFERENCE_FLOAT_FORMAT = "%.8f"
#: Columns a reference table must have.
REFERENCE_COLUMNS = ("cell_size", "energy_per_atom")


class PoolError(AlmatError, ValueError):
    """A pool is missing, unknown or inconsistent."""


@dataclass(frozen=True, eq=False)
class Pool:
    """Candidates for active learning and their reference energies.

    Attributes
    ----------
    name
        Short name, e.g. ``"li6ps5cl"``.
    orderings
        The candidates as a compact table.
    reference
        One row per candidate, indexed by ``id``: ``cell_size``,
        ``energy_per_atom`` (CHGNet, eV/atom; NaN where unknown) and
        ``min_li_li`` (shortest Li-Li distance, Å).
    """

    name: str
    orderings: Orderings
    reference: pd.DataFrame

    def __post_init__(self):
        if len(self.reference) != len(self.orderings):
            raise PoolError(
                f"Pool {self.name!r}: {len(self.orderings)} orderings but {len(self.reference)} "
                "reference rows."
            )

    def __len__(self) -> int:
        return len(self.orderings)

    def __repr__(self) -> str:
        sizes = self.reference["cell_size"].value_counts().sort_index()
        by = ", ".join(f"{n} at cell size {s}" for s, n in sizes.items())
        return f"<Pool {self.name!r}: {len(self)} orderings ({by})>"

    @property
    def ids(self) -> list[str]:
        return self.reference.index.tolist()

    @property
    def energies(self) -> np.ndarray:
        """Reference energies per atom (eV/atom), in pool order."""
        return self.reference["energy_per_atom"].to_numpy(dtype=float)

    @property
    def fingerprint(self) -> str:
        """sha256 of the ordering table; a labels file records it to refuse other pools.

        A labels file names candidates by their row in this table, so the
        table is what it must match. The reference energies are covered by
        :attr:`reference_fingerprint`, which :func:`load_pool` checks; keeping
        the two apart keeps labels files written before that check usable.
        """
        h = hashlib.sha256()
        o = self.orderings
        h.update(np.ascontiguousarray(o.hnfs[o.hnf_index]).astype(np.int64).tobytes())
        h.update(np.ascontiguousarray(o.labels).astype(np.int8).tobytes())
        return h.hexdigest()[:16]

    @property
    def reference_fingerprint(self) -> str:
        """sha256 of the reference table: ids in row order, column names and values.

        Floats enter as the CSV stores them (8 decimals), so a pool hashes the
        same before saving and after loading; re-sorted or edited rows change it.
        """
        h = hashlib.sha256()
        ref = self.reference
        h.update(json.dumps([str(ref.index.name), *map(str, ref.columns)]).encode())
        h.update("\n".join(map(str, ref.index)).encode())
        for column in ref.columns:
            values = ref[column].to_numpy()
            text = (np.char.mod(REFERENCE_FLOAT_FORMAT, values.astype(float))
                    if np.issubdtype(values.dtype, np.floating) else values.astype(str))
            h.update("\n".join(text.tolist()).encode())
        return h.hexdigest()[:16]

    def structure(self, i: int) -> Structure:
        """Candidate ``i`` as a pymatgen Structure (vacancies removed)."""
        return self.orderings.structure(int(i))

    def atoms(self, i: int):
        """Candidate ``i`` as ase Atoms with vacancies as ``"X"``."""
        return self.orderings.atoms(int(i))

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> Pool:
        """A smaller pool with the chosen candidates."""
        idx = np.asarray(indices, dtype=int)
        return Pool(name or f"{self.name}-subset", self.orderings.subset(idx),
                    self.reference.iloc[idx].copy())


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


def _paths(name: str, directory: Path) -> tuple[Path, Path, Path]:
    return directory / f"{name}.npz", directory / f"{name}.csv", directory / f"{name}.json"


def save_pool(pool: Pool, directory: str | Path = POOL_DIR, provenance: dict | None = None) -> Path:
    """Write a pool as ``NAME.npz`` (table), ``NAME.csv`` (reference) and ``NAME.json`` (provenance).

    Each file is written through a temporary file and a rename, the JSON with
    both fingerprints last: a failure part-way (full disk) leaves either the
    old pool or files that :func:`load_pool` refuses because they disagree with
    the JSON, never a pool that loads with old and new parts mixed.

    Returns
    -------
    Path
        The ``.npz`` file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    npz, csv, meta = _paths(pool.name, directory)
    o = pool.orderings
    buffer = io.BytesIO()
    np.savez_compressed(buffer, parent=json.dumps(o.parent.as_dict()), sites=o.sites,
                        species=json.dumps(o.species), hnfs=o.hnfs, hnf_index=o.hnf_index,
                        labels=o.labels)
    write_atomic(npz, buffer.getvalue())
    write_atomic(csv, pool.reference.to_csv(float_format=REFERENCE_FLOAT_FORMAT))
    info = dict(provenance or {})
    info.update(name=pool.name, n_orderings=len(pool), fingerprint=pool.fingerprint,
                reference_fingerprint=pool.reference_fingerprint)
    write_atomic(meta, json.dumps(info, indent=2) + "\n")
    return npz


def _damaged(path: Path, exc: BaseException) -> PoolError:
    return PoolError(
        f"The pool file '{path}' is damaged or cut short ({type(exc).__name__}: {exc}). If it is the "
        "shipped pool, restore it (`git checkout -- {0}` in a clone, or reinstall almat); otherwise "
        "delete the pool's .npz/.csv/.json and run `almat build-pool` again.".format(path.name)
    )


def load_pool(name: str = "li6ps5cl", directory: str | Path = POOL_DIR) -> Pool:
    """Load a shipped pool (about a second), checking that its files belong together.

    Parameters
    ----------
    name
        ``"li6ps5cl"``: 48 orderings at cell size 1 and a fixed random sample at
        cell size 2, with CHGNet energies.
    directory
        Where the pool files are; ``data/pools`` by default.

    Raises
    ------
    PoolError
        If a file is missing, damaged or cut short, or if the files disagree:
        the CSV's rows must be the table's rows in the same order (cell sizes,
        and the ``reference_fingerprint`` recorded in the JSON, which catches
        re-sorted or edited rows), and the table must match the JSON's
        ``fingerprint``.
    """
    npz, csv, meta = _paths(name, Path(directory))
    if not npz.exists() or not csv.exists():
        known = ", ".join(sorted(p.stem for p in Path(directory).glob("*.npz"))) or "none"
        raise PoolError(
            f"No pool named {name!r} in {directory} (pools there: {known}). The lesson ships "
            "'li6ps5cl'; if its files were deleted, `almat build-pool` makes them again "
            "(about five minutes)."
        )
    try:
        with np.load(npz, allow_pickle=False) as z:
            parent = Structure.from_dict(json.loads(str(z["parent"])))
            species = tuple(tuple(s) for s in json.loads(str(z["species"])))
            table = Orderings(parent, z["sites"], species, z["hnfs"], z["hnf_index"], z["labels"])
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, IndexError, ValueError, TypeError) as exc:
        raise _damaged(npz, exc) from exc
    try:
        ref = pd.read_csv(csv, index_col="id")
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors
        raise _damaged(csv, exc) from exc
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise _damaged(csv, KeyError(f"no column {', '.join(missing)}"))
    pool = Pool(name, table, ref)
    problems = []
    if not ref.index.is_unique:
        problems.append(f"{csv.name} lists the id {ref.index[ref.index.duplicated()][0]!r} twice")
    if not np.array_equal(ref["cell_size"].to_numpy(), table.cell_sizes):
        problems.append(f"the cell sizes in {csv.name} are not those of the table in {npz.name}, row by row")
    if meta.exists():
        try:
            info = json.loads(meta.read_text())
        except (ValueError, OSError) as exc:
            raise _damaged(meta, exc) from exc
        recorded = info.get("fingerprint") if isinstance(info, dict) else None
        if recorded and recorded != pool.fingerprint:
            problems.append(f"the table in {npz.name} is not the one {meta.name} records")
        recorded = info.get("reference_fingerprint") if isinstance(info, dict) else None
        if recorded and recorded != pool.reference_fingerprint:
            problems.append(f"the rows of {csv.name} are not those saved with the pool (re-sorted or "
                            "edited?), so energies would land on the wrong structures")
    if problems:
        raise PoolError(
            f"Pool {name!r} in {directory}: {'; '.join(problems)}. Restore the files as they were "
            "shipped (`git checkout -- .` in a clone, or reinstall almat) or run `almat build-pool`; "
            "to work with a re-sorted table, sort a copy in memory (pool.reference.sort_values(...))."
        )
    return pool


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
