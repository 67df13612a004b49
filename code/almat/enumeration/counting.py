"""Counting orderings without building them: Burnside's lemma per supercell class.

For each representative supercell ``H`` with group ``G_H`` (stabiliser times
the ``N`` translations ``A``), Burnside's lemma with Möbius inversion over the
subgroups ``T`` of ``A`` (:mod:`almat.enumeration.mobius`) gives the orbits of
non-superperiodic labellings::

    count(H) = 1/|G_H| * sum_{g in G_H} sum_{T <= A} mu(T) * fix(<g, T>)

where ``fix`` counts the labellings constant on the orbits (blocks) of
``<g, T>`` that meet the composition limits and, with ``min_distance``, leave
no two atoms closer than that (:mod:`almat.enumeration.fixed`). Where an
operation moves sites onto sites with other allowed species or counters,
inclusion-exclusion over the images of the site rules keeps the count exact.

This is the count every guard uses: it answers in well under a second for
Li6PS5Cl up to cell size 4, before anything is allocated, and the walk
(:mod:`almat.enumeration.walk`) checks that it finds exactly as many.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from pymatgen.core import Structure

from almat.enumeration.errors import EnumerationTooLargeError, too_many_patterns
from almat.enumeration.fixed import block_profiles, fixed_count, profile_count
from almat.enumeration.hnf import distinct_supercells, site_permutations
from almat.enumeration.mobius import mobius_subgroups
from almat.enumeration.problem import Problem, setup
from almat.orderings import translation_index, translations

#: Most distinct images of the site rules per supercell (counting takes 2 to this power terms).
MAX_PATTERNS = 8


@dataclass(frozen=True)
class Cell:
    """One class of supercells: its size, representative HNF, group and number of orderings.

    ``perms[g, c]`` is the image of position ``c`` under group element ``g``
    (:func:`almat.enumeration.hnf.site_permutations`); ``is_translation[g]``
    marks the pure lattice translations.
    """

    n: int
    hnf: np.ndarray
    perms: np.ndarray
    is_translation: np.ndarray
    count: int


def supercells(problem: Problem) -> Iterator[Cell]:
    """Every supercell class of ``problem.sizes`` that can hold the composition, its orderings counted.

    Builds no ordering; sizes and classes come in increasing order.
    """
    for n in problem.sizes:
        bounds = problem.bounds(n)
        if bounds is None:
            continue
        for hnf, stab in distinct_supercells(n, problem.sym.rotations):
            perms, is_translation = site_permutations(hnf, problem.sym, stab)
            yield Cell(n, hnf, perms, is_translation, count_cell(problem, hnf, perms, *bounds))


def count_labelings(parent: Structure, sizes: Iterable[int] | int, concentrations=None,
                    symprec: float = 1e-3, min_distance: float | None = None) -> dict[int, int]:
    """Number of symmetry-distinct orderings per cell size, without enumerating them.

    Same arguments as :func:`almat.enumeration.walk.enumerate_labelings`.

    Returns
    -------
    dict
        Cell size -> number of orderings.

    Raises
    ------
    CellSizeError
        Sizes too large to count in reasonable time (the message names the size).
    EnumerationTooLargeError
        ``min_distance`` joins so many sites that the exact count would need too many states.
    """
    problem = setup(parent, sizes, concentrations, symprec, min_distance)
    counts = dict.fromkeys(problem.sizes, 0)
    for cell in supercells(problem):
        counts[cell.n] += cell.count
    return counts


def count_cell(problem: Problem, hnf: np.ndarray, perms: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> int:
    """Orderings of one supercell: Burnside over ``G_H`` and inclusion-exclusion over the images of the rules.

    An element ``h`` of ``G_H`` may move a site's species onto a site with other
    allowed species or counters; ``h`` then maps the legal labellings ``X`` onto
    another set ``hX`` (its "pattern"). Orbits meeting ``X`` are the orbits in
    the union of the patterns, and a labelling fixed by ``g`` lies in that union
    as often as inclusion-exclusion over the patterns says. With one pattern
    (every operation keeps species and counters, as in Li6PS5Cl) this is plain Burnside.
    """
    zs = translations(hnf)
    d = len(problem.sites)
    shift = [(translation_index(zs + zu, hnf)[:, None] * d + np.arange(d)).ravel() for zu in zs]
    graph = problem.exclusion_graph(hnf)
    terms = _pattern_terms(problem, perms, lo, hi, len(zs))
    plain = problem.near is None and len(terms) == 1
    memo: dict[bytes, int] = {}
    total = 0
    for members, mu in mobius_subgroups(hnf):
        blocks = _orbit_labels(perms, [shift[u] for u in members])
        if plain:  # fix(<g, T>) depends only on how many blocks of each size each site has
            profiles, multiplicity = block_profiles(blocks, d)
            for row, times in zip(profiles, multiplicity.tolist()):
                key = row.tobytes()
                if key not in memo:
                    memo[key] = profile_count(problem, row, blocks.shape[1], lo, hi)
                total += mu * times * memo[key]
            continue
        for row in blocks:
            for sign, allowed, counters, low, high in terms:
                total += sign * mu * fixed_count(problem, row, allowed, counters, low, high, graph, len(zs))
    order = len(perms)
    if total % order:
        raise ArithmeticError(f"Burnside sum {total} is not a multiple of |G| = {order}.")
    return total // order


def _pattern_terms(problem: Problem, perms: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   n: int) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Inclusion-exclusion terms over the distinct images ``hX`` of the rules.

    Returns (sign, allowed ``(m, S)``, counters ``(q, m, S)``, low, high) per
    non-empty set of ``q`` patterns: species ``s`` may sit at position ``p`` if
    every pattern allows it, and then feeds counter ``counters[i, p, s]`` of
    pattern ``i`` (numbered ``i * K + k``; -1 for none), each held to ``[lo, hi]``.
    """
    d = len(problem.sites)
    k = len(lo)
    if problem.role.max() == 0:  # every site has the same rules: one pattern, X itself
        m = perms.shape[1]
        allowed = np.broadcast_to(problem.lid[0] >= 0, (m, len(problem.names)))
        counters = np.where(allowed, problem.counter[0][np.maximum(problem.lid[0], 0)], -1)[None]
        return [(1, allowed, counters, lo, hi)]
    first = np.array([int(np.flatnonzero(problem.role == r)[0]) for r in range(problem.role.max() + 1)])
    allowed_role = problem.lid[first] >= 0  # (R, S)
    counter_role = np.where(allowed_role, np.take_along_axis(problem.counter[first],
                                                             np.maximum(problem.lid[first], 0), axis=1), -1)
    src = np.argsort(perms, axis=1)  # the species at position p of h L comes from position src[p]
    patterns = np.unique(problem.role[src % d], axis=0)
    if len(patterns) > MAX_PATTERNS:
        raise EnumerationTooLargeError(too_many_patterns(n, len(patterns), MAX_PATTERNS))
    terms = []
    for q in range(1, len(patterns) + 1):
        for chosen in combinations(range(len(patterns)), q):
            allowed = np.logical_and.reduce([allowed_role[patterns[i]] for i in chosen])
            counters = np.stack([np.where(counter_role[patterns[i]] >= 0, counter_role[patterns[i]] + a * k, -1)
                                 for a, i in enumerate(chosen)])
            terms.append(((-1) ** (q + 1), allowed, counters, np.tile(lo, q), np.tile(hi, q)))
    return terms


def _orbit_labels(perms: np.ndarray, extra: list[np.ndarray]) -> np.ndarray:
    """``(G, m)``: smallest position in the orbit of each position under ``<perms[g], extra>``, for every ``g``.

    Minimum propagation along every generator, with pointer jumping (a position's
    label's label is in the same orbit), until nothing changes.
    """
    g, m = perms.shape
    rows = np.arange(g)[:, None]
    comp = np.tile(np.arange(m), (g, 1))
    while True:
        new = np.minimum(comp, comp[rows, perms])
        for p in extra:
            new = np.minimum(new, new[:, p])
        new = new[rows, new]
        if np.array_equal(new, comp):
            return comp
        comp = new
