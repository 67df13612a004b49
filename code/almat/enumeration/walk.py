"""Symmetry-distinct orderings by the Hart-Forcade method, in NumPy and numba.

For each supercell size ``N`` the superlattices of index ``N`` are grouped into
classes under the parent's rotations
(:func:`almat.enumeration.hnf.distinct_supercells`); every class is represented
by one Hermite normal form ``H``. A labelling of ``H`` gives each of its
``N * d`` disordered sites one of its allowed species. The stabiliser of ``H``
together with the ``N`` lattice translations forms a group ``G_H`` of site
permutations (:func:`almat.enumeration.hnf.site_permutations`), and two
labellings of ``H`` are the same crystal exactly when ``G_H`` maps one onto the
other (Hart & Forcade, Phys. Rev. B 77, 224115 (2008)).

The symmetry is that of all disordered sites alike, whatever species each
allows (enumlib's rule for site restrictions): an operation may carry a site
that allows Cu/Au onto one that allows Cu/Au/Ag, and the image of a labelling
counts only if it is a legal labelling (every species allowed where it lands,
the composition rule met). So a crystal is listed once even when the
symmetry swaps sites with different species sets (hcp with Cu/Au on one site
and Cu/Au/Ag on the other: 5 orderings at cell size 1, not 6). When every
operation keeps each site's species and counters, as in Li6PS5Cl, this is the
plain group action.

The enumeration walks the labellings of each ``H`` in lexicographic order
(depth first, pruned by the composition limits) and keeps a labelling only if
no element of ``G_H`` maps it onto a lexicographically smaller one (the orbit's
smallest member is its representative) and no non-zero translation leaves it
unchanged (it would be a superperiodic copy of a smaller cell). Nothing needs
remembering between labellings, so memory is the output table alone, and the
rows come out sorted.

:mod:`almat.enumeration.counting` gives the same numbers without
enumerating, by Burnside's lemma; every supercell is counted first, so the
table is allocated once, at its final size, and a request over ``max_rows``
is refused before anything is built.

Split sites (``min_distance``): no two occupied disordered sites may be closer
than ``min_distance`` Å (:mod:`almat.enumeration.exclusion`). The walk then
never occupies a site next to an occupied one, and prunes a branch as soon as
the sites left cannot hold the atoms still missing: at most one atom per
clique of a fixed clique cover of the exclusion graph
(:mod:`almat.enumeration.cliques`). The representative rule is unchanged
(``G_H`` preserves distances, so an orbit's smallest member obeys the rule
whenever the orbit does): the rows are exactly those of the unconstrained
enumeration that obey it.

Composition modes: see :mod:`almat.enumeration.problem`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pymatgen.core import Structure

from almat.enumeration.cliques import exclusion_tables
from almat.enumeration.counting import Cell, supercells
from almat.enumeration.errors import EnumerationTooLargeError, too_many_rows
from almat.enumeration.kernels import enumerate_cell
from almat.enumeration.problem import Problem, check_count_option, setup
from almat.orderings import Orderings

#: Default largest number of rows :func:`enumerate_labelings` builds (about 0.5 GB at 48 columns).
DEFAULT_MAX_ROWS = 10_000_000


def plan(problem: Problem, max_rows: int | None = DEFAULT_MAX_ROWS) -> list[Cell]:
    """Every supercell class with its number of orderings, refused if over ``max_rows`` in all.

    Counts only (:func:`almat.enumeration.counting.supercells`); nothing of the size of the answer
    is allocated.
    """
    cells = list(supercells(problem))
    total = sum(cell.count for cell in cells)
    if max_rows is not None and total > max_rows:
        width = problem.sizes[-1] * len(problem.sites)
        raise EnumerationTooLargeError(too_many_rows(total, problem.sizes, max_rows, total * width / 1e9,
                                                     problem.split_site_hint()))
    return cells


def build(problem: Problem, cells: list[Cell]) -> Orderings:
    """Enumerate the orderings of every planned supercell into one table, allocated once."""
    d = len(problem.sites)
    width = problem.sizes[-1] * d
    table = np.full((sum(cell.count for cell in cells), width), -1, dtype=np.int8)
    flat = table.reshape(-1)
    row = 0
    for cell in cells:
        _fill(problem, cell, flat[row * width:], width)
        row += cell.count
    index = [np.full(cell.count, h, dtype=np.int64) for h, cell in enumerate(cells)]
    return Orderings(problem.parent, problem.sites, problem.species,
                     np.array([cell.hnf for cell in cells], dtype=np.int64).reshape(-1, 3, 3),
                     np.concatenate(index) if index else np.zeros(0, dtype=np.int64), table)


def enumerate_labelings(parent: Structure, sizes: Iterable[int] | int, concentrations=None,
                        symprec: float = 1e-3, min_distance: float | None = None,
                        max_rows: int | None = DEFAULT_MAX_ROWS) -> Orderings:
    """All symmetry-distinct orderings of ``parent`` in supercells of the given sizes.

    Parameters
    ----------
    parent
        Primitive cell with partially occupied sites (e.g.
        ``almat.set_occupancy(almat.load_parent(), 0.5)``). It is not modified.
    sizes
        Supercell sizes in primitive cells, e.g. ``[1, 2]``.
    concentrations
        ``None`` (fixed by the occupancies), ``"any"``, or ``{species: x or (low, high)}``;
        see :mod:`almat.enumeration.problem`.
    symprec
        Symmetry tolerance in Å.
    min_distance
        Shortest allowed distance in Å between two occupied disordered sites,
        periodic images included (``None``: no restriction). The rows are exactly
        the unconstrained rows that obey it.
    max_rows
        Refuse, before allocating anything, to build more rows than this
        (``None``: no limit). The count comes from :mod:`almat.enumeration.counting`.

    Returns
    -------
    Orderings
        Sorted by cell size, then HNF, then occupation row. Superperiodic orderings and
        orderings equivalent under the space group and lattice translations appear once.

    Raises
    ------
    EnumerationTooLargeError
        More than ``max_rows`` orderings; the message gives the count.
    """
    max_rows = check_count_option("max_rows", max_rows, none_ok=True)
    problem = setup(parent, sizes, concentrations, symprec, min_distance)
    return build(problem, plan(problem, max_rows))


def _fill(problem: Problem, cell: Cell, out: np.ndarray, width: int) -> None:
    """Enumerate the orderings of one supercell into ``out`` (flat, row stride ``width``), as output occupations."""
    lo, hi = problem.bounds(cell.n)
    nlab, counter, occupied, cap = _position_tables(problem, cell.n, lo)
    src, is_translation = _group(cell.perms, cell.is_translation)
    edges, lonely = problem.exclusion_graph(cell.hnf)
    nbr_ptr, nbr, clique = exclusion_tables(edges, lonely)
    roles = problem.role[np.arange(len(nlab)) % len(problem.sites)]
    relabel = bool(np.any(roles[src] != roles))
    found = enumerate_cell(nlab, counter, lo, hi, cap, src, is_translation, occupied,
                           problem.occupied_counter, nbr_ptr, nbr, clique, lonely, relabel,
                           problem.gid, problem.lid, out[: cell.count * width], width)
    if found != cell.count:
        raise ArithmeticError(f"Supercell {cell.hnf.tolist()}: the walk found {found} orderings but "
                              f"Burnside's lemma counts {cell.count}.")
    m = len(nlab)
    rows = out[: cell.count * width].reshape(cell.count, width)[:, :m]
    rows[:] = _to_output(problem, rows, cell.n)


def _group(perms: np.ndarray, is_translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse permutations of ``G_H`` without duplicates or the identity, and which are translations."""
    unique, first, inverse = np.unique(perms, axis=0, return_index=True, return_inverse=True)
    flags = np.zeros(len(unique), dtype=bool)
    np.logical_or.at(flags, inverse.ravel(), is_translation)
    identity = np.all(unique == np.arange(perms.shape[1]), axis=1)
    keep = np.flatnonzero(~identity)
    keep = keep[np.argsort(first[keep])]  # group order as generated: translations early
    src = np.argsort(unique[keep], axis=1).astype(np.int64)
    return np.ascontiguousarray(src), flags[keep]


def _position_tables(problem: Problem, n: int, lo: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-position species count, counters, atom flags and remaining capacity of an ``n``-cell supercell."""
    nlab = np.tile(problem.nlab, n)
    counter = np.tile(problem.counter, (n, 1))
    occupied = np.tile(problem.occupied, (n, 1))
    m = len(nlab)
    feeds = np.stack([(counter == k).any(axis=1) for k in range(len(lo))], axis=1) \
        if len(lo) else np.zeros((m, 0), dtype=bool)
    cap = np.zeros((m + 1, len(lo)), dtype=np.int64)
    cap[:m] = np.cumsum(feeds[::-1], axis=0)[::-1]
    return nlab, counter, occupied, cap


def _to_output(problem: Problem, labels: np.ndarray, n: int) -> np.ndarray:
    """Renumber internal labels to each site's own species order (rows stay sorted)."""
    if np.all(problem.to_output == np.arange(problem.to_output.shape[1])):
        return labels
    table = np.tile(problem.to_output, (n, 1))
    out = np.take_along_axis(table, labels.T.astype(np.int64), axis=1).T.astype(np.int8)
    return out[np.lexsort(out.T[::-1])] if len(out) else out
