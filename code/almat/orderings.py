"""A compact table of Li/vacancy orderings: one integer row per ordering.

An ordering of a parent structure with ``d`` disordered sites, in a supercell
of ``N`` primitive cells, is a row of ``N * d`` integers. Entry ``c`` gives the
species on disordered site ``j = c % d`` in the primitive cell translated by
``t = c // d`` (see :func:`translations`). The supercell is a lower-triangular
Hermite normal form (HNF) ``H``: the columns of ``H`` are the supercell vectors
in units of the primitive vectors, so in pymatgen's row convention the
supercell lattice is ``H.T @ parent.lattice.matrix``.

Structures are built from rows only when asked for (:meth:`Orderings.structure`),
so hundreds of thousands of orderings cost a few megabytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from ase import Atoms
from pymatgen.core import Lattice, Species, Structure
from pymatgen.core.periodic_table import DummySpecies

from almat.errors import AlmatError

#: Symbol of a vacancy in occupation tables and in ase Atoms (icet's convention).
VACANCY = "X"


class SupercellError(AlmatError, ValueError):
    """A cell that is not a supercell of the parent, or whose sites do not fit the parent's."""


def hermite_normal_form(matrix: np.ndarray) -> np.ndarray:
    """Lower-triangular Hermite normal form of an integer matrix by column operations.

    ``H = M @ U`` with ``U`` unimodular, ``H`` lower triangular with positive
    diagonal and ``0 <= H[i, k] < H[i, i]`` for ``k < i``. Two integer matrices
    span the same superlattice exactly when their HNFs are equal.

    Parameters
    ----------
    matrix
        3x3 integer matrix, columns are supercell vectors in primitive units.
    """
    return hermite_normal_forms(np.asarray(matrix)[None])[0]


def hermite_normal_forms(matrices: np.ndarray) -> np.ndarray:
    """:func:`hermite_normal_form` of each of ``(k, 3, 3)`` integer matrices at once.

    Row by row, Euclid on the row's entries from the diagonal on (the column
    with the smallest non-zero entry becomes the pivot, the others are reduced
    by it) until only the diagonal is non-zero, then the sign is fixed and the
    entries left of the diagonal are reduced into ``[0, H[i, i])``.
    """
    h = np.array(matrices, dtype=np.int64).reshape(-1, 3, 3)
    singular = np.rint(np.abs(np.linalg.det(h))) == 0
    if singular.any():
        raise SupercellError(
            f"The supercell matrix {h[np.argmax(singular)].tolist()} is singular (determinant 0), so it "
            "spans no supercell; give three independent integer supercell vectors."
        )
    big = np.iinfo(np.int64).max
    for i in range(3):
        while True:
            todo = np.flatnonzero((h[:, i, i + 1:] != 0).any(axis=1))
            if not len(todo):
                break
            sub = h[todo]
            row = sub[:, i, i:]
            pivot = i + np.argmin(np.where(row != 0, np.abs(row), big), axis=1)
            k = np.arange(len(sub))
            sub[k, :, i], sub[k, :, pivot] = sub[k, :, pivot], sub[k, :, i].copy()
            for col in range(i + 1, 3):
                sub[:, :, col] -= (sub[:, i, col] // sub[:, i, i])[:, None] * sub[:, :, i]
            h[todo] = sub
        h[h[:, i, i] < 0, :, i] *= -1
        for col in range(i):
            h[:, :, col] -= (h[:, i, col] // h[:, i, i])[:, None] * h[:, :, i]
    return h


@lru_cache(maxsize=4096)
def _translations(hnf_key: tuple[int, ...]) -> np.ndarray:
    a, c, f = hnf_key[0], hnf_key[4], hnf_key[8]
    grid = np.indices((a, c, f)).reshape(3, -1).T
    return grid.astype(np.int64)


def translations(hnf: np.ndarray) -> np.ndarray:
    """The lattice translations (in primitive units) that tile one supercell.

    For ``H`` with diagonal ``(a, c, f)`` these are the integer vectors
    ``(i, j, k)``, ``0 <= i < a``, ``0 <= j < c``, ``0 <= k < f``, in C order:
    one representative per coset of the superlattice, ``det H`` in all.
    """
    return _translations(tuple(int(x) for x in np.asarray(hnf).ravel()))


def reduce_translation(vectors: np.ndarray, hnf: np.ndarray) -> np.ndarray:
    """Map integer vectors to their representative in :func:`translations`.

    Subtracts integer multiples of the HNF columns, first column first, so
    that each component falls in ``[0, H[i, i])``.
    """
    v = np.array(vectors, dtype=np.int64, copy=True).reshape(-1, 3)
    h = np.asarray(hnf, dtype=np.int64)
    for i in range(3):
        q = np.floor_divide(v[:, i], h[i, i])
        v -= q[:, None] * h[:, i][None, :]
    return v


def translation_index(vectors: np.ndarray, hnf: np.ndarray) -> np.ndarray:
    """Row index in :func:`translations` of each (reduced) integer vector."""
    v = reduce_translation(vectors, hnf)
    c, f = int(hnf[1][1]), int(hnf[2][2])
    return (v[:, 0] * c + v[:, 1]) * f + v[:, 2]


@dataclass(frozen=True, eq=False)
class Orderings:
    """Orderings of one disordered parent structure, as an integer table.

    Attributes
    ----------
    parent
        The primitive cell with its partial occupancies; it is never modified.
    sites
        Indices into ``parent`` of the disordered sites, in column order.
    species
        For each disordered site, the species that occupation values 0, 1, ...
        stand for; ``"X"`` is a vacancy.
    hnfs
        ``(m, 3, 3)`` lower-triangular HNFs of the supercells used.
    hnf_index
        ``(n,)`` which HNF each ordering lives in.
    occupations
        ``(n, max_cells * len(sites))`` int8 table: which species (an index into
        ``species``) occupies each disordered site of each ordering; unused
        columns of smaller cells hold -1.
    """

    parent: Structure
    sites: np.ndarray
    species: tuple[tuple[str, ...], ...]
    hnfs: np.ndarray
    hnf_index: np.ndarray
    occupations: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.hnf_index)

    def __repr__(self) -> str:
        sizes = np.bincount(self.cell_sizes) if len(self) else []
        by_size = ", ".join(f"{n} at size {s}" for s, n in enumerate(sizes) if n)
        return f"<Orderings of {self.parent.composition.reduced_formula}: {len(self)} ({by_size})>"

    @property
    def cell_sizes(self) -> np.ndarray:
        """Supercell size of each ordering, in primitive cells."""
        dets = np.rint(np.abs(np.linalg.det(self.hnfs))).astype(int) if len(self.hnfs) else []
        return np.asarray(dets, dtype=int)[self.hnf_index]

    def row(self, i: int) -> np.ndarray:
        """The occupations of ordering ``i`` without padding."""
        n = int(self.cell_sizes[i]) * len(self.sites)
        return self.occupations[i, :n]

    def _frame(self, h: int) -> tuple[Lattice, np.ndarray, np.ndarray]:
        """Lattice, fractional coords and parent-site index of every site of supercell ``h``."""
        if h not in self._cache:
            hnf = self.hnfs[h]
            smat = hnf.T.astype(float)
            lattice = Lattice(smat @ self.parent.lattice.matrix)
            shifts = translations(hnf).astype(float)
            frac_p = self.parent.frac_coords
            # site order: translation major, parent site minor (matches the occupation columns).
            frac = (shifts[:, None, :] + frac_p[None, :, :]).reshape(-1, 3) @ np.linalg.inv(smat)
            frac = np.mod(np.round(frac, 12), 1.0)
            parent_idx = np.tile(np.arange(len(self.parent)), len(shifts))
            self._cache[h] = (lattice, frac, parent_idx)
        return self._cache[h]

    def _site_species(self, i: int) -> tuple[Lattice, np.ndarray, list[str]]:
        lattice, frac, parent_idx = self._frame(int(self.hnf_index[i]))
        fixed = [str(next(iter(s.species))) if s.is_ordered else None for s in self.parent]
        col = {int(p): j for j, p in enumerate(self.sites)}
        row = self.row(i)
        d = len(self.sites)
        symbols = []
        for k, p in enumerate(parent_idx):
            if fixed[p] is not None:
                symbols.append(fixed[p])
            else:
                j = col[int(p)]
                symbols.append(self.species[j][row[(k // len(self.parent)) * d + j]])
        return lattice, frac, symbols

    def key(self, i: int) -> str:
        """A string naming ordering ``i`` exactly: cell size, HNF and occupations.

        Two tables of the same parent give the same key to the same row, so
        results saved under it (relaxations, say) survive a re-enumeration.
        """
        hnf = ",".join(str(int(x)) for x in self.hnfs[self.hnf_index[i]].ravel())
        return f"{int(self.cell_sizes[i])}:{hnf}:{''.join(str(int(x)) for x in self.row(i))}"

    def structure(self, i: int) -> Structure:
        """Build ordering ``i`` as a pymatgen Structure, vacancies removed."""
        lattice, frac, symbols = self._site_species(i)
        keep = [k for k, s in enumerate(symbols) if s != VACANCY]
        species = [_species(symbols[k]) for k in keep]
        return Structure(lattice, species, frac[keep])

    def structures(self, indices: Iterable[int] | None = None) -> list[Structure]:
        """Build several orderings (all by default)."""
        idx = range(len(self)) if indices is None else indices
        return [self.structure(int(i)) for i in idx]

    def atoms(self, i: int) -> Atoms:
        """Ordering ``i`` as ase Atoms with every site, vacancies as ``"X"`` (for icet)."""
        lattice, frac, symbols = self._site_species(i)
        elements = [element_symbol(s) for s in symbols]
        return Atoms(elements, scaled_positions=frac, cell=lattice.matrix, pbc=True)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Orderings:
        """A new table with the chosen rows, in the given order."""
        idx = np.asarray(indices, dtype=int)
        return Orderings(self.parent, self.sites, self.species, self.hnfs,
                         self.hnf_index[idx], self.occupations[idx])

    @classmethod
    def concatenate(cls, parts: Sequence[Orderings]) -> Orderings:
        """Join tables of the same parent (e.g. one per cell size)."""
        first = parts[0]
        width = max(p.occupations.shape[1] for p in parts)
        hnfs, index, occupations = [], [], []
        offset = 0
        for p in parts:
            hnfs.append(p.hnfs)
            index.append(p.hnf_index + offset)
            offset += len(p.hnfs)
            pad = np.full((len(p), width), -1, dtype=np.int8)
            pad[:, : p.occupations.shape[1]] = p.occupations
            occupations.append(pad)
        return cls(first.parent, first.sites, first.species,
                   np.concatenate(hnfs).reshape(-1, 3, 3).astype(np.int64),
                   np.concatenate(index).astype(np.int64), np.concatenate(occupations))


def element_symbol(name: str) -> str:
    """Element symbol of a species name: ``"Li+"`` -> ``"Li"``; the vacancy ``"X"`` stays ``"X"``."""
    return Species.from_str(name).symbol if name != VACANCY and _charged(name) else name


def _charged(symbol: str) -> bool:
    return symbol[-1] in "+-"


def _species(symbol: str) -> Species | DummySpecies | str:
    return Species.from_str(symbol) if _charged(symbol) else symbol


def disorder_of(parent: Structure) -> tuple[np.ndarray, tuple[tuple[str, ...], ...]]:
    """Disordered site indices of ``parent`` and their species (a vacancy last when occupancies sum below 1)."""
    sites, species = [], []
    for i, site in enumerate(parent):
        if site.is_ordered:
            continue
        names = tuple(str(sp) for sp in site.species)
        if site.species.num_atoms < 1 - 1e-6:
            names = names + (VACANCY,)
        sites.append(i)
        species.append(names)
    return np.array(sites, dtype=int), tuple(species)


def orderings_from_cells(parent: Structure, cells: Iterable[tuple[np.ndarray, np.ndarray, Sequence[str]]],
                         tol: float = 1e-3) -> Orderings:
    """Map explicit supercells (lattice matrix, fractional coords, symbols) onto occupation rows.

    This is how the icet and enumlib backends, which return whole structures,
    are brought into the table. Sites absent from a cell are vacancies.

    Parameters
    ----------
    parent
        The disordered primitive cell the supercells derive from.
    cells
        ``(lattice rows, fractional coords, symbols)`` per ordering; a symbol of
        ``"X"`` or a missing site is a vacancy.
    tol
        Tolerance on fractional coordinates of the parent cell.
    """
    sites, species = disorder_of(parent)
    d = len(sites)
    col_of_parent = {int(p): j for j, p in enumerate(sites)}
    inv_a = np.linalg.inv(parent.lattice.matrix)
    frac_p = parent.frac_coords
    hnf_keys: dict[tuple[int, ...], int] = {}
    hnfs, index, rows = [], [], []
    for lattice, frac, symbols in cells:
        smat = np.asarray(lattice) @ inv_a
        s_int = np.rint(smat).astype(np.int64)
        if np.abs(smat - s_int).max() > 1e-3:
            raise SupercellError(
                f"A cell with lattice {np.round(np.asarray(lattice), 3).tolist()} is not a supercell of the "
                "parent lattice (its vectors are not integer combinations of the parent's); enumerate "
                "from the same parent structure the cells were made from."
            )
        hnf = hermite_normal_form(s_int.T)
        n = int(round(np.linalg.det(hnf)))
        key = tuple(hnf.ravel().tolist())
        if key not in hnf_keys:
            hnf_keys[key] = len(hnfs)
            hnfs.append(hnf)
        pos = np.asarray(frac) @ s_int  # parent fractional coordinates
        diff = pos[:, None, :] - frac_p[None, :, :]
        wrapped = np.abs(diff - np.rint(diff)).max(axis=2)
        match = np.argmin(wrapped, axis=1)
        if wrapped[np.arange(len(pos)), match].max() > tol:
            raise SupercellError(
                f"A site of a cell, at parent fractional position "
                f"{np.round(pos[np.argmax(wrapped[np.arange(len(pos)), match])], 4).tolist()}, matches no "
                f"site of the parent within tol={tol}; enumerate from the same parent the cells were made from."
            )
        shift = np.rint(diff[np.arange(len(pos)), match]).astype(np.int64)
        tidx = translation_index(shift, hnf)
        vac = np.array([s.index(VACANCY) if VACANCY in s else -1 for s in species])
        row = np.repeat(vac[None, :], n, axis=0).astype(np.int8)
        for k, (p, sym) in enumerate(zip(match, symbols)):
            j = col_of_parent.get(int(p))
            if j is None or sym == VACANCY:
                continue
            names = species[j]
            hits = [m for m, name in enumerate(names) if _same_element(name, sym)]
            if not hits:
                raise SupercellError(
                    f"A cell puts {sym} on parent site {int(p)}, which allows only {list(names)}; "
                    "enumerate from the same parent the cells were made from."
                )
            row[tidx[k], j] = hits[0]
        if (row < 0).any():
            raise SupercellError(
                "A cell leaves a disordered site empty although the parent allows no vacancy there; "
                "enumerate from the same parent the cells were made from."
            )
        rows.append(row.ravel())
        index.append(hnf_keys[key])
    width = max((len(r) for r in rows), default=d)
    occupations = np.full((len(rows), width), -1, dtype=np.int8)
    for i, r in enumerate(rows):
        occupations[i, : len(r)] = r
    return Orderings(parent, sites, species, np.array(hnfs, dtype=np.int64).reshape(-1, 3, 3),
                     np.array(index, dtype=np.int64), occupations)


def _same_element(name: str, symbol: str) -> bool:
    return name == symbol or element_symbol(name) == element_symbol(symbol)
