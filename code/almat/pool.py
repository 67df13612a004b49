"""Candidate pools: orderings with reference energies, as data; shipped in ``data/pools``.

The shipped pool ``"li6ps5cl"`` holds the 630 orderings of Li6PS5Cl at cell
sizes 1 and 2 with no two Li closer than 2.0 Å, each with its relaxed and
unrelaxed CHGNet energy and its Ewald energy; ``"li6ps5cl-size3"`` a sample of
2,000 at cell size 3 with the cheap energies only. :mod:`almat.pool_build`
(``almat build-pool``) makes them.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from almat.errors import AlmatError
from almat.files import write_atomic
from almat.orderings import Orderings
from almat.structures import DATA_DIR

POOL_DIR = DATA_DIR / "pools"
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
