"""Which disordered sites may not both be occupied: the exclusion graph of a supercell.

With a minimum distance ``r`` (Å), two disordered sites closer than ``r``
(periodic images included) may not both hold an atom; a vacancy next to
anything is fine. In Li6PS5Cl the two 48h sites of a pair are 1.81 Å apart,
so ``r = 2.0`` allows at most one Li+ per pair.

The neighbours are found once in the primitive cell, as triples ``(j, k, v)``:
site ``k`` moved by the lattice vector ``v`` (primitive units) lies within
``r`` of site ``j``. In the supercell ``H`` position ``(t, j)`` (see
:mod:`almat.orderings`) then excludes ``(t + v mod H, k)``. A site whose own
periodic image lies within ``r`` (``j = k``, ``v`` a non-zero vector of the
superlattice) can never be occupied in that supercell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from almat.errors import AlmatError
from almat.orderings import VACANCY, Orderings, disorder_of, translation_index, translations

#: Distances within this much (Å) of ``min_distance`` count as allowed.
DISTANCE_TOL = 1e-6


class ExclusionError(AlmatError, ValueError):
    """A minimum distance that is not a positive number of Å."""


@dataclass(frozen=True)
class Neighbours:
    """Pairs of disordered sites of the primitive cell closer than ``min_distance``.

    Attributes
    ----------
    min_distance
        The distance in Å.
    centre, other
        ``(P,)`` disordered-site indices ``j`` and ``k`` (column order of :func:`disorder_of`).
    shift
        ``(P, 3)`` integer lattice vector ``v`` with ``|b_k + v - b_j| < min_distance``.
    """

    min_distance: float
    centre: np.ndarray
    other: np.ndarray
    shift: np.ndarray


def check_min_distance(min_distance: float | None) -> float | None:
    """Return ``min_distance`` as a float (or None); refuse anything but a positive finite number."""
    if min_distance is None:
        return None
    try:
        value = float(min_distance)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise ExclusionError(
            f"min_distance is the shortest allowed distance in Å between two occupied disordered "
            f"sites, a positive number such as 2.0 (Li6PS5Cl's 48h pair is 1.81 Å); got {min_distance!r}."
        )
    return value


def neighbours(parent: Structure, min_distance: float) -> Neighbours:
    """Disordered-site pairs of ``parent`` closer than ``min_distance`` (Å), both directions."""
    sites, _ = disorder_of(parent)
    sub = Structure.from_sites([parent[int(i)] for i in sites])
    centre, other, offsets, dist = sub.get_neighbor_list(min_distance + 1e-3)
    keep = (dist > DISTANCE_TOL) & (dist < min_distance - DISTANCE_TOL)
    return Neighbours(min_distance, centre[keep].astype(np.int64), other[keep].astype(np.int64),
                      np.rint(offsets[keep]).astype(np.int64))


def supercell_graph(near: Neighbours, hnf: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The exclusion graph of the ``N * d`` positions of supercell ``hnf``.

    Returns
    -------
    edges
        ``(E, 2)`` int64 position pairs ``c < c'`` that may not both be occupied, sorted, unique.
    lonely
        ``(N * d,)`` bool, True where a site's own periodic image is too close: never occupied.
    """
    zs = translations(hnf)
    n = len(zs)
    here = (np.arange(n)[:, None] * d + near.centre[None, :]).ravel()
    there = (translation_index((zs[:, None, :] + near.shift[None, :, :]).reshape(-1, 3), hnf) * d
             + np.tile(near.other, n))
    lonely = np.zeros(n * d, dtype=bool)
    lonely[here[here == there]] = True
    pairs = np.stack([np.minimum(here, there), np.maximum(here, there)], axis=1)[here != there]
    edges = np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    return edges.astype(np.int64), lonely


def respects_min_distance(table: Orderings, min_distance: float) -> np.ndarray:
    """True for each row of ``table`` with no two occupied disordered sites closer than ``min_distance``.

    The filter behind ``min_distance`` for backends that cannot prune (icet, enumlib).
    """
    min_distance = check_min_distance(min_distance)
    near = neighbours(table.parent, min_distance)
    d = len(table.sites)
    vacancy = np.array([s.index(VACANCY) if VACANCY in s else -1 for s in table.species])
    ok = np.ones(len(table), dtype=bool)
    for h, hnf in enumerate(table.hnfs):
        rows = np.flatnonzero(table.hnf_index == h)
        m = int(round(abs(np.linalg.det(hnf)))) * d
        edges, lonely = supercell_graph(near, hnf, d)
        occupied = table.labels[rows, :m] != vacancy[np.arange(m) % d]
        bad = (occupied[:, edges[:, 0]] & occupied[:, edges[:, 1]]).any(axis=1)
        ok[rows] = ~(bad | occupied[:, lonely].any(axis=1))
    return ok
