"""Which disordered sites may not both be occupied: the exclusion graph of a supercell.

With a minimum distance ``r`` (Å), two disordered sites closer than ``r``
(periodic images included) may not both hold an atom; a vacancy next to
anything is fine. In Li6PS5Cl the two 48h sites of a pair are 1.81 Å apart,
so ``r = 2.0`` allows at most one Li+ per pair.

The neighbours are found once in the primitive cell, as triples ``(j, k, v)``:
site ``k`` moved by the lattice vector ``v`` (primitive units) lies within
``r`` of site ``j``. In the supercell ``H`` position ``(t, j)`` (see
:mod:`almat.orderings`) then excludes ``(t + v mod H, k)``.

A site's own periodic image, in supercell ``H``, is the same position moved by
a non-zero vector of the superlattice ``H Z^3``: in the built crystal, the
atom's copy in the next supercell. If one lies closer than ``r`` (``j = k``,
``v`` in ``H Z^3``), the site is *lonely*: it can never hold an atom in that
supercell, exactly as :func:`respects_min_distance` judges a built ordering
whose atom would sit closer than ``r`` to its own copy. A copy by a primitive
vector that is not in ``H Z^3`` is another position of the supercell, an
ordinary neighbour.

The search is bounded whatever ``r`` is. No lattice of volume ``V`` has its
shortest non-zero vector longer than ``2^(1/6) V^(1/3)`` (Hermite's constant
in three dimensions, ``γ_3 = 2^(1/3)``; fcc attains it), so in a supercell of
``N`` cells every site is lonely once ``r`` exceeds ``2^(1/6) (N V)^(1/3)``
(:func:`reach`), and nothing farther than that changes which orderings are
allowed. Neighbours are therefore searched out to ``min(r, reach + 1 Å)``:
``min_distance=1e9`` answers as fast as ``min_distance=10``, with every site
lonely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from almat.enumeration.errors import ExclusionError, bad_min_distance
from almat.orderings import VACANCY, Orderings, disorder_of, translation_index, translations

#: Distances within this much (Å) of ``min_distance`` count as allowed.
DISTANCE_TOL = 1e-6

#: Hermite's bound in three dimensions: shortest lattice vector <= HERMITE_3 * volume^(1/3).
HERMITE_3 = 2 ** (1 / 6)

#: How far (Å) beyond :func:`reach` neighbours are searched, so that rounding cannot hide a lonely site.
REACH_MARGIN = 1.0


@dataclass(frozen=True)
class Neighbours:
    """Pairs of disordered sites of the primitive cell closer than ``min_distance``.

    Attributes
    ----------
    min_distance
        The distance in Å.
    max_cell_size
        Largest supercell (in primitive cells) the pairs are complete for: beyond
        :func:`reach` of this size only the pairs that make sites lonely are kept.
    centre, other
        ``(P,)`` disordered-site indices ``j`` and ``k`` (column order of :func:`disorder_of`).
    shift
        ``(P, 3)`` integer lattice vector ``v`` with ``|b_k + v - b_j| < min_distance``.
    """

    min_distance: float
    max_cell_size: int
    centre: np.ndarray
    other: np.ndarray
    shift: np.ndarray


def check_min_distance(min_distance: float | None) -> float | None:
    """Return ``min_distance`` as a float (or None); refuse anything but a positive finite number of Å.

    ``True`` and ``False`` are refused too: they are not distances, although Python counts them as 1 and 0.
    """
    if min_distance is None:
        return None
    if isinstance(min_distance, (bool, np.bool_)):
        raise ExclusionError(bad_min_distance(min_distance))
    try:
        value = float(min_distance)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise ExclusionError(bad_min_distance(min_distance))
    return value


def reach(parent: Structure, max_cell_size: int) -> float:
    """Longest the shortest lattice vector of any supercell of up to ``max_cell_size`` cells can be, in Å.

    ``2^(1/6) (N V)^(1/3)`` for ``N = max_cell_size`` and the parent's volume ``V``
    (Hermite's constant; every superlattice of index ``N`` has volume ``N V``).
    """
    return HERMITE_3 * (max_cell_size * parent.lattice.volume) ** (1 / 3)


def _disordered(parent: Structure) -> Structure:
    """The disordered sites of ``parent`` alone, in column order, on the parent lattice."""
    sites, _ = disorder_of(parent)
    return Structure.from_sites([parent[int(i)] for i in sites])


def neighbours(parent: Structure, min_distance: float, max_cell_size: int) -> Neighbours:
    """Disordered-site pairs of ``parent`` closer than ``min_distance`` (Å), both directions.

    Searched out to ``min(min_distance, reach(parent, max_cell_size) + REACH_MARGIN)``:
    complete for every supercell of up to ``max_cell_size`` cells (see the module docstring).
    """
    radius = min(min_distance, reach(parent, max_cell_size) + REACH_MARGIN)
    centre, other, offsets, dist = _disordered(parent).get_neighbor_list(radius + 1e-3)
    keep = (dist > DISTANCE_TOL) & (dist < min_distance - DISTANCE_TOL)
    return Neighbours(min_distance, int(max_cell_size), centre[keep].astype(np.int64),
                      other[keep].astype(np.int64), np.rint(offsets[keep]).astype(np.int64))


def shortest_distance(parent: Structure) -> float:
    """Shortest distance in Å between two disordered sites of ``parent``, periodic images included."""
    dist = _disordered(parent).get_neighbor_list(reach(parent, 1) + REACH_MARGIN)[3]
    return float(dist[dist > DISTANCE_TOL].min())


def supercell_graph(near: Neighbours, hnf: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The exclusion graph of the ``N * d`` positions of supercell ``hnf``.

    Returns
    -------
    edges
        ``(E, 2)`` int64 position pairs ``c < c'`` that may not both be occupied, sorted, unique;
        pairs with a lonely position are left out (it holds no atom anyway).
    lonely
        ``(N * d,)`` bool, True where a site's own periodic image is too close: never occupied.
    """
    zs = translations(hnf)
    n = len(zs)
    assert n <= near.max_cell_size, "neighbours were searched for smaller supercells"
    here = (np.arange(n)[:, None] * d + near.centre[None, :]).ravel()
    there = (translation_index((zs[:, None, :] + near.shift[None, :, :]).reshape(-1, 3), hnf) * d
             + np.tile(near.other, n))
    lonely = np.zeros(n * d, dtype=bool)
    lonely[here[here == there]] = True
    pairs = np.stack([np.minimum(here, there), np.maximum(here, there)], axis=1)
    pairs = pairs[(here != there) & ~lonely[here] & ~lonely[there]]
    edges = np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    return edges.astype(np.int64), lonely


def respects_min_distance(table: Orderings, min_distance: float) -> np.ndarray:
    """True for each row of ``table`` with no two occupied disordered sites closer than ``min_distance``.

    The filter behind ``min_distance`` for backends that cannot prune (icet, enumlib).
    """
    min_distance = check_min_distance(min_distance)
    largest = np.rint(np.abs(np.linalg.det(table.hnfs))).max(initial=1) if len(table.hnfs) else 1
    near = neighbours(table.parent, min_distance, int(largest))
    d = len(table.sites)
    vacancy = np.array([s.index(VACANCY) if VACANCY in s else -1 for s in table.species])
    ok = np.ones(len(table), dtype=bool)
    for h, hnf in enumerate(table.hnfs):
        rows = np.flatnonzero(table.hnf_index == h)
        m = int(round(abs(np.linalg.det(hnf)))) * d
        edges, lonely = supercell_graph(near, hnf, d)
        occupied = table.occupations[rows, :m] != vacancy[np.arange(m) % d]
        bad = (occupied[:, edges[:, 0]] & occupied[:, edges[:, 1]]).any(axis=1)
        ok[rows] = ~(bad | occupied[:, lonely].any(axis=1))
    return ok
