"""Clusters of a parent's disordered sites, grouped into orbits by symmetry.

A cluster is a set of disordered sites. Each site is named as in
:mod:`almat.orderings`: its column ``j`` and the lattice vector ``n`` (primitive
units) of the cell it lies in, so it sits at fractional position ``b_j + n``.
A space-group operation ``x -> R x + t`` moves site ``(j, n)`` to
``(j', R n + s)``, where ``R b_j + t = b_j' + s``
(:func:`almat.enumeration.site_symmetry`). The clusters one operation, or a
lattice translation, carries onto each other form an *orbit*; a cluster
expansion has one term (one cluster-vector element) per orbit.

Cutoffs follow icet (Ångqvist et al., Adv. Theory Simul. 2, 1900015, 2019):
``cutoffs[0]`` bounds the distance of a pair, ``cutoffs[1]`` the largest
distance within a triplet, and so on. Orbits are sorted as icet sorts them
(by order, then radius, then multiplicity), so that cluster vectors have
icet's columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cmp_to_key

import numpy as np
import spglib
from pymatgen.core import Element, Structure

from almat.enumeration import SiteSymmetry, site_symmetry
from almat.errors import AlmatError
from almat.orderings import VACANCY, disorder_of, element_symbol

#: Distances within this much (Å) count as equal, as icet's default position tolerance.
TOLERANCE = 1e-5
ORDER_NAMES = {1: "point", 2: "pair", 3: "triplet", 4: "quadruplet"}


class ClusterError(AlmatError, ValueError):
    """A parent or cutoffs from which no clusters can be built."""


@dataclass(frozen=True, eq=False)
class Orbit:
    """Symmetry-equivalent clusters, one per lattice translation class.

    Attributes
    ----------
    sites
        ``(m, order)`` disordered column ``j`` of each site of each cluster.
    offsets
        ``(m, order, 3)`` lattice vector ``n`` (primitive units) of each site.
    distances
        Sorted interatomic distances within a cluster, in Å.
    radius
        Mean distance of a cluster's sites from their centroid, in Å (icet's radius).
    """

    sites: np.ndarray
    offsets: np.ndarray
    distances: tuple[float, ...]
    radius: float

    @property
    def order(self) -> int:
        """Number of sites in each cluster."""
        return int(self.sites.shape[1])

    @property
    def multiplicity(self) -> int:
        """Number of clusters per primitive cell."""
        return int(self.sites.shape[0])

    @property
    def name(self) -> str:
        """Order and distances, e.g. ``pair_1.81A`` or ``triplet_2.33_2.33_2.33A`` (:func:`orbit_name`)."""
        return orbit_name(self.order, self.distances)

    def __repr__(self) -> str:
        return f"Orbit({self.name}, multiplicity={self.multiplicity})"


def orbit_name(order: int, distances: Sequence[float]) -> str:
    """``pair_1.81A``, ``triplet_2.33_2.33_2.33A``: the order and the sorted distances in Å; ``point``."""
    kind = ORDER_NAMES.get(order, f"order{order}")
    return f"{kind}_" + "_".join(f"{x:.2f}" for x in sorted(distances)) + "A" if order > 1 else kind


def cluster_key(sites: np.ndarray, offsets: np.ndarray) -> tuple[int, ...]:
    """The same tuple for a cluster (columns ``(k,)``, offsets ``(k, 3)``) and every translation of it."""
    cluster = np.column_stack([np.asarray(sites), np.asarray(offsets)]).astype(np.int64)
    return tuple(int(x) for x in _canonical(cluster).ravel())


def cluster_orbits(parent: Structure, cutoffs: Sequence[float], points: bool = False,
                   symprec: float = 1e-3) -> list[Orbit]:
    """Orbits of the clusters of two or more disordered sites within the cutoffs.

    Parameters
    ----------
    parent
        Primitive cell with partially occupied (disordered) sites.
    cutoffs
        Cutoff in Å per cluster order, starting with pairs: a cluster of order
        ``k`` is kept when every distance within it is at most ``cutoffs[k - 2]``.
    points
        Also the orbits of single sites (one per sublattice of disordered
        sites); their correlations only depend on the composition.
    symprec
        Distance tolerance of spglib, in Å.

    Returns
    -------
    list of Orbit
        In icet's order: by order, then radius, then multiplicity; orbits
        alike in all three by their least cluster written in icet's cell.
    """
    cutoffs = check_cutoffs(cutoffs)
    sites, _ = disorder_of(parent)
    if len(sites) == 0:
        raise ClusterError("The parent has no partially occupied site, so it has no clusters to order.")
    # Sites are told apart by the species they allow, not by their occupancies (as in icet).
    symmetry = site_symmetry(parent, sites, symprec=symprec, use_occupancy=False)
    frac = parent.frac_coords[sites]
    lattice = parent.lattice.matrix
    frame = _icet_frame(parent, sites, symprec)
    found = _orbits(_clusters_within(frac, lattice, 1, 0.0), symmetry, frac, lattice, frame) if points else []
    for order, cutoff in enumerate(cutoffs, start=2):
        clusters = _clusters_within(frac, lattice, order, cutoff)
        if len(clusters):
            found += _orbits(clusters, symmetry, frac, lattice, frame)
    return [orbit for orbit, _ in sorted(found, key=cmp_to_key(_icet_order))]


def check_cutoffs(cutoffs: Sequence[float]) -> tuple[float, ...]:
    """The cutoffs as floats, or a :class:`ClusterError` that says what they must be."""
    try:
        values = [float(c) for c in cutoffs]
    except (TypeError, ValueError):
        values = []
    if not values or not all(np.isfinite(values)) or min(values) <= 0:
        raise ClusterError(
            f"cutoffs must be one or more positive distances in Å, pairs first (e.g. (8.0,) or (6.0, 5.0)); "
            f"got {cutoffs!r}."
        )
    return tuple(values)


def _clusters_within(frac: np.ndarray, lattice: np.ndarray, order: int, cutoff: float) -> np.ndarray:
    """Every cluster of ``order`` sites, one site in the home cell, all distances <= cutoff (Å).

    Returns ``(m, order, 4)`` rows ``(j, n1, n2, n3)``; a cluster may appear
    more than once (in other translations or site orders).
    """
    d = len(frac)
    # |Δf_i| <= cutoff |column i of L^-1|, plus the spread of the sites' own coordinates.
    reach = np.ceil(cutoff * np.linalg.norm(np.linalg.inv(lattice), axis=0) + np.ptp(frac, axis=0)).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-r - 1, r + 2) for r in reach], indexing="ij"), -1).reshape(-1, 3)
    # Every site within the cutoff of any home-cell site: the sites a cluster can use.
    sites = np.column_stack([np.tile(np.arange(d), len(grid)), np.repeat(grid, d, axis=0)])
    cart = (frac[sites[:, 0]] + sites[:, 1:]) @ lattice
    home = frac @ lattice
    near = (np.linalg.norm(cart[None] - home[:, None], axis=2) <= cutoff + 2 * TOLERANCE).any(axis=0)
    sites, cart = sites[near], cart[near]
    close = np.linalg.norm(cart[:, None] - cart[None], axis=2) <= cutoff + 2 * TOLERANCE
    np.fill_diagonal(close, False)
    starts = np.flatnonzero(np.all(sites[:, 1:] == 0, axis=1))
    # Grow cliques of the "close" graph from each home site; the sites after the first are
    # added in increasing index, so each cluster comes once per home site it has.
    cliques = starts[:, None]
    index = np.arange(len(sites))
    for size in range(1, order):
        allowed = close[cliques].all(axis=1)
        if size > 1:
            allowed &= index[None] > cliques[:, -1:]
        row, nxt = np.nonzero(allowed)
        cliques = np.column_stack([cliques[row], nxt])
    return sites[cliques]


def _canonical(clusters: np.ndarray) -> np.ndarray:
    """One representative per translation class: sites sorted by ``(j, n)``, first site at ``n = 0``."""
    span = int(np.abs(clusters[..., 1:]).max()) + 1
    width = 2 * span + 1
    shifted = clusters + np.array([0, span, span, span])
    code = ((shifted[..., 0] * width + shifted[..., 1]) * width + shifted[..., 2]) * width + shifted[..., 3]
    ordered = np.take_along_axis(clusters, np.argsort(code, axis=-1)[..., None], axis=-2)
    ordered[..., 1:] -= ordered[..., :1, 1:]
    return ordered


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of an integer array in lexicographic order, and each row's index among them."""
    by_row = np.lexsort(rows.T[::-1])
    ordered = rows[by_row]
    new = np.ones(len(rows), dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[by_row] = np.cumsum(new) - 1
    return ordered[new], inverse


def _orbits(clusters: np.ndarray, symmetry: SiteSymmetry, frac: np.ndarray, lattice: np.ndarray,
            frame: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[tuple[Orbit, tuple[int, ...]]]:
    """Group clusters (with their images under every operation) into orbits, each with its tie key."""
    j, n = clusters[..., 0], clusters[..., 1:]
    images = np.concatenate([
        symmetry.site_map[:, j][..., None],
        np.einsum("gab,mkb->gmka", symmetry.rotations, n) + symmetry.shift[:, j],
    ], axis=-1)  # (g, m, order, 4)
    g, m, order = images.shape[:3]
    classes, index = _unique_rows(_canonical(images).reshape(g * m, -1))
    index = index.reshape(g, m)
    label = np.empty(len(classes), dtype=np.int64)
    label[index] = np.broadcast_to(index.min(axis=0), index.shape)
    classes = classes.reshape(len(classes), order, 4)
    out = []
    for lab in np.unique(label):
        members = classes[label == lab]
        cart = (frac[members[0, :, 0]] + members[0, :, 1:]) @ lattice
        pairs = np.triu_indices(order, 1)
        distances = np.sort(np.linalg.norm(cart[pairs[0]] - cart[pairs[1]], axis=1))
        radius = float(np.linalg.norm(cart - cart.mean(axis=0), axis=1).mean())
        orbit = Orbit(members[..., 0], members[..., 1:], tuple(float(x) for x in distances), radius)
        out.append((orbit, _tie_key(members, frame)))
    return out


def _icet_frame(parent: Structure, sites: np.ndarray, symprec: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where icet puts the disordered sites: its site index, cell offset, and the map of cell vectors.

    icet works in spglib's standardised primitive cell, its sites typed by
    their allowed species. Site ``(j, n)`` here is site ``index[j]`` in cell
    ``offset[j] + n @ q`` there. Only the order of orbits that tie on order,
    radius and multiplicity depends on it; where that cell cannot be matched,
    the parent's own cell is used.
    """
    allowed = [tuple(sorted(str(sp) for sp in site.species)) + (() if site.is_ordered else ("?",))
               for site in parent]
    kinds = sorted(set(allowed))
    types = [kinds.index(a) + 1 for a in allowed]
    lattice = parent.lattice.matrix
    own = (np.asarray(sites), np.zeros((len(sites), 3), dtype=np.int64), np.eye(3, dtype=np.int64))
    standard = spglib.standardize_cell((lattice, parent.frac_coords, types), to_primitive=True,
                                       no_idealize=True, symprec=symprec)
    if standard is None or len(standard[2]) != len(parent):
        return own
    cell, positions, numbers = (np.asarray(x) for x in standard)
    positions = np.round(positions, 12) % 1.0  # as icet keeps them
    q = np.rint(lattice @ np.linalg.inv(cell)).astype(np.int64)
    cart = parent.frac_coords @ lattice
    for k in np.flatnonzero(numbers == types[0]):
        frac = (cart + positions[k] @ cell - cart[0]) @ np.linalg.inv(cell)
        diff = frac[:, None] - positions[None]
        residual = np.abs(diff - np.rint(diff)).max(axis=2)
        match = residual.argmin(axis=1)
        rows = np.arange(len(parent))
        if residual[rows, match].max() < 1e-4 and np.array_equal(numbers[match], types):
            shift = np.rint(diff[rows, match]).astype(np.int64)
            return match[sites], shift[sites], q
    return own


def _tie_key(members: np.ndarray, frame: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[int, ...]:
    """The orbit's least cluster in icet's cell: sites sorted by (index, cell), one of them in cell 0."""
    index, offset, q = frame
    j = members[..., 0]
    there = _canonical(np.concatenate([index[j][..., None], offset[j] + members[..., 1:] @ q], axis=-1))
    moved = np.repeat(there[:, None], there.shape[1], axis=1)  # (m, order, order, 4): site a at cell 0
    moved[..., 1:] -= there[:, :, None, 1:]
    rows = moved.reshape(-1, there.shape[1] * 4)
    return tuple(int(x) for x in rows[np.lexsort(rows.T[::-1])[0]])


def _icet_order(a: tuple[Orbit, tuple[int, ...]], b: tuple[Orbit, tuple[int, ...]]) -> int:
    """icet's orbit order: by order, radius (equal within TOLERANCE), multiplicity, then least cluster."""
    (x, x_tie), (y, y_tie) = a, b
    if x.order != y.order:
        return x.order - y.order
    if abs(x.radius - y.radius) > TOLERANCE:
        return -1 if x.radius < y.radius else 1
    if x.multiplicity != y.multiplicity:
        return x.multiplicity - y.multiplicity
    return (x_tie > y_tie) - (x_tie < y_tie)


def point_functions(species: Sequence[Sequence[str]]) -> np.ndarray:
    """Point function ``φ_j(occupation)`` of each binary disordered site, shape ``(d, 2)``.

    icet's basis for two species: ``φ(σ) = -cos(π σ)``, with ``σ`` the rank of
    the species by atomic number (a vacancy counts as 0). So the species of
    the lower atomic number has ``φ = -1``, the other ``φ = +1``: on a Li/vacancy
    site, Li ``+1`` and vacancy ``-1``.

    Parameters
    ----------
    species
        Species per disordered site, in occupation order (``disorder_of(parent)[1]``).
    """
    phi = np.empty((len(species), 2))
    for j, names in enumerate(species):
        if len(names) != 2:
            raise ClusterError(f"Point functions here are for two species per site; site {j} has {list(names)}.")
        low, high = sorted(range(2), key=lambda k: (_atomic_number(names[k]), names[k]))
        phi[j, low], phi[j, high] = -1.0, 1.0
    return phi


def _atomic_number(name: str) -> int:
    symbol = element_symbol(name)
    if symbol == VACANCY:
        return 0
    try:
        return Element(symbol).Z
    except ValueError as err:
        raise ClusterError(f"Species {name!r} is not an element or the vacancy {VACANCY!r}.") from err
