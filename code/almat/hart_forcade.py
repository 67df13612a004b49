"""Symmetry-distinct orderings by the Hart-Forcade method, in NumPy and numba.

For each supercell size ``N`` the superlattices of index ``N`` are grouped into
classes under the parent's rotations (:func:`almat.hnf.distinct_supercells`);
every class is represented by one Hermite normal form ``H``. A labelling of
``H`` gives each of its ``N * d`` disordered sites one of its allowed species.
The stabiliser of ``H`` together with the ``N`` lattice translations forms a
group ``G_H`` of site permutations (:func:`almat.hnf.site_permutations`), and
two labellings of ``H`` are the same crystal exactly when ``G_H`` maps one onto
the other (Hart & Forcade, Phys. Rev. B 77, 224115 (2008)).

The enumeration walks the labellings of each ``H`` in lexicographic order
(depth first, pruned by the composition limits) and keeps a labelling only if
no element of ``G_H`` maps it onto a lexicographically smaller one (the orbit's
smallest member is its representative) and no non-zero translation leaves it
unchanged (it would be a superperiodic copy of a smaller cell). Nothing needs
remembering between labellings, so memory is the output table alone, and the
rows come out sorted.

:func:`count_labelings` gives the same numbers without enumerating, by
Burnside's lemma over ``G_H`` and Möbius inversion over the translation
subgroups (to drop superperiodic labellings).

Composition modes (``concentrations``):

``None``
    Fixed by the occupancies: a sublattice (one orbit of symmetry-equivalent
    disordered sites, ``m`` per primitive cell) with occupancy ``p`` of a species
    holds exactly ``p * m * N`` of it; sizes where that is not a whole number
    have no orderings. This is what pymatgen's EnumerateStructureTransformation does.
``"any"``
    Every allowed species on every disordered site, all compositions.
``{species: x}`` or ``{species: (low, high)}``
    The fraction of the sites allowing ``species`` that carry it is ``x``, or
    lies in ``[low, high]``; species not named are free. ``"X"`` is a vacancy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numba
import numpy as np
from pymatgen.core import Structure

from almat.hnf import SiteSymmetry, distinct_supercells, site_permutations, site_symmetry
from almat.orderings import VACANCY, Orderings, disorder_of, element_symbol, translation_index, translations
from almat.structures import OccupancyError

_TOL = 1e-6


class ConcentrationError(ValueError):
    """A concentration restriction names an unknown species or an impossible range."""


class CellSizeError(ValueError):
    """Cell sizes that are not positive integers."""


@dataclass(frozen=True)
class _Problem:
    """Everything about the parent and the composition rule that does not depend on ``N``.

    Internally a sublattice's species are numbered in the order of its first
    site, so every symmetry operation keeps labels as they are; ``to_output``
    renumbers them to each site's own order (that of :func:`disorder_of`).
    Each label may feed one counter (a species count that is restricted).
    """

    parent: Structure
    sites: np.ndarray
    species: tuple[tuple[str, ...], ...]
    sym: SiteSymmetry
    nlab: np.ndarray  # (d,) number of species per site
    counter: np.ndarray  # (d, L) counter fed by internal label l of site j, or -1
    to_output: np.ndarray  # (d, L) output label of internal label l
    per_cell: np.ndarray  # (K,) sites per primitive cell that can feed each counter
    low: np.ndarray  # (K,) lowest fraction of per_cell allowed
    high: np.ndarray  # (K,) highest fraction

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Smallest and largest count of each counter in an ``n``-cell supercell, or None if none fit."""
        cap = self.per_cell * n
        lo = np.ceil(self.low * cap - _TOL).astype(np.int64)
        hi = np.floor(self.high * cap + _TOL).astype(np.int64)
        if np.any(lo > hi):
            return None
        return lo, hi


def _problem(parent: Structure, concentrations, symprec: float) -> _Problem:
    """Check the input and set up sites, symmetry, label numbering and composition counters."""
    if not isinstance(parent, Structure):
        raise TypeError(f"parent must be a pymatgen Structure, not {type(parent).__name__}.")
    sites, species = disorder_of(parent)
    if len(sites) == 0:
        raise OccupancyError(
            "The parent structure has no partially occupied site, so there is nothing to "
            "enumerate. Give the sites that should be disordered an occupancy first, e.g. "
            "almat.set_occupancy(structure, 0.5)."
        )
    fixed = concentrations is None
    if not fixed and not (concentrations == "any" or isinstance(concentrations, Mapping)):
        raise ConcentrationError(
            f"concentrations must be None (fixed by the occupancies), 'any', or a dict such as "
            f"{{'Li+': (0.25, 0.75)}}; got {concentrations!r}."
        )
    sym = site_symmetry(parent, sites, symprec=symprec, use_occupancy=fixed)
    d = len(sites)
    width = max(len(s) for s in species)
    nlab = np.array([len(s) for s in species], dtype=np.int64)
    internal = [species[int(np.flatnonzero(sym.sublattice == sym.sublattice[j])[0])] for j in range(d)]
    to_output = np.tile(np.arange(width, dtype=np.int8), (d, 1))
    for j in range(d):  # equivalent sites share one species set (spglib types include species)
        to_output[j, : nlab[j]] = [species[j].index(name) for name in internal[j]]
    counter = np.full((d, width), -1, dtype=np.int64)
    if fixed:
        keys: dict[tuple[int, str], int] = {}
        low = []
        for j in range(d):
            occ = {str(sp): float(x) for sp, x in parent[int(sites[j])].species.items()}
            occ.setdefault(VACANCY, 1.0 - sum(occ.values()))
            for lab, name in enumerate(internal[j]):
                key = (int(sym.sublattice[j]), name)
                if key not in keys:
                    keys[key] = len(keys)
                    low.append(occ[name])
                counter[j, lab] = keys[key]
        low_a = np.array(low, dtype=float)
        high_a = low_a
    elif concentrations == "any":
        low_a = high_a = np.zeros(0)
    else:
        low_a, high_a = _parse_concentrations(concentrations, internal, counter)
    per_cell = np.array([(counter == k).sum() for k in range(len(low_a))], dtype=np.int64)
    return _Problem(parent, sites, species, sym, nlab, counter, to_output, per_cell,
                    np.asarray(low_a, float), np.asarray(high_a, float))


def _parse_concentrations(concentrations: Mapping, internal: list[tuple[str, ...]],
                          counter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    allowed = sorted({name for names in internal for name in names})
    low, high = [], []
    for k, (name, value) in enumerate(concentrations.items()):
        hits = [(j, lab) for j, names in enumerate(internal) for lab, other in enumerate(names)
                if other == name or element_symbol(other) == element_symbol(str(name))]
        if not hits:
            raise ConcentrationError(
                f"No disordered site allows {name!r}; the species on the disordered sites are "
                f"{allowed} ('X' is a vacancy)."
            )
        lo, hi = (value, value) if np.isscalar(value) else tuple(value)
        if not 0 <= lo <= hi <= 1:
            raise ConcentrationError(
                f"The concentration of {name!r} must be a fraction x or a range (low, high) with "
                f"0 <= low <= high <= 1, counted over the sites that allow it; got {value!r}."
            )
        for j, lab in hits:
            counter[j, lab] = k
        low.append(lo)
        high.append(hi)
    return np.array(low, dtype=float), np.array(high, dtype=float)


@numba.njit(cache=True)
def _is_canonical(lab, src, is_translation):
    """True if no permutation maps ``lab`` to a smaller labelling and no translation fixes it."""
    m = lab.shape[0]
    for g in range(src.shape[0]):
        c = 0
        while c < m and lab[src[g, c]] == lab[c]:
            c += 1
        if c == m:
            if is_translation[g]:
                return False
        elif lab[src[g, c]] < lab[c]:
            return False
    return True


@numba.njit(cache=True)
def _enumerate_cell(nlab, counter, lo, hi, cap, src, is_translation):
    """Depth-first walk over the labellings of one supercell, keeping orbit representatives.

    ``nlab[c]`` and ``counter[c, l]`` are per position; ``cap[c, k]`` is how many
    positions from ``c`` on can still feed counter ``k``; ``src[g]`` is the inverse
    of group element ``g``, so the image of ``lab`` under ``g`` is ``lab[src[g]]``.
    """
    m = nlab.shape[0]
    nk = lo.shape[0]
    lab = np.full(m, -1, dtype=np.int8)
    counts = np.zeros(nk, dtype=np.int64)
    out = np.empty((1024, m), dtype=np.int8)
    n = 0
    c = 0
    while c >= 0:
        prev = lab[c]
        if prev >= 0 and counter[c, prev] >= 0:
            counts[counter[c, prev]] -= 1
        nxt = prev + 1
        if nxt >= nlab[c]:
            lab[c] = -1
            c -= 1
            continue
        lab[c] = nxt
        k = counter[c, nxt]
        if k >= 0:
            counts[k] += 1
        ok = True
        for q in range(nk):
            if counts[q] > hi[q] or counts[q] + cap[c + 1, q] < lo[q]:
                ok = False
                break
        if not ok:
            continue
        if c < m - 1:
            c += 1
            continue
        if _is_canonical(lab, src, is_translation):
            if n == out.shape[0]:
                grown = np.empty((2 * n, m), dtype=np.int8)
                grown[:n] = out
                out = grown
            out[n] = lab
            n += 1
    return out[:n].copy()


def _group(problem: _Problem, hnf: np.ndarray, stab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse permutations of ``G_H`` without duplicates or the identity, and which are translations."""
    perms, is_translation = site_permutations(hnf, problem.sym, stab)
    unique, first, inverse = np.unique(perms, axis=0, return_index=True, return_inverse=True)
    flags = np.zeros(len(unique), dtype=bool)
    np.logical_or.at(flags, inverse.ravel(), is_translation)
    identity = np.all(unique == np.arange(perms.shape[1]), axis=1)
    keep = np.flatnonzero(~identity)
    keep = keep[np.argsort(first[keep])]  # group order as generated: translations early
    src = np.argsort(unique[keep], axis=1).astype(np.int64)
    return np.ascontiguousarray(src), flags[keep]


def _position_tables(problem: _Problem, n: int, lo: np.ndarray) -> tuple[np.ndarray, ...]:
    nlab = np.tile(problem.nlab, n)
    counter = np.tile(problem.counter, (n, 1))
    m = len(nlab)
    feeds = np.stack([(counter == k).any(axis=1) for k in range(len(lo))], axis=1) \
        if len(lo) else np.zeros((m, 0), dtype=bool)
    cap = np.zeros((m + 1, len(lo)), dtype=np.int64)
    cap[:m] = np.cumsum(feeds[::-1], axis=0)[::-1]
    return nlab, counter, cap


def iter_labelings(parent: Structure, sizes: Iterable[int], concentrations=None,
                   symprec: float = 1e-3) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream the symmetry-distinct orderings one supercell at a time.

    Yields
    ------
    hnf, labels
        A lower-triangular HNF ``(3, 3)`` and an ``(k, N * d)`` int8 table of its
        orderings (label ``l`` of column ``c`` is ``species[c % d][l]`` of
        :func:`almat.orderings.disorder_of`), rows in increasing order; sizes and
        supercells in increasing order.
    """
    problem = _problem(parent, concentrations, symprec)
    yield from _iter(problem, _check_sizes(sizes, problem))


def _iter(problem: _Problem, sizes: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for n in sizes:
        bounds = problem.bounds(n)
        if bounds is None:
            continue
        lo, hi = bounds
        nlab, counter, cap = _position_tables(problem, n, lo)
        for hnf, stab in distinct_supercells(n, problem.sym.rotations):
            src, is_translation = _group(problem, hnf, stab)
            labels = _enumerate_cell(nlab, counter, lo, hi, cap, src, is_translation)
            yield hnf, _to_output(problem, labels, n)


def _to_output(problem: _Problem, labels: np.ndarray, n: int) -> np.ndarray:
    """Renumber internal labels to each site's own species order (rows stay sorted)."""
    if np.all(problem.to_output == np.arange(problem.to_output.shape[1])):
        return labels
    table = np.tile(problem.to_output, (n, 1))
    out = np.take_along_axis(table, labels.T.astype(np.int64), axis=1).T.astype(np.int8)
    return out[np.lexsort(out.T[::-1])] if len(out) else out


def _check_sizes(sizes: Iterable[int], problem: _Problem) -> list[int]:
    sizes = sorted({int(s) for s in ([sizes] if np.isscalar(sizes) else sizes)})
    if not sizes or sizes[0] < 1:
        raise CellSizeError(f"Cell sizes must be positive integers (numbers of primitive cells in a "
                            f"supercell, e.g. [1, 2]); got {sizes}.")
    if all(problem.bounds(n) is None for n in sizes):
        raise OccupancyError(
            f"No supercell of size {sizes} can hold the composition asked for: the counts of "
            "some species on the disordered sites are not whole numbers (occupancy x sites x "
            "size) or the concentration range holds no whole count. Choose larger or other "
            "cell sizes, round the occupancies (almat.set_occupancy(structure, 0.5)), or pass "
            "concentrations='any'."
        )
    return sizes


def enumerate_labelings(parent: Structure, sizes: Iterable[int], concentrations=None,
                        symprec: float = 1e-3) -> Orderings:
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
        see the module docstring.
    symprec
        Symmetry tolerance in Å.

    Returns
    -------
    Orderings
        Sorted by cell size, then HNF, then label row. Superperiodic orderings and
        orderings equivalent under the space group and lattice translations appear once.
    """
    problem = _problem(parent, concentrations, symprec)
    sizes = _check_sizes(sizes, problem)
    d = len(problem.sites)
    hnfs, index, parts = [], [], []
    for hnf, labels in _iter(problem, sizes):
        hnfs.append(hnf)
        index.append(np.full(len(labels), len(hnfs) - 1, dtype=np.int64))
        parts.append(labels)
    width = max(sizes) * d
    table = np.full((sum(len(p) for p in parts), width), -1, dtype=np.int8)
    row = 0
    for part in parts:
        table[row: row + len(part), : part.shape[1]] = part
        row += len(part)
    return Orderings(parent, problem.sites, problem.species,
                     np.array(hnfs, dtype=np.int64).reshape(-1, 3, 3),
                     np.concatenate(index) if index else np.zeros(0, dtype=np.int64), table)


def count_labelings(parent: Structure, sizes: Iterable[int], concentrations=None,
                    symprec: float = 1e-3) -> dict[int, int]:
    """Number of symmetry-distinct orderings per cell size, without enumerating them.

    For each representative supercell ``H`` with group ``G_H`` (stabiliser times
    the ``N`` translations ``A``), Burnside's lemma with Möbius inversion over
    the subgroups ``T`` of ``A`` gives the orbits of non-superperiodic labellings::

        count(H) = 1/|G_H| * sum_{g in G_H} sum_{T <= A} mu(T) * fix(<g, T>)

    where ``fix`` counts labellings constant on the orbits of ``<g, T>`` that meet
    the composition limits, and ``mu(T) = prod_p (-1)^k p^(k(k-1)/2)`` when ``T``
    is a product of elementary abelian groups ``(Z_p)^k`` (zero otherwise).

    Returns
    -------
    dict
        Cell size -> number of orderings (same arguments as :func:`enumerate_labelings`).
    """
    problem = _problem(parent, concentrations, symprec)
    counts = {}
    for n in _check_sizes(sizes, problem):
        bounds = problem.bounds(n)
        counts[n] = 0 if bounds is None else sum(
            _count_cell(problem, hnf, stab, *bounds)
            for hnf, stab in distinct_supercells(n, problem.sym.rotations))
    return counts


def _count_cell(problem: _Problem, hnf: np.ndarray, stab: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> int:
    perms, _ = site_permutations(hnf, problem.sym, stab)
    zs = translations(hnf)
    d = len(problem.sites)
    shift = [(translation_index(zs + zu, hnf)[:, None] * d + np.arange(d)).ravel() for zu in zs]
    total = 0
    for members, mu in _mobius_subgroups(hnf):
        for perm in perms:
            blocks = _orbit_labels([perm] + [shift[u] for u in members])
            total += mu * _fixed_count(problem, blocks, lo, hi)
    order = len(perms)
    if total % order:
        raise ArithmeticError(f"Burnside sum {total} is not a multiple of |G| = {order}.")
    return total // order


def _orbit_labels(perms: list[np.ndarray]) -> np.ndarray:
    """Smallest position in the orbit of each position under the group the perms generate."""
    comp = np.arange(len(perms[0]))
    while True:
        new = comp
        for p in perms:
            new = np.minimum(new, new[p])
        if np.array_equal(new, comp):
            return comp
        comp = new


def _fixed_count(problem: _Problem, blocks: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> int:
    """Labellings constant on each block whose counter totals lie in ``[lo, hi]``."""
    d = len(problem.sites)
    heads, sizes = np.unique(blocks, return_counts=True)
    states = {tuple([0] * len(lo)): 1}
    for head, size in zip(heads, sizes):
        j = int(head) % d
        new: dict[tuple[int, ...], int] = {}
        for state, ways in states.items():
            for lab in range(int(problem.nlab[j])):
                k = int(problem.counter[j, lab])
                if k >= 0:
                    if state[k] + size > hi[k]:
                        continue
                    key = state[:k] + (state[k] + int(size),) + state[k + 1:]
                else:
                    key = state
                new[key] = new.get(key, 0) + ways
        states = new
    return sum(w for s, w in states.items() if all(x >= a for x, a in zip(s, lo)))


def _mobius_subgroups(hnf: np.ndarray) -> list[tuple[list[int], int]]:
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
