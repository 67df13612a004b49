"""Candidate pools: orderings with reference energies, as data; shipped in ``data/pools``.

The shipped pool ``"li6ps5cl"`` holds the 630 orderings of Li6PS5Cl at cell
sizes 1 and 2 with no two Li closer than 2.0 Å, each with its relaxed and
unrelaxed CHGNet energy and its Ewald energy; ``"li6ps5cl-size3"`` a sample of
2,000 at cell size 3 with the cheap energies only. :mod:`almat.pool_build`
(``almat build-pool``) makes them.

A pool is saved as three files: ``NAME.npz`` (the orderings table),
``NAME.csv`` (the reference table) and ``NAME.json`` (provenance and the
:attr:`Pool.fingerprint`). :func:`load_pool` refuses files whose fingerprint
is not the recorded one, so a re-sorted, edited or mixed pool never loads.
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
#: How the reference CSV writes floats, and so how the fingerprint reads them.
REFERENCE_FLOAT_FORMAT = "%.8f"
#: Columns every reference table has: what the campaign, the oracles and the app read.
REFERENCE_COLUMNS = ("cell_size", "energy_per_atom", "min_li_li")
#: Fingerprints that labels files recorded for a shipped pool while the fingerprint covered only
#: its orderings table, keyed by that pool's full fingerprint: such a file is accepted for exactly
#: the untouched shipped pool, whose table is the one it was made for, and for no other.
EARLIER_FINGERPRINTS = {
    "b307719d4b2b8862": ("114a6a81e4366209",),  # li6ps5cl
    "6b3d8489c6960a31": ("93e32f0c0731549f",),  # li6ps5cl-size3
}
#: The key of the occupations table in ``.npz`` files written before it was named so (the shipped
#: pools among them), which :func:`load_pool` still reads.
OLD_OCCUPATIONS_KEY = "labels"
#: What to do about pool files that do not belong together.
RESTORE = ("Restore the files as they were shipped (`git checkout -- .` in a clone, or reinstall "
           "almat), or run `almat build-pool` again.")


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
        One row per candidate, in the order of ``orderings``, indexed by a unique
        ``id``: ``cell_size``, ``energy_per_atom`` (CHGNet, eV/atom; NaN where
        unknown), ``min_li_li`` (shortest Li-Li distance, Å) and any further
        columns.

    Raises
    ------
    PoolError
        If the two tables do not fit together (see :func:`inconsistency`).
    """

    name: str
    orderings: Orderings
    reference: pd.DataFrame

    def __post_init__(self):
        problem = inconsistency(self.orderings, self.reference)
        if problem:
            raise PoolError(f"Pool {self.name!r}: {problem}. Give one reference row per ordering, in "
                            "its order, as almat.make_pool does.")

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
        """sha256 of everything that defines the pool (16 hex digits).

        The parent structure, the disordered sites and their species, the
        HNFs, ``hnf_index``, the ``occupations``, the ids and every
        reference column with its name, in row order. Floats enter as the CSV
        stores them (:data:`REFERENCE_FLOAT_FORMAT`), so a pool hashes the same
        before saving and after loading, while a re-sorted, edited or mixed
        pool does not. A pool's JSON records it; so does a labels file, to
        refuse other pools.
        """
        o, ref = self.orderings, self.reference
        parts = [("parent", _structure_text(o.parent)), ("sites", _array_bytes(o.sites, "<i8")),
                 ("species", json.dumps(o.species)), ("hnfs", _array_bytes(o.hnfs, "<i8")),
                 ("hnf_index", _array_bytes(o.hnf_index, "<i8")),
                 # tagged "labels", the attribute's earlier name, so that shipped pools keep their fingerprint
                 ("labels", _array_bytes(o.occupations, "i1")),
                 ("ids", json.dumps([str(i) for i in ref.index]))]
        parts += [(f"column {c}", _column_text(ref[c].to_numpy())) for c in ref.columns]
        h = hashlib.sha256()
        for tag, data in parts:
            payload = data.encode() if isinstance(data, str) else data
            h.update(f"{tag} {len(payload)}\n".encode())
            h.update(payload)
        return h.hexdigest()[:16]

    @property
    def accepted_fingerprints(self) -> tuple[str, ...]:
        """The fingerprints a labels file of this pool may record: :attr:`fingerprint`, and for the
        shipped pools, untouched, the one labels files recorded before (:data:`EARLIER_FINGERPRINTS`)."""
        fingerprint = self.fingerprint
        return (fingerprint, *EARLIER_FINGERPRINTS.get(fingerprint, ()))

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


def _structure_text(structure: Structure) -> str:
    """Lattice, species, occupancies and fractional coordinates, rounded as the CSV rounds floats."""
    def numbers(values) -> str:
        return " ".join(REFERENCE_FLOAT_FORMAT % x for x in np.ravel(values))

    lines = [f"lattice {numbers(structure.lattice.matrix)}"]
    for site in structure:
        occupancy = ",".join(f"{sp}:{REFERENCE_FLOAT_FORMAT % x}"
                             for sp, x in sorted(site.species.items(), key=lambda kv: str(kv[0])))
        lines.append(f"{occupancy} {numbers(site.frac_coords)}")
    return "\n".join(lines)


def _array_bytes(values: np.ndarray, dtype: str) -> bytes:
    array = np.ascontiguousarray(values).astype(dtype)
    return json.dumps(array.shape).encode() + array.tobytes()


def _column_text(values: np.ndarray) -> str:
    if np.issubdtype(values.dtype, np.floating):
        return "\n".join(np.char.mod(REFERENCE_FLOAT_FORMAT, values).tolist())
    return "\n".join(map(str, values.tolist()))


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def inconsistency(orderings: Orderings, reference: pd.DataFrame) -> str | None:
    """The first reason why ``orderings`` and ``reference`` cannot make a pool; None if they can.

    The table's ``hnf_index`` must name one of its HNFs and its ``occupations`` have
    one row per ordering; the reference must be a DataFrame with one row per
    ordering, unique ids, the columns :data:`REFERENCE_COLUMNS`, numbers in
    those and in every ``*energy_per_atom`` column, and each row's
    ``cell_size`` that of its ordering.
    """
    o = orderings
    hnfs, index, occupations = np.asarray(o.hnfs), np.asarray(o.hnf_index), np.asarray(o.occupations)
    if hnfs.ndim != 3 or hnfs.shape[1:] != (3, 3) or not np.issubdtype(hnfs.dtype, np.integer):
        return f"the table's HNFs are not a stack of 3x3 integer matrices (shape {hnfs.shape})"
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        return "the table's hnf_index is not a list of whole numbers"
    bad = np.flatnonzero((index < 0) | (index >= len(hnfs)))
    if bad.size:
        return (f"the table's hnf_index {int(index[bad[0]])} (row {int(bad[0])}) names no supercell: "
                f"the table has {len(hnfs)} HNFs")
    if (occupations.ndim != 2 or len(occupations) != len(index)
            or not np.issubdtype(occupations.dtype, np.integer)):
        return (f"the table's occupations (shape {occupations.shape}) are not one row of whole numbers per "
                "ordering")
    if not isinstance(reference, pd.DataFrame):
        return f"the reference is a {type(reference).__name__}, not a pandas DataFrame"
    if len(reference) != len(index):
        return f"{len(index)} orderings but {len(reference)} reference rows"
    missing = [c for c in REFERENCE_COLUMNS if c not in reference.columns]
    if missing:
        return f"the reference has no column {', '.join(missing)}"
    if not reference.index.is_unique:
        return f"the reference lists the id {reference.index[reference.index.duplicated()][0]!r} twice"
    for column in reference.columns:
        values = reference[column]
        if (column in REFERENCE_COLUMNS or str(column).endswith("energy_per_atom")) \
                and not _is_number_column(values):
            text = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
            example = f" ({text.iloc[0]!r} for {text.index[0]})" if len(text) else ""
            return f"the column {column} holds {values.dtype} values{example}, not numbers"
    if not np.array_equal(reference["cell_size"].to_numpy(), o.cell_sizes):
        return ("the cell sizes of the reference are not those of the orderings, row by row: rows "
                "re-sorted, or parts of different pools mixed")
    return None


def _paths(name: str, directory: Path) -> tuple[Path, Path, Path]:
    return directory / f"{name}.npz", directory / f"{name}.csv", directory / f"{name}.json"


def _npz_bytes(arrays: dict[str, object]) -> bytes:
    """An ``.npz`` archive as :func:`numpy.savez_compressed` writes it, without its clock times,
    so that the same pool always gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            entry = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(entry, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
    return buffer.getvalue()


def save_pool(pool: Pool, directory: str | Path = POOL_DIR, provenance: dict | None = None) -> Path:
    """Write a pool as ``NAME.npz`` (table), ``NAME.csv`` (reference) and ``NAME.json`` (provenance).

    Each file is written through a temporary file and a rename, the JSON with
    the fingerprint last: a failure part-way (full disk) leaves either the old
    pool or files that :func:`load_pool` refuses because they disagree with the
    JSON, never a pool that loads with old and new parts mixed. The same pool
    always gives the same bytes (but for dates in ``provenance``).

    Returns
    -------
    Path
        The ``.npz`` file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    npz, csv, meta = _paths(pool.name, directory)
    o = pool.orderings
    write_atomic(npz, _npz_bytes({"parent": json.dumps(o.parent.as_dict()), "sites": o.sites,
                                  "species": json.dumps(o.species), "hnfs": o.hnfs,
                                  "hnf_index": o.hnf_index, "occupations": o.occupations}))
    write_atomic(csv, pool.reference.to_csv(float_format=REFERENCE_FLOAT_FORMAT, index_label="id"))
    info = dict(provenance or {})
    info.update(name=pool.name, n_orderings=len(pool), fingerprint=pool.fingerprint)
    write_atomic(meta, json.dumps(info, indent=2) + "\n")
    return npz


def _damaged(path: Path, exc: BaseException) -> PoolError:
    return PoolError(
        f"The pool file '{path}' is damaged or cut short ({type(exc).__name__}: {exc}). If it is the "
        f"shipped pool, restore it (`git checkout -- {path.name}` in a clone, or reinstall almat); "
        "otherwise delete the pool's .npz/.csv/.json and run `almat build-pool` again."
    )


def read_record(name: str, directory: str | Path = POOL_DIR) -> dict | None:
    """The JSON record of pool ``name`` in ``directory``: a dict, or None if there is none.

    Raises
    ------
    PoolError
        If the file cannot be read or is not JSON.
    """
    meta = _paths(name, Path(directory))[2]
    if not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _damaged(meta, exc) from exc
    return info


def load_pool(name: str = "li6ps5cl", directory: str | Path = POOL_DIR) -> Pool:
    """Load a pool (about a second), checking that its files are the ones its JSON records.

    Parameters
    ----------
    name
        ``"li6ps5cl"``: the 630 allowed orderings at cell sizes 1 and 2, with
        CHGNet energies; ``"li6ps5cl-size3"``: 2,000 at cell size 3, cheap
        energies only.
    directory
        Where the pool files are; ``data/pools`` by default.

    Raises
    ------
    PoolError
        If a file is missing, damaged or cut short; if the JSON records no
        fingerprint (a build not finished); if the tables do not fit together
        (:func:`inconsistency`: a missing column, text where numbers belong, a
        bad ``hnf_index``...); or if the files' :attr:`Pool.fingerprint` is not
        the recorded one (re-sorted or edited rows, parts of different builds).
    """
    directory = Path(directory)
    npz, csv, meta = _paths(name, directory)
    if not (npz.exists() or csv.exists() or meta.exists()):
        known = ", ".join(sorted(p.stem for p in directory.glob("*.npz"))) or "none"
        raise PoolError(
            f"No pool named {name!r} in {directory} (pools there: {known}). The lesson ships "
            "'li6ps5cl'; if its files were deleted, `almat build-pool` makes them again."
        )
    info = read_record(name, directory)
    recorded = info.get("fingerprint") if isinstance(info, dict) else None
    if info is None:
        raise PoolError(f"Pool {name!r} in {directory} has no {meta.name}, which records its fingerprint; "
                        f"without it almat cannot tell the pool from a re-sorted or edited one. {RESTORE}")
    if not isinstance(recorded, str):
        if isinstance(info, dict) and "build" in info:
            raise PoolError(f"Pool {name!r} in {directory} is not finished: its build was stopped or is "
                            f"still running. Run the same `almat build-pool` command to finish it.")
        raise PoolError(f"{meta} is not a pool record (it records no fingerprint). {RESTORE}")
    for path in (npz, csv):
        if not path.exists():
            raise PoolError(f"Pool {name!r} in {directory} has no {path.name}. {RESTORE}")
    try:
        with np.load(npz, allow_pickle=False) as z:
            parent = Structure.from_dict(json.loads(str(z["parent"])))
            species = tuple(tuple(s) for s in json.loads(str(z["species"])))
            occupations = z["occupations" if "occupations" in z.files else OLD_OCCUPATIONS_KEY]
            table = Orderings(parent, z["sites"], species, z["hnfs"], z["hnf_index"], occupations)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, IndexError, ValueError, TypeError) as exc:
        raise _damaged(npz, exc) from exc
    try:
        ref = pd.read_csv(csv, index_col="id")
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors
        raise _damaged(csv, exc) from exc
    problem = inconsistency(table, ref)
    if problem:
        raise PoolError(f"Pool {name!r} in {directory} ({npz.name}, {csv.name}): {problem}. {RESTORE}")
    pool = Pool(name, table, ref)
    if pool.fingerprint != recorded:
        raise PoolError(
            f"Pool {name!r} in {directory}: its files are not the ones {meta.name} records (fingerprint "
            f"{pool.fingerprint}, recorded {recorded}): rows re-sorted or edited, or parts of different "
            f"builds mixed, so energies could land on the wrong structures. {RESTORE} To work with a "
            "re-sorted table, sort a copy in memory (pool.reference.sort_values(...))."
        )
    return pool
