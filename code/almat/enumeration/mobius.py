"""The translation subgroups of a supercell and their Möbius values, to drop superperiodic labellings.

A labelling of supercell ``H`` that some non-zero lattice translation leaves
unchanged repeats within a smaller cell and belongs to that cell. Möbius
inversion over the subgroup lattice of the translation group ``A = Z^3 / H Z^3``
counts only the others: with ``f(T)`` the labellings fixed by the subgroup ``T``,
those fixed by no non-trivial translation number ``sum_{T <= A} mu(0, T) f(T)``,
where ``mu(0, T) = prod_p (-1)^k p^(k(k-1)/2)`` when ``T`` is a product of
elementary abelian groups ``(Z_p)^k``, and zero otherwise (Hall, 1936).
"""

from __future__ import annotations

import numpy as np

from almat.orderings import translation_index, translations


def mobius_subgroups(hnf: np.ndarray) -> list[tuple[list[int], int]]:
    """Subgroups ``T`` of the translation group ``Z^3 / H Z^3`` with Möbius value ``mu(0, T) != 0``.

    Returns (elements of T as indices into :func:`translations`, mu) pairs.
    """
    zs = translations(hnf)
    n = len(zs)
    add = np.array([translation_index(zs + z, hnf) for z in zs])  # add[u, v] = u + v
    found = {frozenset([0])}
    frontier = [frozenset([0])]
    while frontier:
        nxt = []
        for group in frontier:
            for x in range(n):
                if x in group:
                    continue
                bigger = set(group)
                step = x
                while step not in group:  # cosets group + k x until they close
                    bigger |= {int(add[step, y]) for y in group}
                    step = int(add[step, x])
                bigger = frozenset(bigger)
                if bigger not in found:
                    found.add(bigger)
                    nxt.append(bigger)
        frontier = nxt
    out = []
    for group in sorted(found, key=lambda g: (len(g), sorted(g))):
        mu = _mobius(group, add)
        if mu:
            out.append((sorted(group), mu))
    return out


def _mobius(group: frozenset, add: np.ndarray) -> int:
    """mu(0, T) in the subgroup lattice of a finite abelian group."""
    for x in group:  # every element must have square-free order
        order, y = 1, x
        while y != 0:
            y = int(add[y, x])
            order += 1
        if any(order % (p * p) == 0 for p in range(2, order + 1)):
            return 0
    mu, size = 1, len(group)
    p = 2
    while size > 1:
        k = 0
        while size % p == 0:
            size //= p
            k += 1
        if k:
            mu *= (-1) ** k * p ** (k * (k - 1) // 2)
        p += 1
    return mu
