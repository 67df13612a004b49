"""Derivative-structure enumeration: the symmetry-distinct orderings of a disordered parent.

A derivative structure is an ordered decoration of a supercell of the parent
lattice (Hart & Forcade, Phys. Rev. B 77, 224115, 2008). Two decorations are
the same structure when a space-group operation of the parent, or a lattice
translation, maps one onto the other; each class is counted once, and
decorations that repeat within a smaller cell are left to that cell.

Backends
--------
``"fast"``
    Our own Hart-Forcade implementation (:mod:`almat.hart_forcade`), NumPy and
    numba; it writes the compact table directly. This is what ``"auto"`` uses.
``"icet"``
    ``icet.tools.enumerate_structures``; installs with pip, about a hundred
    times slower at cell size 2 of Li6PS5Cl.
``"enumlib"``
    pymatgen's ``EnumerateStructureTransformation``, which runs enumlib's
    ``enum.x`` and ``makestr.x`` (conda-forge only).

The three give the same set of orderings, possibly with different but
equivalent representatives (another supercell of the same shape class, or a
symmetry-equivalent decoration), where each species is disordered on one
sublattice only, as in Li6PS5Cl (tested against icet at cell sizes 1 and 2).
They differ where that does not hold: icet and enumlib restrict each species'
total over the cell, so a species on several sublattices may move between
them, while the fast backend fixes each sublattice's count by its occupancy;
and where a translation that is not a lattice vector maps disordered sites
with different species sets onto each other (CsCl with Cu/Au on one site and
Cu/Au/Ag on the other), icet lists one crystal twice and the fast backend once.

Split sites: ``min_distance`` (Å) forbids two atoms on disordered sites closer
than that. The fast backend enumerates only those orderings (its rows are the
unconstrained rows that obey the rule, under the same keys); icet and enumlib
enumerate everything and filter (:func:`almat.exclusion.respects_min_distance`),
so they are refused where the unconstrained list exceeds ``max_rows``.

Every path counts first (:func:`count_orderings`, Burnside's lemma, well under
a second for Li6PS5Cl up to cell size 4) and refuses, before allocating, what
it cannot finish: cell sizes too large to count, and more than ``max_rows``
rows (:class:`EnumerationTooLargeError`, with the count).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
from pymatgen.core import Structure

from almat.errors import AlmatError
from almat.exclusion import respects_min_distance
from almat.hart_forcade import (
    DEFAULT_MAX_ROWS,
    CellSizeError,
    EnumerationTooLargeError,
    count_labelings,
    enumerate_labelings,
)
from almat.orderings import Orderings, disorder_of, element_symbol, orderings_from_cells

#: Default largest number of structures :func:`enumerate_orderings` builds.
DEFAULT_LIMIT = 10_000

BACKENDS = ("auto", "fast", "icet", "enumlib")

__all__ = ["BACKENDS", "DEFAULT_LIMIT", "DEFAULT_MAX_ROWS", "BackendUnavailableError", "CellSizeError",
           "EnumerationTooLargeError", "UnknownBackendError", "canonical_order", "count_orderings",
           "enumerate_orderings", "enumerate_table", "enumlib_available", "ewald_energies",
           "resolve_backend"]


class BackendUnavailableError(AlmatError, RuntimeError):
    """The requested enumeration backend is not installed."""


class UnknownBackendError(AlmatError, ValueError):
    """A backend name that is not one of :data:`BACKENDS`."""


def enumlib_available() -> bool:
    """True if enumlib's ``enum.x`` and ``makestr.x`` are on PATH."""
    return bool(shutil.which("enum.x") or shutil.which("multienum.x")) and bool(
        shutil.which("makestr.x") or shutil.which("makeStr.py")
    )


def resolve_backend(backend: str) -> str:
    """Turn ``"auto"`` into a concrete backend and check that it is installed."""
    if backend not in BACKENDS:
        raise UnknownBackendError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if backend == "auto":
        return "fast"
    if backend == "enumlib" and not enumlib_available():
        raise BackendUnavailableError(
            "enumlib's enum.x/makestr.x are not on PATH. They come from conda-forge "
            "(`mamba install -c conda-forge enumlib`, see environment.yml); with pip alone use "
            "backend='fast' (the default) or 'icet'."
        )
    return backend


def _sizes(min_cell_size: int, max_cell_size: int) -> range:
    """The cell sizes from ``min_cell_size`` to ``max_cell_size``; the sizes themselves are checked once,
    by :mod:`almat.hart_forcade`."""
    if not min_cell_size <= max_cell_size:
        raise CellSizeError(
            f"Need min_cell_size <= max_cell_size; got {min_cell_size} and {max_cell_size}."
        )
    return range(min_cell_size, max_cell_size + 1)


def _icet_inputs(structure: Structure):
    """ase parent, allowed symbols per site and concentration windows for icet."""
    from ase import Atoms

    sites, species = disorder_of(structure)
    symbols, allowed = [], []
    disordered = {int(i): names for i, names in zip(sites, species)}
    for i, site in enumerate(structure):
        if i in disordered:
            names = [element_symbol(n) for n in disordered[i]]
            symbols.append(names[0])
            allowed.append(names)
        else:
            el = site.specie.symbol
            symbols.append(el)
            allowed.append([el])
    atoms = Atoms(symbols, scaled_positions=structure.frac_coords,
                  cell=structure.lattice.matrix, pbc=True)
    # icet restricts concentrations of whole-cell fractions: count / all sites.
    totals: dict[str, Fraction] = {}
    for i, names in disordered.items():
        for sp, x in structure[i].species.items():
            totals[sp.symbol] = totals.get(sp.symbol, Fraction(0)) + Fraction(x).limit_denominator(1000)
    n = len(structure)
    eps = 1e-6
    windows = {el: (float(c / n) - eps, float(c / n) + eps) for el, c in totals.items()}
    return atoms, allowed, windows


def _icet_cells(structure: Structure, sizes: range) -> Iterator[tuple]:
    from icet.tools import enumerate_structures

    atoms, allowed, windows = _icet_inputs(structure)
    for a in enumerate_structures(atoms, list(sizes), allowed, concentration_restrictions=windows,
                                  niggli_reduce=False, symprec=1e-3):
        yield a.cell[:], a.get_scaled_positions(), a.get_chemical_symbols()


def _enumlib_cells(structure: Structure, sizes: range) -> Iterator[tuple]:
    from pymatgen.transformations.advanced_transformations import EnumerateStructureTransformation

    trans = EnumerateStructureTransformation(min_cell_size=sizes.start, max_cell_size=sizes.stop - 1,
                                             sort_criteria="num_sites", symm_prec=1e-3)
    for item in trans.apply_transformation(structure, return_ranked_list=10**9):
        s = item["structure"]
        yield s.lattice.matrix, s.frac_coords, [str(sp) for sp in s.species]


def enumerate_table(structure: Structure, max_cell_size: int = 1, min_cell_size: int = 1,
                    backend: str = "auto", min_distance: float | None = None,
                    max_rows: int | None = DEFAULT_MAX_ROWS) -> Orderings:
    """Enumerate orderings into a compact :class:`~almat.orderings.Orderings` table.

    Parameters
    ----------
    structure
        A primitive cell with partially occupied sites; the composition of each
        ordering is fixed by the occupancies.
    max_cell_size, min_cell_size
        Supercell sizes, in primitive cells, to include.
    backend
        ``"auto"`` (= ``"fast"``), ``"fast"``, ``"icet"`` or ``"enumlib"``.
    min_distance
        Shortest allowed distance in Å between two occupied disordered sites,
        periodic images included (``None``: no restriction); e.g. 2.0 for
        Li6PS5Cl, whose 48h pair sites are 1.81 Å apart. The fast backend
        enumerates only the allowed orderings; icet and enumlib filter theirs.
    max_rows
        Refuse, before enumerating, to build more rows than this (``None``: no
        limit). icet and enumlib are held to the unconstrained count, which they
        go through whatever ``min_distance`` is.

    Raises
    ------
    EnumerationTooLargeError
        More than ``max_rows`` orderings; the message gives the count and what to change.
    """
    backend = resolve_backend(backend)
    sizes = _sizes(min_cell_size, max_cell_size)
    if backend == "fast":
        return enumerate_labelings(structure, sizes, min_distance=min_distance, max_rows=max_rows)
    total = count_orderings(structure, max_cell_size, min_cell_size)
    if max_rows is not None and total > max_rows:
        raise EnumerationTooLargeError(
            f"Backend {backend!r} would go through all {total:,} orderings at cell sizes "
            f"{min_cell_size} to {max_cell_size}, more than max_rows={max_rows:,}. Use backend='fast' "
            "(with min_distance it enumerates only the allowed orderings), smaller cell sizes, or a "
            "larger max_rows."
        )
    cells = _icet_cells(structure, sizes) if backend == "icet" else _enumlib_cells(structure, sizes)
    table = orderings_from_cells(structure, cells)
    if min_distance is not None:
        table = table.subset(np.flatnonzero(respects_min_distance(table, min_distance)))
    return table.subset(canonical_order(table))


def canonical_order(table: Orderings) -> np.ndarray:
    """Row order by cell size, supercell (HNF) and labels, as the fast backend emits rows."""
    keys = np.concatenate(
        [table.cell_sizes[:, None], table.hnfs[table.hnf_index].reshape(len(table), 9), table.labels],
        axis=1,
    )
    return np.lexsort(keys.T[::-1])


def count_orderings(structure: Structure, max_cell_size: int = 1, min_cell_size: int = 1,
                    min_distance: float | None = None) -> int:
    """Number of symmetry-distinct orderings, instantly and without building any structure.

    Counted by Burnside's lemma per supercell class (:func:`almat.hart_forcade.count_labelings`),
    so it answers for sizes that would take hours to enumerate: 1,638,672,390 orderings
    of Li6PS5Cl at cell size 3, or 47,340 with ``min_distance=2.0`` (Å).

    Raises
    ------
    OccupancyError
        Occupancies that no cell size asked for can hold; the message names the size that can.
    CellSizeError
        Sizes too large to count in reasonable time.
    """
    sizes = _sizes(min_cell_size, max_cell_size)
    return int(sum(count_labelings(structure, sizes, min_distance=min_distance).values()))


def ewald_energies(table: Orderings) -> np.ndarray:
    """Ewald energy per atom (eV/atom) of each ordering, as pymatgen ranks enumerations.

    As in pymatgen's ``EnumerateStructureTransformation``, one
    ``EwaldSummation`` of the disordered parent supercell is made per
    supercell shape, and each ordering's energy is its sub-structure energy
    (formal point charges from the oxidation states).
    """
    from pymatgen.analysis.ewald import EwaldSummation

    sums: dict[int, EwaldSummation] = {}
    energies = np.empty(len(table))
    for i in range(len(table)):
        h = int(table.hnf_index[i])
        if h not in sums:
            sums[h] = EwaldSummation(table.parent * table.hnfs[h].T)
        s = table.structure(i)
        energies[i] = sums[h].compute_sub_structure(s) / len(s)
    return energies


def enumerate_orderings(structure: Structure, max_cell_size: int = 1, min_cell_size: int = 1,
                        backend: str = "auto", sort_by: str | None = None,
                        limit: int = DEFAULT_LIMIT, min_distance: float | None = None) -> list[Structure]:
    """Symmetry-distinct ordered structures of a disordered parent, vacancies removed.

    Parameters
    ----------
    structure
        Primitive cell with partial occupancies (e.g. ``set_occupancy(parent, 0.5)``).
    max_cell_size, min_cell_size
        Supercell sizes, in primitive cells.
    backend
        ``"auto"`` (= ``"fast"``), ``"fast"``, ``"icet"`` or ``"enumlib"``; all give the same set.
    sort_by
        ``None`` keeps the canonical order; ``"ewald"`` ranks by Ewald energy
        per atom, lowest first, as pymatgen does.
    limit
        Refuse to build more than this many structures.
    min_distance
        Shortest allowed distance in Å between two occupied disordered sites
        (see :func:`enumerate_table`).

    Raises
    ------
    EnumerationTooLargeError
        If there are more than ``limit`` orderings; the message gives the count.
    """
    if sort_by not in (None, "ewald"):
        raise ValueError(f"sort_by must be None or 'ewald'; got {sort_by!r}.")
    count = count_orderings(structure, max_cell_size, min_cell_size, min_distance)
    if count > limit:
        raise EnumerationTooLargeError(
            f"There are {count:,} symmetry-distinct orderings for cell sizes {min_cell_size} to "
            f"{max_cell_size}, more than limit={limit:,}. Building them all as Structures would take "
            "a long time and a lot of memory. Lower max_cell_size, exclude split sites with "
            "min_distance (e.g. 2.0 Å for Li6PS5Cl), work with the compact table "
            "(almat.enumerate_table), or raise limit if you really need them all."
        )
    table = enumerate_table(structure, max_cell_size, min_cell_size, backend, min_distance, max_rows=None)
    order = np.argsort(ewald_energies(table), kind="stable") if sort_by == "ewald" else None
    return table.structures(order)
