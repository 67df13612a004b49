"""The enumerator's public functions: count the orderings, build their table, or build them as structures.

Every path counts first (:mod:`almat.enumeration.counting`, Burnside's lemma,
well under a second for Li6PS5Cl up to cell size 4), once, and refuses before
allocating what it cannot finish: cell sizes too large to count, more than
``max_rows`` rows or ``limit`` structures, structures that would not fit in
the memory that is free, and, for icet and enumlib, which go through every
ordering whatever ``min_distance`` is, more than ``max_rows`` orderings to go
through (:class:`~almat.enumeration.errors.EnumerationTooLargeError`, with the
count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure

from almat.enumeration.backends import reference_table, resolve_backend
from almat.enumeration.counting import count_labelings, supercells
from almat.enumeration.errors import (
    CellSizeError,
    EnumerationTooLargeError,
    OptionError,
    backend_goes_through_all,
    min_above_max,
    more_than_limit,
    structures_do_not_fit,
    unknown_sort,
)
from almat.enumeration.ewald import ewald_energies
from almat.enumeration.exclusion import check_min_distance
from almat.enumeration.problem import check_count_option, parse_sizes, setup
from almat.enumeration.walk import DEFAULT_MAX_ROWS, build, enumerate_labelings, plan
from almat.orderings import Orderings

#: Default largest number of structures :func:`enumerate_orderings` builds.
DEFAULT_LIMIT = 10_000

#: Memory of a built pymatgen Structure per atom, in bytes (tracemalloc: 17 kB for a 26-atom
#: ordering of Li6PS5Cl); how :func:`enumerate_orderings` tells whether its structures fit.
STRUCTURE_BYTES_PER_ATOM = 700


def _sizes(min_cell_size: int, max_cell_size: int) -> range:
    """The cell sizes from ``min_cell_size`` to ``max_cell_size``, each a whole number >= 1 (lazily)."""
    low, high = parse_sizes(min_cell_size)[0], parse_sizes(max_cell_size)[0]
    if low > high:
        raise CellSizeError(min_above_max(low, high))
    return range(low, high + 1)


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
        ``"auto"`` (= ``"fast"``), ``"fast"``, ``"icet"`` or ``"enumlib"``
        (:mod:`almat.enumeration.backends`).
    min_distance
        Shortest allowed distance in Å between two occupied disordered sites,
        periodic images included (``None``: no restriction); e.g. 2.0 for
        Li6PS5Cl, whose 48h pair sites are 1.81 Å apart. The fast backend
        enumerates only the allowed orderings; icet and enumlib filter theirs.
        A distance beyond every supercell's shortest lattice vector leaves no
        site that can hold an atom (:mod:`almat.enumeration.exclusion`).
    max_rows
        Refuse, before enumerating, to build more rows than this (``None``: no
        limit). icet and enumlib are held to the unconstrained count, which they
        go through whatever ``min_distance`` is.

    Raises
    ------
    EnumerationTooLargeError
        More than ``max_rows`` orderings; the message gives the count and what to change.
    """
    max_rows = check_count_option("max_rows", max_rows, none_ok=True)
    backend = resolve_backend(backend)
    sizes = _sizes(min_cell_size, max_cell_size)
    if backend == "fast":
        return enumerate_labelings(structure, sizes, min_distance=min_distance, max_rows=max_rows)
    return _reference(structure, sizes, backend, min_distance, max_rows)


def count_orderings(structure: Structure, max_cell_size: int = 1, min_cell_size: int = 1,
                    min_distance: float | None = None) -> int:
    """Number of symmetry-distinct orderings, instantly and without building any structure.

    Counted by Burnside's lemma per supercell class (:mod:`almat.enumeration.counting`),
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
        Refuse to build more than this many structures. Whatever it is, structures
        that would not fit in the free memory are refused too, before any is built.
    min_distance
        Shortest allowed distance in Å between two occupied disordered sites
        (see :func:`enumerate_table`).

    Raises
    ------
    EnumerationTooLargeError
        More than ``limit`` orderings, more than fit in memory, or (icet, enumlib)
        more than :data:`DEFAULT_MAX_ROWS` to go through; the message gives the count.
    """
    if not (sort_by is None or (isinstance(sort_by, str) and sort_by == "ewald")):
        raise OptionError(unknown_sort(sort_by))
    limit = check_count_option("limit", limit, none_ok=False)
    backend = resolve_backend(backend)
    sizes = _sizes(min_cell_size, max_cell_size)
    if backend == "fast":
        problem = setup(structure, sizes, min_distance=min_distance)
        cells = plan(problem, max_rows=None)
        _check_structures(structure, problem.sizes, sum(cell.count for cell in cells), limit)
        table = build(problem, cells)
    else:
        table = _reference(structure, sizes, backend, min_distance, DEFAULT_MAX_ROWS, limit)
    order = np.argsort(ewald_energies(table), kind="stable") if sort_by == "ewald" else None
    return table.structures(order)


def _reference(structure: Structure, sizes: range, backend: str, min_distance: float | None,
               max_rows: int | None, limit: int | None = None) -> Orderings:
    """The icet or enumlib table, refused first if they would go through more than ``max_rows``
    orderings or (with ``limit``) give more structures than allowed or fit."""
    min_distance = check_min_distance(min_distance)
    problem = setup(structure, sizes)
    total = sum(cell.count for cell in supercells(problem))
    if max_rows is not None and total > max_rows:
        raise EnumerationTooLargeError(backend_goes_through_all(backend, total, problem.sizes, max_rows))
    if limit is not None:
        kept = total if min_distance is None else int(sum(
            count_labelings(structure, problem.sizes, min_distance=min_distance).values()))
        _check_structures(structure, problem.sizes, kept, limit)
    return reference_table(structure, problem.sizes, backend, min_distance)


def _check_structures(structure: Structure, sizes: Sequence[int], count: int, limit: int) -> None:
    """Refuse more than ``limit`` structures, and more than the free memory holds (estimated per atom)."""
    if count > limit:
        raise EnumerationTooLargeError(more_than_limit(count, sizes, limit))
    import psutil

    need = count * sizes[-1] * structure.composition.num_atoms * STRUCTURE_BYTES_PER_ATOM
    free = psutil.virtual_memory().available
    if need > free:
        raise EnumerationTooLargeError(structures_do_not_fit(count, sizes, need / 1e9, free / 1e9))
