"""Symmetry-distinct orderings by the Hart-Forcade method, in NumPy and numba.

For each supercell size ``N`` the superlattices of index ``N`` are grouped into
classes under the parent's rotations (:func:`almat.hnf.distinct_supercells`);
every class is represented by one Hermite normal form ``H``. A labelling of
``H`` gives each of its ``N * d`` disordered sites one of its allowed species.
The stabiliser of ``H`` together with the ``N`` lattice translations forms a
group ``G_H`` of site permutations (:func:`almat.hnf.site_permutations`), and
two labellings of ``H`` are the same crystal exactly when ``G_H`` maps one onto
the other (Hart & Forcade, Phys. Rev. B 77, 224115 (2008)).

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

:func:`count_labelings` gives the same numbers without enumerating, by
Burnside's lemma over ``G_H`` and Möbius inversion over the translation
subgroups (to drop superperiodic labellings), with inclusion-exclusion over
the images of the site rules where operations change them.

Split sites (``min_distance``): no two occupied disordered sites may be closer
than ``min_distance`` Å (:mod:`almat.exclusion`). The walk then never occupies
a site next to an occupied one, and prunes a branch as soon as the sites left
cannot hold the atoms still missing: at most one atom per clique of a fixed
clique cover of the exclusion graph. The representative rule is unchanged
(``G_H`` preserves distances, so an orbit's smallest member obeys the rule
whenever the orbit does): the rows are exactly those of the unconstrained
enumeration that obey it. Counting runs Burnside over the constrained
labellings (see :func:`count_labelings`).

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
from itertools import combinations
from fractions import Fraction

import numba
import numpy as np
from pymatgen.core import Structure

from almat.errors import AlmatError
from almat.exclusion import Neighbours, check_min_distance, neighbours, supercell_graph
from almat.hnf import SiteSymmetry, distinct_supercells, hnf_count, site_permutations, site_symmetry
from almat.orderings import VACANCY, Orderings, disorder_of, element_symbol, translation_index, translations
from almat.structures import OccupancyError

_TOL = 1e-6

#: Default largest number of rows :func:`enumerate_labelings` builds (about 0.5 GB at 48 columns).
DEFAULT_MAX_ROWS = 10_000_000

#: Largest counting effort accepted (:func:`_count_work`, summed over the sizes): about half a
#: minute at most (fcc up to cell size 24 alone, Li6PS5Cl up to 16 alone or 1 to 14).
MAX_COUNT_WORK = 4_000_000

#: Most blocks that the exclusion count keeps open at once (its states grow as 2 to this power).
MAX_FRONTIER = 14

#: Most distinct images of the site rules per supercell (counting takes 2 to this power terms).
MAX_PATTERNS = 8


class ConcentrationError(AlmatError, ValueError):
    """A concentration restriction names an unknown species or an impossible range."""


class CellSizeError(AlmatError, ValueError):
    """Cell sizes that are not positive integers, or too large to count."""


class EnumerationTooLargeError(AlmatError, ValueError):
    """More orderings than the caller allowed would be built, or too many to count exactly."""


@dataclass(frozen=True)
class _Problem:
    """Everything about the parent and the composition rule that does not depend on ``N``.

    Internally the species of an orbit of disordered sites (under the symmetry
    of all disordered sites, ``sym``) are numbered in the order they first
    appear on its sites, and each site keeps the ones it allows, so an
    operation that maps a site onto one with the same species keeps labels as
    they are; ``to_output`` renumbers them to each site's own order (that of
    :func:`disorder_of`). Each label may feed one counter (a species count that
    is restricted). ``role`` tells sites apart that differ in allowed species
    or counters: an operation that maps every site onto one of the same role
    maps legal labellings onto legal labellings.
    """

    parent: Structure
    sites: np.ndarray
    species: tuple[tuple[str, ...], ...]
    sym: SiteSymmetry
    nlab: np.ndarray  # (d,) number of species per site
    occupied: np.ndarray  # (d, L) True where internal label l of site j is an atom, not a vacancy
    counter: np.ndarray  # (d, L) counter fed by internal label l of site j, or -1
    to_output: np.ndarray  # (d, L) output label of internal label l
    per_cell: np.ndarray  # (K,) sites per primitive cell that can feed each counter
    low: np.ndarray  # (K,) lowest fraction of per_cell allowed
    high: np.ndarray  # (K,) highest fraction
    near: Neighbours | None  # pairs closer than min_distance, or None without exclusion
    names: tuple[str, ...]  # (S,) every species of the disordered sites
    gid: np.ndarray  # (d, L) species number of internal label l of site j, or -1
    lid: np.ndarray  # (d, S) internal label of species s on site j, or -1 where not allowed
    role: np.ndarray  # (d,) sites with equal role allow the same species, feeding the same counters

    @property
    def occupied_counter(self) -> np.ndarray:
        """(K,) True for counters of atoms (a counter counts one species name: atoms or vacancies)."""
        flags = np.zeros(len(self.low), dtype=bool)
        hit = self.counter >= 0
        flags[self.counter[hit]] = self.occupied[hit]
        return flags

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Smallest and largest count of each counter in an ``n``-cell supercell, or None if none fit."""
        cap = self.per_cell * n
        lo = np.ceil(self.low * cap - _TOL).astype(np.int64)
        hi = np.floor(self.high * cap + _TOL).astype(np.int64)
        if np.any(lo > hi):
            return None
        return lo, hi


def _problem(parent: Structure, concentrations, symprec: float,
             min_distance: float | None = None) -> _Problem:
    """Check the input and set up sites, symmetry, label numbering, composition counters and exclusion."""
    if not isinstance(parent, Structure):
        raise TypeError(f"parent must be a pymatgen Structure, not {type(parent).__name__}.")
    sites, species = disorder_of(parent)
    if len(sites) == 0:
        raise OccupancyError(
            "The parent structure has no partially occupied site, so there is nothing to "
            "enumerate. Give the sites that should be disordered an occupancy first, e.g. "
            "almat.set_occupancy(structure, 0.5)."
        )
    min_distance = check_min_distance(min_distance)
    fixed = concentrations is None
    if not fixed and not (concentrations == "any" or isinstance(concentrations, Mapping)):
        raise ConcentrationError(
            f"concentrations must be None (fixed by the occupancies), 'any', or a dict such as "
            f"{{'Li+': (0.25, 0.75)}}; got {concentrations!r}."
        )
    # Operations: the symmetry of all disordered sites alike (enumlib's rule); an image that puts
    # a species where it is not allowed is simply not a labelling. Composition sublattices: sites
    # with the same species and occupancies that symmetry relates (also checks the cell is primitive).
    sublattice = site_symmetry(parent, sites, symprec=symprec, use_occupancy=fixed).sublattice
    sym = site_symmetry(parent, sites, symprec=symprec, alike=True)
    d = len(sites)
    width = max(len(s) for s in species)
    nlab = np.array([len(s) for s in species], dtype=np.int64)
    internal = []
    for j in range(d):
        order = dict.fromkeys(name for k in np.flatnonzero(sym.sublattice == sym.sublattice[j])
                              for name in species[k])
        internal.append(tuple(name for name in order if name in species[j]))
    to_output = np.tile(np.arange(width, dtype=np.int8), (d, 1))
    for j in range(d):
        to_output[j, : nlab[j]] = [species[j].index(name) for name in internal[j]]
    counter = np.full((d, width), -1, dtype=np.int64)
    if fixed:
        keys: dict[tuple[int, str], int] = {}
        low = []
        for j in range(d):
            occ = {str(sp): float(x) for sp, x in parent[int(sites[j])].species.items()}
            occ.setdefault(VACANCY, 1.0 - sum(occ.values()))
            for lab, name in enumerate(internal[j]):
                key = (int(sublattice[j]), name)
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
    occupied = np.zeros((d, width), dtype=bool)
    for j in range(d):
        occupied[j, : nlab[j]] = [name != VACANCY for name in internal[j]]
    near = None if min_distance is None else neighbours(parent, min_distance)
    names = tuple(dict.fromkeys(name for names in internal for name in names))
    gid = np.full((d, width), -1, dtype=np.int64)
    lid = np.full((d, len(names)), -1, dtype=np.int64)
    for j in range(d):
        for lab, name in enumerate(internal[j]):
            gid[j, lab] = names.index(name)
            lid[j, names.index(name)] = lab
    roles: dict[tuple, int] = {}
    role = np.array([roles.setdefault((tuple(lid[j]), tuple(counter[j])), len(roles)) for j in range(d)],
                    dtype=np.int64)
    return _Problem(parent, sites, species, sym, nlab, occupied, counter, to_output, per_cell,
                    np.asarray(low_a, float), np.asarray(high_a, float), near, names, gid, lid, role)


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


@numba.njit(cache=True, no_cpython_wrapper=True)
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


@numba.njit(cache=True, no_cpython_wrapper=True)
def _is_canonical_legal(lab, src, is_translation, gid, lid, counter, lo, hi):
    """:func:`_is_canonical` where an image may put a species where it is not allowed.

    The image of ``lab`` under ``g`` carries, at position ``c``, the species of
    position ``src[g, c]``, as site ``c``'s label (``lid[c % d, gid[...]]``, -1
    if not allowed there). Only legal images (every species allowed, counters
    within ``[lo, hi]``) are members of the orbit, so a smaller image rejects
    ``lab`` only if it is legal.
    """
    m = lab.shape[0]
    d = gid.shape[0]
    counts = np.zeros(lo.shape[0], dtype=np.int64)
    for g in range(src.shape[0]):
        c = 0
        v = lab[0]
        while c < m:
            s = src[g, c]
            v = lid[c % d, gid[s % d, lab[s]]]
            if v != lab[c]:
                break
            c += 1
        if c == m:
            if is_translation[g]:
                return False
            continue
        if v < 0 or v > lab[c]:
            continue
        legal = True
        for q in range(lo.shape[0]):
            counts[q] = 0
        for e in range(m):
            s = src[g, e]
            v = lid[e % d, gid[s % d, lab[s]]]
            if v < 0:
                legal = False
                break
            if counter[e, v] >= 0:
                counts[counter[e, v]] += 1
        if legal:
            for q in range(lo.shape[0]):
                if counts[q] < lo[q] or counts[q] > hi[q]:
                    legal = False
                    break
        if legal:
            return False
    return True


@numba.njit(cache=True)
def _enumerate_cell(nlab, counter, lo, hi, cap, src, is_translation, occupied, occ_counter,
                    nbr_ptr, nbr, clique, lonely, relabel, gid, lid, out, width):
    """Depth-first walk over the labellings of one supercell, keeping orbit representatives.

    ``nlab[c]``, ``counter[c, l]`` and ``occupied[c, l]`` are per position;
    ``cap[c, k]`` is how many positions from ``c`` on can still feed counter
    ``k``; ``src[g]`` is the inverse of group element ``g``, so the image of
    ``lab`` under ``g`` is ``lab[src[g]]``. Exclusion: ``nbr[nbr_ptr[c]:nbr_ptr[c + 1]]``
    are the later positions that may not hold an atom when ``c`` does,
    ``clique[c]`` a clique of the exclusion graph holding ``c`` (one atom at
    most each) and ``lonely[c]`` marks positions that can never hold an atom.
    ``relabel``: some element of the group maps a site onto one with other
    species or counters (see :func:`_is_canonical_legal`). Row ``i`` is written to ``out[i * width: i * width + m]`` while it fits;
    returns the number of rows found.
    """
    m = nlab.shape[0]
    nk = lo.shape[0]
    lab = np.empty(m, dtype=np.int8)
    for c in range(m):
        lab[c] = -1
    counts = np.zeros(nk, dtype=np.int64)
    blocked = np.zeros(m, dtype=np.int64)  # atoms next to c among earlier positions (+1 if lonely)
    avail = np.zeros(m, dtype=np.int64)  # per clique: open positions that could still hold an atom
    for c in range(m):
        if lonely[c]:
            blocked[c] = 1
        else:
            avail[clique[c]] += 1
    room = 0  # cliques with an open position: most atoms the open positions can still take
    for q in range(m):
        if avail[q] > 0:
            room += 1
    capacity = out.shape[0] // width if width > 0 else 0
    n = 0
    c = 0
    while c >= 0:
        prev = lab[c]
        if prev < 0:  # entering c: it is no longer open
            if blocked[c] == 0:
                avail[clique[c]] -= 1
                if avail[clique[c]] == 0:
                    room -= 1
        else:  # undo the previous label
            if counter[c, prev] >= 0:
                counts[counter[c, prev]] -= 1
            if occupied[c, prev]:
                for e in range(nbr_ptr[c], nbr_ptr[c + 1]):
                    o = nbr[e]
                    blocked[o] -= 1
                    if blocked[o] == 0:
                        avail[clique[o]] += 1
                        if avail[clique[o]] == 1:
                            room += 1
        nxt = prev + 1
        if blocked[c] > 0:
            while nxt < nlab[c] and occupied[c, nxt]:
                nxt += 1
        if nxt >= nlab[c]:  # leaving c: open again
            lab[c] = -1
            if blocked[c] == 0:
                avail[clique[c]] += 1
                if avail[clique[c]] == 1:
                    room += 1
            c -= 1
            continue
        lab[c] = nxt
        if counter[c, nxt] >= 0:
            counts[counter[c, nxt]] += 1
        if occupied[c, nxt]:
            for e in range(nbr_ptr[c], nbr_ptr[c + 1]):
                o = nbr[e]
                blocked[o] += 1
                if blocked[o] == 1:
                    avail[clique[o]] -= 1
                    if avail[clique[o]] == 0:
                        room -= 1
        ok = True
        need = 0  # atoms still missing from the lower limits
        for q in range(nk):
            if counts[q] > hi[q] or counts[q] + cap[c + 1, q] < lo[q]:
                ok = False
                break
            if occ_counter[q] and counts[q] < lo[q]:
                need += lo[q] - counts[q]
        if not ok or need > room:
            continue
        if c < m - 1:
            c += 1
            continue
        if relabel:
            canonical = _is_canonical_legal(lab, src, is_translation, gid, lid, counter, lo, hi)
        else:
            canonical = _is_canonical(lab, src, is_translation)
        if canonical:
            if n < capacity:
                for e in range(m):
                    out[n * width + e] = lab[e]
            n += 1
    return n


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


def _position_tables(problem: _Problem, n: int, lo: np.ndarray) -> tuple[np.ndarray, ...]:
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


def _exclusion_graph(problem: _Problem, hnf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exclusion edges ``(E, 2)`` and never-occupied positions of supercell ``hnf`` (none without exclusion)."""
    m = int(round(abs(np.linalg.det(hnf)))) * len(problem.sites)
    if problem.near is None:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(m, dtype=bool)
    return supercell_graph(problem.near, hnf, len(problem.sites))


def _exclusion_tables(edges: np.ndarray, lonely: np.ndarray) -> tuple[np.ndarray, ...]:
    """Later neighbours of each position (CSR ``nbr_ptr``, ``nbr``) and a greedy clique cover.

    Each position joins the clique of the first earlier position that it and
    all that clique's members neighbour; a clique is named by its first position.
    """
    m = len(lonely)
    if not len(edges):
        return np.zeros(m + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.arange(m, dtype=np.int64)
    order = np.argsort(edges[:, 0], kind="stable")
    nbr = np.ascontiguousarray(edges[order, 1])
    nbr_ptr = np.zeros(m + 1, dtype=np.int64)
    nbr_ptr[1:] = np.cumsum(np.bincount(edges[:, 0], minlength=m))
    adjacent = [set() for _ in range(m)]
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


def iter_labelings(parent: Structure, sizes: Iterable[int], concentrations=None, symprec: float = 1e-3,
                   min_distance: float | None = None,
                   max_rows: int | None = DEFAULT_MAX_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream the symmetry-distinct orderings one supercell at a time.

    Arguments as :func:`enumerate_labelings`.

    Yields
    ------
    hnf, labels
        A lower-triangular HNF ``(3, 3)`` and an ``(k, N * d)`` int8 table of its
        orderings (label ``l`` of column ``c`` is ``species[c % d][l]`` of
        :func:`almat.orderings.disorder_of`), rows in increasing order; sizes and
        supercells in increasing order.
    """
    problem = _problem(parent, concentrations, symprec, min_distance)
    for n, hnf, group, count in _plan(problem, _check_sizes(sizes, problem), max_rows):
        m = n * len(problem.sites)
        labels = np.empty((count, m), dtype=np.int8)
        _fill(problem, n, hnf, group, count, labels.reshape(-1), m)
        yield hnf, labels


def _plan(problem: _Problem, sizes: list[int],
          max_rows: int | None) -> list[tuple[int, np.ndarray, tuple[np.ndarray, np.ndarray], int]]:
    """(size, HNF, its group as :func:`site_permutations` gives it, number of orderings) of every
    supercell, refused if over ``max_rows`` in all."""
    plan = []
    for n in sizes:
        bounds = problem.bounds(n)
        if bounds is None:
            continue
        for hnf, stab in distinct_supercells(n, problem.sym.rotations):
            group = site_permutations(hnf, problem.sym, stab)
            plan.append((n, hnf, group, _count_cell(problem, hnf, group[0], *bounds)))
    total = sum(p[3] for p in plan)
    if max_rows is not None and total > max_rows:
        width = max(sizes) * len(problem.sites)
        raise EnumerationTooLargeError(
            f"There are {total:,} symmetry-distinct orderings at cell {_sizes_text(sizes)}, more "
            f"than max_rows={max_rows:,} (the table alone would take {total * width / 1e9:.1f} GB). "
            f"{_suggestion(problem)}Choose smaller cell sizes, or pass a larger max_rows "
            "(max_rows=None for no limit) if you really need them all."
        )
    return plan


def _sizes_text(sizes: list[int]) -> str:
    if len(sizes) == 1:
        return f"size {sizes[0]}"
    if list(sizes) == list(range(sizes[0], sizes[-1] + 1)):
        return f"sizes {sizes[0]} to {sizes[-1]}"
    return f"sizes {list(sizes)}"


def _suggestion(problem: _Problem) -> str:
    """Suggest excluding sites closer than the shortest disordered-site distance, rounded up to 0.5 Å."""
    if problem.near is not None:
        return ""
    near = neighbours(problem.parent, max(problem.parent.lattice.abc) + 0.1)
    frac = problem.parent.frac_coords[problem.sites]
    vec = (frac[near.other] + near.shift - frac[near.centre]) @ problem.parent.lattice.matrix
    r = float(np.linalg.norm(vec, axis=1).min())
    return (f"Two disordered sites are only {r:.2f} Å apart: min_distance={np.floor(r / 0.5 + 1) * 0.5:.1f} "
            "keeps atoms off both and leaves far fewer orderings. ")


def _fill(problem: _Problem, n: int, hnf: np.ndarray, group: tuple[np.ndarray, np.ndarray], count: int,
          out: np.ndarray, width: int) -> None:
    """Enumerate the orderings of one supercell into ``out`` (flat, row stride ``width``), output labels."""
    lo, hi = problem.bounds(n)
    nlab, counter, occupied, cap = _position_tables(problem, n, lo)
    src, is_translation = _group(*group)
    edges, lonely = _exclusion_graph(problem, hnf)
    nbr_ptr, nbr, clique = _exclusion_tables(edges, lonely)
    roles = problem.role[np.arange(len(nlab)) % len(problem.sites)]
    relabel = bool(np.any(roles[src] != roles))
    found = _enumerate_cell(nlab, counter, lo, hi, cap, src, is_translation, occupied,
                            problem.occupied_counter, nbr_ptr, nbr, clique, lonely, relabel,
                            problem.gid, problem.lid, out[: count * width], width)
    if found != count:
        raise ArithmeticError(f"Supercell {hnf.tolist()}: the walk found {found} orderings but "
                              f"Burnside's lemma counts {count}.")
    m = len(nlab)
    rows = out[: count * width].reshape(count, width)[:, :m]
    rows[:] = _to_output(problem, rows, n)


def _to_output(problem: _Problem, labels: np.ndarray, n: int) -> np.ndarray:
    """Renumber internal labels to each site's own species order (rows stay sorted)."""
    if np.all(problem.to_output == np.arange(problem.to_output.shape[1])):
        return labels
    table = np.tile(problem.to_output, (n, 1))
    out = np.take_along_axis(table, labels.T.astype(np.int64), axis=1).T.astype(np.int8)
    return out[np.lexsort(out.T[::-1])] if len(out) else out


def _check_sizes(sizes: Iterable[int], problem: _Problem) -> list[int]:
    """The one check of cell sizes: positive integers, countable in reasonable time, and fitting the composition."""
    sizes = sorted({int(s) for s in ([sizes] if np.isscalar(sizes) else sizes)})
    if not sizes or sizes[0] < 1:
        raise CellSizeError(f"Cell sizes must be positive integers (numbers of primitive cells in a "
                            f"supercell, e.g. [1, 2]); got {sizes or 'none'}.")
    work = 0
    for n in sizes:
        work += _count_work(problem, n)
        if work > MAX_COUNT_WORK:
            raise CellSizeError(_too_large_to_count(problem, sizes[0], n))
    if all(problem.bounds(n) is None for n in sizes):
        raise OccupancyError(_no_whole_counts(problem, sizes))
    return sizes


def _too_large_to_count(problem: _Problem, first: int, n: int) -> str:
    """Why sizes ``first`` to ``n`` are refused, and which sizes can be counted instead."""
    d = len(problem.sites)
    if n == first:
        largest = 1
        while _count_work(problem, largest + 1) <= MAX_COUNT_WORK:
            largest += 1
        return (f"Cell size {n} is too large to count in reasonable time ({hnf_count(n):,} supercells of "
                f"{n * d:,} disordered sites: minutes to hours of work, and far too many orderings to "
                f"build). Sizes up to about {largest} can be counted one at a time.")
    most, work = first, _count_work(problem, first)
    while work + _count_work(problem, most + 1) <= MAX_COUNT_WORK:
        most += 1
        work += _count_work(problem, most)
    cells = sum(hnf_count(k) for k in range(first, n + 1))
    return (f"Cell sizes {first} to {n} are too many to count together in reasonable time ({cells:,} "
            f"supercells of up to {n * d:,} disordered sites). Sizes {first} to {most} can be counted; "
            "ask for fewer or smaller sizes.")


def _count_work(problem: _Problem, n: int) -> int:
    """Effort of counting at size ``n``: ``hnf_count(n) * n * (n d + |rotations|)``, about 3 µs a unit."""
    return hnf_count(n) * n * (n * len(problem.sites) + len(problem.sym.rotations))


def _no_whole_counts(problem: _Problem, sizes: list[int]) -> str:
    """Explain why no size fits the composition, with the smallest size that does."""
    for k in range(len(problem.low)):
        j = int(np.flatnonzero((problem.counter == k).any(axis=1))[0])
        if problem.low[k] != problem.high[k]:
            continue
        x = Fraction(float(problem.low[k])).limit_denominator(1000)
        need = (x * int(problem.per_cell[k])).denominator
        if any(n % need == 0 for n in sizes):
            continue
        name = problem.species[j][int(problem.to_output[j, list(problem.counter[j]).index(k)])]
        where = np.round(problem.parent[int(problem.sites[j])].frac_coords, 4).tolist()
        return (
            f"The {name} sites ({problem.per_cell[k]} per cell, e.g. at {where}) have occupancy "
            f"{float(x):g} = {x}. An ordered structure needs a whole number of {name}, "
            f"{float(x):g} x {problem.per_cell[k]} x N, which happens only when N is a multiple of "
            f"{need}; you asked for cell {_sizes_text(sizes)}. Ask for N = {need}, round the occupancy "
            "(the lesson uses almat.set_occupancy(structure, 0.5), exactly Li6PS5Cl), or pass "
            "concentrations='any'."
        )
    return (
        f"No supercell of {_sizes_text(sizes)} can hold the composition asked for: the "
        "concentration range holds no whole count of some species. Choose larger or other cell "
        "sizes, or widen the range."
    )


def enumerate_labelings(parent: Structure, sizes: Iterable[int], concentrations=None,
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
        see the module docstring.
    symprec
        Symmetry tolerance in Å.
    min_distance
        Shortest allowed distance in Å between two occupied disordered sites,
        periodic images included (``None``: no restriction). The rows are exactly
        the unconstrained rows that obey it.
    max_rows
        Refuse, before allocating anything, to build more rows than this
        (``None``: no limit). The count comes from :func:`count_labelings`.

    Returns
    -------
    Orderings
        Sorted by cell size, then HNF, then label row. Superperiodic orderings and
        orderings equivalent under the space group and lattice translations appear once.

    Raises
    ------
    EnumerationTooLargeError
        More than ``max_rows`` orderings; the message gives the count.
    """
    problem = _problem(parent, concentrations, symprec, min_distance)
    sizes = _check_sizes(sizes, problem)
    plan = _plan(problem, sizes, max_rows)
    d = len(problem.sites)
    width = max(sizes) * d
    table = np.full((sum(p[3] for p in plan), width), -1, dtype=np.int8)
    flat = table.reshape(-1)
    hnfs, index = [], []
    row = 0
    for n, hnf, group, count in plan:
        _fill(problem, n, hnf, group, count, flat[row * width:], width)
        hnfs.append(hnf)
        index.append(np.full(count, len(hnfs) - 1, dtype=np.int64))
        row += count
    return Orderings(parent, problem.sites, problem.species,
                     np.array(hnfs, dtype=np.int64).reshape(-1, 3, 3),
                     np.concatenate(index) if index else np.zeros(0, dtype=np.int64), table)


def count_labelings(parent: Structure, sizes: Iterable[int], concentrations=None,
                    symprec: float = 1e-3, min_distance: float | None = None) -> dict[int, int]:
    """Number of symmetry-distinct orderings per cell size, without enumerating them.

    For each representative supercell ``H`` with group ``G_H`` (stabiliser times
    the ``N`` translations ``A``), Burnside's lemma with Möbius inversion over
    the subgroups ``T`` of ``A`` gives the orbits of non-superperiodic labellings::

        count(H) = 1/|G_H| * sum_{g in G_H} sum_{T <= A} mu(T) * fix(<g, T>)

    where ``fix`` counts labellings constant on the orbits (blocks) of ``<g, T>``
    that meet the composition limits and, with ``min_distance``, leave no two
    atoms closer than that: a block holding two excluding sites stays vacant,
    and blocks joined by exclusion edges are counted together (one dynamic
    programme over the blocks, component by component, remembering which open
    blocks hold atoms). ``mu(T) = prod_p (-1)^k p^(k(k-1)/2)`` when ``T`` is a
    product of elementary abelian groups ``(Z_p)^k`` (zero otherwise).

    Returns
    -------
    dict
        Cell size -> number of orderings (same arguments as :func:`enumerate_labelings`).

    Raises
    ------
    CellSizeError
        Sizes too large to count in reasonable time (the message names the size).
    EnumerationTooLargeError
        ``min_distance`` joins so many sites that the exact count would need too many states.
    """
    problem = _problem(parent, concentrations, symprec, min_distance)
    counts = {}
    for n in _check_sizes(sizes, problem):
        bounds = problem.bounds(n)
        counts[n] = 0 if bounds is None else sum(
            _count_cell(problem, hnf, site_permutations(hnf, problem.sym, stab)[0], *bounds)
            for hnf, stab in distinct_supercells(n, problem.sym.rotations))
    return counts


def _count_cell(problem: _Problem, hnf: np.ndarray, perms: np.ndarray, lo: np.ndarray,
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
    graph = _exclusion_graph(problem, hnf)
    terms = _pattern_terms(problem, perms, lo, hi, len(zs))
    plain = problem.near is None and len(terms) == 1
    memo: dict[bytes, int] = {}
    total = 0
    for members, mu in _mobius_subgroups(hnf):
        blocks = _orbit_labels(perms, [shift[u] for u in members])
        if plain:  # fix(<g, T>) depends only on how many blocks of each size each site has
            profiles, multiplicity = _block_profiles(blocks, d)
            for row, times in zip(profiles, multiplicity.tolist()):
                key = row.tobytes()
                if key not in memo:
                    memo[key] = _profile_count(problem, row, blocks.shape[1], lo, hi)
                total += mu * times * memo[key]
            continue
        for row in blocks:
            for sign, allowed, counters, low, high in terms:
                total += sign * mu * _fixed_count(problem, row, allowed, counters, low, high, graph, len(zs))
    order = len(perms)
    if total % order:
        raise ArithmeticError(f"Burnside sum {total} is not a multiple of |G| = {order}.")
    return total // order


def _pattern_terms(problem: _Problem, perms: np.ndarray, lo: np.ndarray, hi: np.ndarray,
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
        raise EnumerationTooLargeError(
            f"At cell size {n} the symmetry moves sites onto sites with other allowed species in "
            f"{len(patterns)} different ways; counting exactly would need 2^{len(patterns)} terms (at "
            f"most 2^{MAX_PATTERNS} are feasible). Give symmetry-equivalent sites the same species."
        )
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


def _block_profiles(blocks: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct block profiles and how often each occurs among the rows of ``blocks``.

    Profile entry ``j * (m + 1) + k`` counts the blocks of size ``k`` headed by site ``j``.
    """
    g, m = blocks.shape
    width = d * (m + 1)
    sizes = np.bincount((blocks + (np.arange(g) * m)[:, None]).ravel(), minlength=g * m).reshape(g, m)
    row, head = np.nonzero(blocks == np.arange(m))
    where = row * width + (head % d) * (m + 1) + sizes[row, head]
    profile = np.bincount(where, minlength=g * width).reshape(g, width)
    keys = np.ascontiguousarray(profile).view(np.dtype((np.void, width * 8))).ravel()
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return profile[first], counts


def _profile_count(problem: _Problem, profile: np.ndarray, m: int, lo: np.ndarray, hi: np.ndarray) -> int:
    """Labellings constant on blocks with this profile whose counter totals lie in ``[lo, hi]``."""
    groups = [(int(i) // (m + 1), int(i) % (m + 1), int(profile[i])) for i in np.flatnonzero(profile)]
    if not len(lo):
        return int(np.prod([int(problem.nlab[j]) ** times for j, _, times in groups], dtype=object))
    states = {tuple([0] * len(lo)): 1}
    for j, size, times in groups:
        for _ in range(times):
            new: dict[tuple[int, ...], int] = {}
            for state, ways in states.items():
                for lab in range(int(problem.nlab[j])):
                    k = int(problem.counter[j, lab])
                    if k >= 0:
                        if state[k] + size > hi[k]:
                            continue
                        key = state[:k] + (state[k] + size,) + state[k + 1:]
                    else:
                        key = state
                    new[key] = new.get(key, 0) + ways
            states = new
    return sum(w for st, w in states.items() if all(x >= a for x, a in zip(st, lo)))


def _block_graph(blocks: np.ndarray, graph: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Blocks in processing order, block-level exclusion, and the step after which each block is done.

    Returns ``heads`` (block representatives, in processing order: breadth first
    through each connected component), ``banned`` (blocks that hold two
    excluding sites or a lonely one: never atoms), ``adjacent`` (neighbour sets)
    and ``last`` (the latest step at which a neighbour is processed).
    """
    heads, inverse = np.unique(blocks, return_inverse=True)
    edges, lonely = graph
    nb = len(heads)
    banned = np.zeros(nb, dtype=bool)
    banned[inverse[lonely]] = True
    pairs = inverse[edges] if len(edges) else np.zeros((0, 2), dtype=np.int64)
    banned[pairs[pairs[:, 0] == pairs[:, 1], 0]] = True
    adjacent: list[set[int]] = [set() for _ in range(nb)]
    for a, b in pairs[pairs[:, 0] != pairs[:, 1]].tolist():
        adjacent[a].add(b)
        adjacent[b].add(a)
    order, seen = [], np.zeros(nb, dtype=bool)
    for start in range(nb):
        if seen[start]:
            continue
        seen[start] = True
        queue = [start]
        for b in queue:
            order.append(b)
            for o in sorted(adjacent[b]):
                if not seen[o]:
                    seen[o] = True
                    queue.append(o)
    step = np.empty(nb, dtype=np.int64)
    step[order] = np.arange(nb)
    renamed = [{int(step[o]) for o in adjacent[b]} for b in order]
    last = np.array([max(a, default=-1) for a in renamed], dtype=np.int64)
    return heads[order], banned[order], renamed, last


def _fixed_count(problem: _Problem, blocks: np.ndarray, allowed: np.ndarray, counters: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray, graph: tuple[np.ndarray, np.ndarray], n: int) -> int:
    """Labellings constant on each block, allowed everywhere, with counter totals in ``[lo, hi]`` and
    no two atoms excluding each other.

    Blocks are processed one by one (step ``s``); a state is the counter totals
    and the set of atom-holding blocks that still have an unprocessed neighbour.
    Without exclusion that set is always empty.
    """
    heads, banned, adjacent, last = _block_graph(blocks, graph)
    nb = len(heads)
    opened = np.zeros(nb + 1, dtype=np.int64)
    np.add.at(opened, np.arange(nb)[last > np.arange(nb)], 1)
    np.add.at(opened, last[last > np.arange(nb)], -1)
    if nb and np.cumsum(opened).max() > MAX_FRONTIER:
        raise EnumerationTooLargeError(
            f"min_distance={problem.near.min_distance:g} Å links so many sites at cell size {n} that "
            f"counting exactly would track {int(np.cumsum(opened).max())} linked groups of sites at "
            f"once (at most {MAX_FRONTIER} are feasible). Use a smaller min_distance (one that only "
            "separates the closest pairs) or smaller cell sizes."
        )
    options = _block_options(problem, blocks, heads, allowed, counters)
    closing: dict[int, list[int]] = {}
    for s, t in enumerate(last.tolist()):
        if t > s:
            closing.setdefault(t, []).append(s)
    hi_list = hi.tolist()
    states = {((), tuple([0] * len(lo))): 1}
    for s in range(nb):
        done = closing.get(s, ())
        new: dict[tuple, int] = {}
        for (atoms, state), ways in states.items():
            crowded = banned[s] or any(a in adjacent[s] for a in atoms)
            for atom, steps in options[s]:
                if atom and crowded:
                    continue
                key = list(state)
                for k, c in steps:
                    key[k] += c
                if any(key[k] > hi_list[k] for k, _ in steps):
                    continue
                after = atoms + (s,) if atom and last[s] > s else atoms
                if done:
                    after = tuple(a for a in after if a not in done)
                entry = (after, tuple(key))
                new[entry] = new.get(entry, 0) + ways
        states = new
    return sum(w for (_, st), w in states.items() if all(x >= a for x, a in zip(st, lo)))


def _block_options(problem: _Problem, blocks: np.ndarray, heads: np.ndarray, allowed: np.ndarray,
                   counters: np.ndarray) -> list[list[tuple[bool, list[tuple[int, int]]]]]:
    """For each block (in processing order): per species allowed on all its positions, whether it is
    an atom and which counters it raises by how much."""
    nb, m = len(heads), len(blocks)
    step = np.empty(m, dtype=np.int64)
    step[heads] = np.arange(nb)
    by_block = np.argsort(step[blocks], kind="stable")
    starts = np.searchsorted(step[blocks][by_block], np.arange(nb))
    sizes = np.diff(np.append(starts, m)).tolist()
    ok = np.logical_and.reduceat(allowed[by_block], starts, axis=0)
    grouped = counters[:, by_block, :]
    low = np.minimum.reduceat(grouped, starts, axis=1)
    same = (low == np.maximum.reduceat(grouped, starts, axis=1))
    atom = [name != VACANCY for name in problem.names]
    options = []
    for b in range(nb):
        here = []
        for s in np.flatnonzero(ok[b]).tolist():
            steps: dict[int, int] = {}
            for i in range(len(counters)):
                if same[i, b, s]:
                    if low[i, b, s] >= 0:
                        steps[int(low[i, b, s])] = steps.get(int(low[i, b, s]), 0) + sizes[b]
                else:
                    seg = grouped[i, starts[b]: starts[b] + sizes[b], s]
                    for k in seg[seg >= 0].tolist():
                        steps[k] = steps.get(k, 0) + 1
            here.append((atom[s], list(steps.items())))
        options.append(here)
    return options


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
