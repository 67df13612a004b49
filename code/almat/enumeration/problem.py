"""The enumeration problem: the parent's disordered sites, their symmetry, the composition rule and the sizes.

Everything here is checked and set up once per request, before any counting
or enumerating, so that a bad request is refused at once.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from numbers import Integral, Real

import numpy as np
from pymatgen.core import Structure

from almat.enumeration.errors import (
    CellSizeError,
    ConcentrationError,
    OptionError,
    ParentError,
    bad_concentrations,
    bad_count_option,
    bad_range,
    bad_sizes,
    index_too_large,
    no_count_in_range,
    no_disordered_site,
    no_whole_count,
    not_a_structure,
    size_too_large_to_count,
    sizes_too_many_to_count,
    split_site_hint,
    unknown_species,
)
from almat.enumeration.exclusion import (
    Neighbours,
    check_min_distance,
    neighbours,
    shortest_distance,
    supercell_graph,
)
from almat.enumeration.hnf import MAX_INDEX, SiteSymmetry, hnf_count, site_symmetry
from almat.orderings import VACANCY, disorder_of, element_symbol
from almat.structures import OCCUPANCY_DENOMINATOR, OccupancyError

#: Tolerance on composition fractions times site counts.
_TOL = 1e-6

#: Largest counting effort accepted (:func:`count_work`, summed over the sizes): about half a
#: minute at most (fcc up to cell size 24 alone, Li6PS5Cl up to 16 alone or 1 to 14).
MAX_COUNT_WORK = 4_000_000


@dataclass(frozen=True)
class Problem:
    """Everything about the parent, the composition rule and the sizes that the counting and the walk need.

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
    sizes: tuple[int, ...]  # the cell sizes asked for, increasing, each countable
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

    def exclusion_graph(self, hnf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exclusion edges ``(E, 2)`` and never-occupied positions of supercell ``hnf`` (none without
        exclusion)."""
        if self.near is None:
            m = int(round(abs(np.linalg.det(hnf)))) * len(self.sites)
            return np.zeros((0, 2), dtype=np.int64), np.zeros(m, dtype=bool)
        return supercell_graph(self.near, hnf, len(self.sites))

    def split_site_hint(self) -> str:
        """Without exclusion, the ``min_distance`` (rounded up to 0.5 Å) that keeps atoms off the closest pair."""
        if self.near is not None:
            return ""
        r = shortest_distance(self.parent)
        return split_site_hint(r, np.floor(r / 0.5 + 1) * 0.5)


def setup(parent: Structure, sizes: Iterable[int] | int, concentrations=None, symprec: float = 1e-3,
          min_distance: float | None = None) -> Problem:
    """Check a request and set up sites, symmetry, label numbering, composition counters and exclusion.

    Raises
    ------
    ParentError, OccupancyError, ExclusionError, ConcentrationError, SymmetryError, CellSizeError
        One line each, naming the input and what to change.
    """
    if not isinstance(parent, Structure):
        raise ParentError(not_a_structure(parent))
    wanted = parse_sizes(sizes)
    sites, species = disorder_of(parent)
    if len(sites) == 0:
        raise OccupancyError(no_disordered_site())
    min_distance = check_min_distance(min_distance)
    fixed = concentrations is None
    if not fixed and not (concentrations == "any" or isinstance(concentrations, Mapping)):
        raise ConcentrationError(bad_concentrations(concentrations))
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
    problem = Problem(parent, (), sites, species, sym, nlab, occupied, counter, to_output, per_cell,
                      np.asarray(low_a, float), np.asarray(high_a, float), None, names, gid, lid, role)
    checked = _check_sizes(wanted, problem)
    near = None if min_distance is None else neighbours(parent, min_distance, checked[-1])
    return replace(problem, sizes=tuple(checked), near=near)


def parse_sizes(sizes: Iterable[int] | int) -> Sequence[int]:
    """The distinct sizes asked for, increasing; refuse anything but whole numbers >= 1.

    A ``range`` stays a range, so ``range(1, 10**12)`` is refused by the size check
    at once instead of being listed.
    """
    if isinstance(sizes, range):
        if len(sizes) == 0 or sizes.step < 0 or sizes.start < 1:
            raise CellSizeError(bad_sizes(sizes))
        return sizes
    items = [sizes] if np.isscalar(sizes) else sizes
    try:
        items = list(items)
    except TypeError:
        raise CellSizeError(bad_sizes(sizes)) from None
    out = set()
    for s in items:
        whole = isinstance(s, Integral) or (isinstance(s, Real) and float(s).is_integer())
        if isinstance(s, (bool, np.bool_)) or not whole or int(s) < 1:
            raise CellSizeError(bad_sizes(sizes))
        out.add(int(s))
    if not out:
        raise CellSizeError(bad_sizes(sizes))
    return sorted(out)


def _parse_concentrations(concentrations: Mapping, internal: list[tuple[str, ...]],
                          counter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest fraction per named species; sets the counter of every label that carries it."""
    allowed = sorted({name for names in internal for name in names})
    low, high = [], []
    for k, (name, value) in enumerate(concentrations.items()):
        hits = [(j, lab) for j, names in enumerate(internal) for lab, other in enumerate(names)
                if other == name or element_symbol(other) == element_symbol(str(name))]
        if not hits:
            raise ConcentrationError(unknown_species(name, allowed))
        try:
            lo, hi = (value, value) if np.isscalar(value) else tuple(value)
            ok = 0 <= float(lo) <= float(hi) <= 1
        except (TypeError, ValueError):
            ok = False
        if not ok or isinstance(lo, str) or isinstance(hi, str):
            raise ConcentrationError(bad_range(name, value))
        for j, lab in hits:
            counter[j, lab] = k
        low.append(float(lo))
        high.append(float(hi))
    return np.array(low, dtype=float), np.array(high, dtype=float)


def check_count_option(name: str, value: object, none_ok: bool) -> int | None:
    """``value`` as an int (or None where ``none_ok``); refuse anything but a whole number >= 0."""
    if value is None and none_ok:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < 0:
        raise OptionError(bad_count_option(name, value, none_ok))
    return int(value)


def count_work(problem: Problem, n: int) -> int:
    """Effort of counting at size ``n``: ``hnf_count(n) * n * (n d + |rotations|)``, about 3 µs a unit."""
    return hnf_count(n) * n * (n * len(problem.sites) + len(problem.sym.rotations))


def _check_sizes(sizes: Sequence[int], problem: Problem) -> list[int]:
    """The one check of cell sizes: countable in reasonable time, and fitting the composition.

    Stops at the first size over the budget, so a huge range is refused as fast as a small one.
    """
    work = 0
    for n in sizes:
        if n > MAX_INDEX:
            raise CellSizeError(index_too_large(n))
        work += count_work(problem, n)
        if work > MAX_COUNT_WORK:
            raise CellSizeError(_too_large_to_count(problem, sizes[0], n))
    sizes = list(sizes)
    if all(problem.bounds(n) is None for n in sizes):
        raise OccupancyError(_no_whole_counts(problem, sizes))
    return sizes


def _too_large_to_count(problem: Problem, first: int, n: int) -> str:
    """Why sizes ``first`` to ``n`` are refused, and which sizes can be counted instead."""
    d = len(problem.sites)
    if n == first:
        largest = 1
        while count_work(problem, largest + 1) <= MAX_COUNT_WORK:
            largest += 1
        return size_too_large_to_count(n, hnf_count(n), n * d, largest)
    most, work = first, count_work(problem, first)
    while work + count_work(problem, most + 1) <= MAX_COUNT_WORK:
        most += 1
        work += count_work(problem, most)
    cells = sum(hnf_count(k) for k in range(first, n + 1))
    return sizes_too_many_to_count(first, n, cells, n * d, most)


def _no_whole_counts(problem: Problem, sizes: list[int]) -> str:
    """Explain why no size fits the composition, with the smallest size that does."""
    for k in range(len(problem.low)):
        j = int(np.flatnonzero((problem.counter == k).any(axis=1))[0])
        if problem.low[k] != problem.high[k]:
            continue
        x = Fraction(float(problem.low[k])).limit_denominator(OCCUPANCY_DENOMINATOR)
        need = (x * int(problem.per_cell[k])).denominator
        if any(n % need == 0 for n in sizes):
            continue
        name = problem.species[j][int(problem.to_output[j, list(problem.counter[j]).index(k)])]
        where = np.round(problem.parent[int(problem.sites[j])].frac_coords, 4).tolist()
        return no_whole_count(name, int(problem.per_cell[k]), where, str(x), float(x), need, sizes)
    return no_count_in_range(sizes)
