"""Superlattices and the symmetry that acts on their sites (Hart & Forcade 2008).

A superlattice of index ``N`` of a primitive lattice is ``H Z^3`` for a unique
lower-triangular Hermite normal form (HNF) ``H`` with ``det H = N``; its columns
are the supercell vectors in primitive units. A space-group operation
``x -> R x + t`` (fractional coordinates) maps the superlattice ``H Z^3`` onto
``R H Z^3``, so superlattices fall into classes under the rotations, and each
class needs one representative. The operations that map ``H Z^3`` onto itself
(the stabiliser of ``H``), combined with the ``N`` lattice translations modulo
the superlattice, permute the ``N * d`` disordered sites of the supercell; two
labellings of one supercell describe the same crystal exactly when one of those
permutations carries one onto the other.

Sites of the supercell are indexed as in :mod:`almat.orderings`: position
``c = t * d + j`` is disordered site ``j`` in the primitive cell translated by
``translations(H)[t]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spglib
from pymatgen.core import Structure

from almat.enumeration.errors import (
    CellSizeError,
    SymmetryError,
    index_too_large,
    no_symmetry,
    not_primitive,
    unmapped_site,
)
from almat.orderings import hermite_normal_forms, translation_index, translations

#: Largest index whose HNFs :func:`distinct_supercells` can number in int64 (``(n + 1)^6 < 2^63``).
MAX_INDEX = 1446


@dataclass(frozen=True)
class SiteSymmetry:
    """The parent's space-group operations, restricted to its disordered sites.

    Operation ``k`` maps disordered site ``j`` (fractional position ``b_j``) to
    ``R_k b_j + t_k = b_{site_map[k, j]} + shift[k, j]``, with ``shift`` an
    integer lattice vector.

    Attributes
    ----------
    rotations
        ``(g, 3, 3)`` integer rotations acting on fractional column vectors.
    site_map
        ``(g, d)`` image of each disordered site.
    shift
        ``(g, d, 3)`` lattice vector (primitive units) the image lies in.
    sublattice
        ``(d,)`` orbit number of each disordered site (0, 1, ... in order of first site).
    """

    rotations: np.ndarray
    site_map: np.ndarray
    shift: np.ndarray
    sublattice: np.ndarray


def site_symmetry(parent: Structure, sites: np.ndarray, symprec: float = 1e-3,
                  use_occupancy: bool = True, alike: bool = False) -> SiteSymmetry:
    """Space-group operations of ``parent`` and how they move its disordered sites.

    Parameters
    ----------
    parent
        Primitive cell; sites with different species (and, if ``use_occupancy``,
        different occupancies) are never mapped onto each other.
    sites
        Indices of the disordered sites, in column order.
    symprec
        Distance tolerance of spglib, in Å.
    use_occupancy
        Tell sites apart by their occupancies as well as their species.
    alike
        Treat all disordered sites as one kind whatever their species (the
        symmetry of the lattice of active sites, as enumlib uses); ordered sites
        still keep their species. Pure translations between disordered sites of
        different kinds are then allowed.
    """
    disordered = set(int(i) for i in sites)
    keys: dict[tuple, int] = {}
    types = []
    for i, site in enumerate(parent):
        if alike and i in disordered:
            occ: tuple = ("disordered",)
        else:
            occ = tuple(sorted((str(sp), round(float(x), 6) if use_occupancy else 0.0)
                               for sp, x in site.species.items()))
        types.append(keys.setdefault(occ, len(keys) + 1))
    cell = (parent.lattice.matrix, parent.frac_coords, types)
    ops = spglib.get_symmetry(cell, symprec=symprec)
    if ops is None:
        raise SymmetryError(no_symmetry(symprec))
    rotations = np.asarray(ops["rotations"], dtype=np.int64)
    shifts_frac = np.asarray(ops["translations"], dtype=float)
    if not alike and np.sum(np.all(rotations == np.eye(3, dtype=np.int64), axis=(1, 2))) > 1:
        raise SymmetryError(not_primitive())
    frac = parent.frac_coords[sites]
    lattice = parent.lattice.matrix
    image = np.einsum("gab,jb->gja", rotations, frac) + shifts_frac[:, None, :]
    diff = image[:, :, None, :] - frac[None, None, :, :]
    wrapped = diff - np.rint(diff)
    dist = np.linalg.norm(wrapped @ lattice, axis=-1)
    site_map = np.argmin(dist, axis=2)
    best = np.take_along_axis(dist, site_map[:, :, None], axis=2)[:, :, 0]
    if best.max() > 4 * symprec + 1e-9:
        raise SymmetryError(unmapped_site(symprec))
    shift = np.rint(np.take_along_axis(diff, site_map[:, :, None, None], axis=2)[:, :, 0, :])
    return SiteSymmetry(rotations, site_map, shift.astype(np.int64), _orbits(site_map))


def _orbits(site_map: np.ndarray) -> np.ndarray:
    """Orbit number of each site under a set of site permutations (a group)."""
    d = site_map.shape[1]
    orbit = np.full(d, -1, dtype=np.int64)
    for j in range(d):
        if orbit[j] < 0:
            orbit[np.unique(site_map[:, j])] = orbit.max() + 1
    return orbit


def hnfs_of_index(n: int) -> np.ndarray:
    """All lower-triangular HNFs with determinant ``n``, sorted by their entries.

    ``H = [[a, 0, 0], [b, c, 0], [d, e, f]]`` with ``a c f = n``, ``0 <= b < c``
    and ``0 <= d, e < f``; there are ``sum over a c f = n of c f^2`` of them.
    """
    out = []
    for a in _divisors(n):
        for c in _divisors(n // a):
            f = n // (a * c)
            for b in range(c):
                for d in range(f):
                    for e in range(f):
                        out.append([[a, 0, 0], [b, c, 0], [d, e, f]])
    hnfs = np.array(out, dtype=np.int64).reshape(-1, 3, 3)
    order = sorted(range(len(hnfs)), key=lambda i: tuple(hnfs[i].ravel()))
    return hnfs[order]


def hnf_count(n: int) -> int:
    """Number of HNFs of determinant ``n``, ``sum over a c f = n of c f^2``, without listing them."""
    return sum(c * (n // (a * c)) ** 2 for a in _divisors(n) for c in _divisors(n // a))


def _divisors(n: int) -> list[int]:
    """Divisors of ``n`` in increasing order (trial division up to sqrt(n))."""
    small = [k for k in range(1, int(n ** 0.5) + 1) if n % k == 0]
    return small + [n // k for k in reversed(small) if k * k != n]


def distinct_supercells(n: int, rotations: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """One HNF per class of index-``n`` superlattices equivalent under ``rotations``.

    Returns
    -------
    list of (hnf, stabiliser)
        The representative is the smallest HNF of its class (entries compared row
        by row); ``stabiliser`` lists the operations with ``HNF(R H) = H``.
    """
    if n > MAX_INDEX:
        raise CellSizeError(index_too_large(n))
    hnfs = hnfs_of_index(n)
    images = hermite_normal_forms(np.einsum("rab,kbc->krac", rotations, hnfs))
    # Every image is one of the HNFs. Their six lower-triangle entries lie in [0, n]; read as digits
    # base n + 1 they number the HNFs in the order hnfs_of_index sorts them (below 2^63: MAX_INDEX).
    lower = [0, 3, 4, 6, 7, 8]
    weights = (n + 1) ** np.arange(5, -1, -1, dtype=np.int64)
    own = hnfs.reshape(-1, 9)[:, lower] @ weights
    image = np.searchsorted(own, images.reshape(-1, 9)[:, lower] @ weights).reshape(len(hnfs), len(rotations))
    seen = np.zeros(len(hnfs), dtype=bool)
    out = []
    for k in range(len(hnfs)):
        if not seen[k]:
            seen[image[k]] = True
            out.append((hnfs[k], np.flatnonzero(image[k] == k).astype(np.int64)))
    return out


def site_permutations(hnf: np.ndarray, sym: SiteSymmetry,
                      ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permutations of the supercell's disordered sites by operations and translations.

    Element ``(k, u)`` applies operation ``ops[k]`` and then translates by
    ``u = translations(hnf)[u]``: position ``(z, j)`` goes to
    ``(R z + shift[j] + u mod H, site_map[j])``.

    Returns
    -------
    perms
        ``(len(ops) * N, N * d)`` int64, ``perms[g, c]`` the image of position ``c``;
        ordered operation-major, translation-minor.
    is_translation
        ``(len(ops) * N,)`` True where the element is a pure lattice translation.
    """
    zs = translations(hnf)
    n, d = len(zs), sym.site_map.shape[1]
    moved = np.einsum("kab,nb->kna", sym.rotations[ops], zs)  # (ops, n, 3): R z
    base = moved[:, :, None, :] + sym.shift[ops][:, None, :, :]  # (ops, n, d, 3)
    every = base[:, None] + zs[None, :, None, None, :]  # (ops, u, n, d, 3)
    t = translation_index(every.reshape(-1, 3), hnf).reshape(len(ops), n, n, d)
    perms = (t * d + sym.site_map[ops][:, None, None, :]).reshape(len(ops) * n, n * d)
    identity = (np.all(sym.rotations[ops] == np.eye(3, dtype=np.int64), axis=(1, 2))
                & np.all(sym.site_map[ops] == np.arange(d), axis=1) & ~np.any(sym.shift[ops], axis=(1, 2)))
    return perms, np.repeat(identity, n)
