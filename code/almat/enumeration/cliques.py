"""The exclusion graph as the enumeration walk reads it: later neighbours and a clique cover.

A clique of the exclusion graph holds at most one atom, so the number of
cliques that still have an open position bounds how many atoms the rest of a
labelling can take; the walk prunes a branch as soon as that bound falls short
of the atoms still missing (:func:`almat.enumeration.kernels.enumerate_cell`).
"""

from __future__ import annotations

import numpy as np


def exclusion_tables(edges: np.ndarray, lonely: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Later neighbours of each position (CSR ``nbr_ptr``, ``nbr``) and a greedy clique cover.

    Parameters
    ----------
    edges
        ``(E, 2)`` position pairs ``c < c'`` that may not both hold an atom.
    lonely
        ``(m,)`` True where a position can never hold an atom.

    Returns
    -------
    nbr_ptr, nbr
        ``nbr[nbr_ptr[c]:nbr_ptr[c + 1]]`` are the positions after ``c`` that exclude it.
    clique
        ``(m,)`` the clique of each position, named by its first position. Each
        position joins the clique of the first earlier position that it and all
        that clique's members neighbour; lonely positions stay alone.
    """
    m = len(lonely)
    if not len(edges):
        return np.zeros(m + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.arange(m, dtype=np.int64)
    order = np.argsort(edges[:, 0], kind="stable")
    nbr = np.ascontiguousarray(edges[order, 1])
    nbr_ptr = np.zeros(m + 1, dtype=np.int64)
    nbr_ptr[1:] = np.cumsum(np.bincount(edges[:, 0], minlength=m))
    adjacent: list[set[int]] = [set() for _ in range(m)]
    for a, b in edges.tolist():
        adjacent[a].add(b)
        adjacent[b].add(a)
    clique = np.full(m, -1, dtype=np.int64)
    for c in range(m):
        if clique[c] >= 0:
            continue
        clique[c] = c
        members = [c]
        if lonely[c]:
            continue
        for o in sorted(adjacent[c]):
            if o > c and clique[o] < 0 and not lonely[o] and all(o in adjacent[x] for x in members):
                clique[o] = c
                members.append(o)
    return nbr_ptr, nbr, clique
