"""The enumeration backends: ``"fast"`` (ours), and icet and enumlib as independent references.

``"fast"``
    Our own Hart-Forcade implementation (:mod:`almat.enumeration.walk`), NumPy
    and numba; it writes the compact table directly. This is what ``"auto"`` uses.
``"icet"``
    ``icet.tools.enumerate_structures``; installs with pip as the ``reference``
    extra (``pip install "almat[reference]"``), about a hundred times slower at
    cell size 2 of Li6PS5Cl. The lesson never needs it; tests and benchmarks
    compare against it.
``"enumlib"``
    pymatgen's ``EnumerateStructureTransformation``, which runs enumlib's
    ``enum.x`` and ``makestr.x`` (conda-forge only).

The three give the same set of orderings, possibly with different but
equivalent representatives (another supercell of the same shape class, or a
symmetry-equivalent decoration), where each species is disordered on one
sublattice only, as in Li6PS5Cl (tested against icet at cell sizes 1 and 2).
They differ where that does not hold: icet and enumlib restrict each species'
total over the cell, so a species on several sublattices may move between
them, while the fast backend fixes each sublattice's count by its occupancy;
and where a translation that is not a lattice vector maps disordered sites
with different species sets onto each other (CsCl with Cu/Au on one site and
Cu/Au/Ag on the other), icet lists one crystal twice and the fast backend once.

icet and enumlib cannot prune by ``min_distance``: they go through every
ordering and :func:`reference_table` filters them
(:func:`almat.enumeration.exclusion.respects_min_distance`).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np
from pymatgen.core import Structure

from almat.enumeration.errors import (
    BackendUnavailableError,
    UnknownBackendError,
    enumlib_missing,
    icet_missing,
    unknown_backend,
)
from almat.enumeration.exclusion import respects_min_distance
from almat.orderings import Orderings, disorder_of, element_symbol, orderings_from_cells
from almat.structures import OCCUPANCY_DENOMINATOR

BACKENDS = ("auto", "fast", "icet", "enumlib")


def enumlib_available() -> bool:
    """True if enumlib's ``enum.x`` and ``makestr.x`` are on PATH."""
    return bool(shutil.which("enum.x") or shutil.which("multienum.x")) and bool(
        shutil.which("makestr.x") or shutil.which("makeStr.py")
    )


def icet_available() -> bool:
    """True if icet is installed (the ``reference`` extra)."""
    return importlib.util.find_spec("icet") is not None


def resolve_backend(backend: str) -> str:
    """Turn ``"auto"`` into a concrete backend and check that it is installed.

    Raises
    ------
    UnknownBackendError
        A name that is not one of :data:`BACKENDS`.
    BackendUnavailableError
        icet or enumlib asked for but not installed; the message says how to install it.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise UnknownBackendError(unknown_backend(backend, BACKENDS))
    if backend == "auto":
        return "fast"
    if backend == "icet" and not icet_available():
        raise BackendUnavailableError(icet_missing())
    if backend == "enumlib" and not enumlib_available():
        raise BackendUnavailableError(enumlib_missing())
    return backend


def reference_table(structure: Structure, sizes: Sequence[int], backend: str,
                    min_distance: float | None) -> Orderings:
    """Every ordering from icet or enumlib as a table, filtered by ``min_distance``, in canonical order.

    The caller has counted them and checked they fit (:func:`almat.enumeration.enumerate_table`).
    """
    cells = _icet_cells(structure, sizes) if backend == "icet" else _enumlib_cells(structure, sizes)
    table = orderings_from_cells(structure, cells)
    if min_distance is not None:
        table = table.subset(np.flatnonzero(respects_min_distance(table, min_distance)))
    return table.subset(canonical_order(table))


def canonical_order(table: Orderings) -> np.ndarray:
    """Row order by cell size, supercell (HNF) and occupations, as the fast backend emits rows."""
    keys = np.concatenate(
        [table.cell_sizes[:, None], table.hnfs[table.hnf_index].reshape(len(table), 9), table.occupations],
        axis=1,
    )
    return np.lexsort(keys.T[::-1])


def _icet_inputs(structure: Structure):
    """ase parent, allowed symbols per site and concentration windows for icet."""
    from ase import Atoms

    sites, species = disorder_of(structure)
    symbols, allowed = [], []
    disordered = {int(i): names for i, names in zip(sites, species)}
    for i, site in enumerate(structure):
        if i in disordered:
            names = [element_symbol(n) for n in disordered[i]]
            symbols.append(names[0])
            allowed.append(names)
        else:
            el = site.specie.symbol
            symbols.append(el)
            allowed.append([el])
    atoms = Atoms(symbols, scaled_positions=structure.frac_coords,
                  cell=structure.lattice.matrix, pbc=True)
    # icet restricts concentrations of whole-cell fractions: count / all sites.
    totals: dict[str, Fraction] = {}
    for i, names in disordered.items():
        for sp, x in structure[i].species.items():
            share = Fraction(x).limit_denominator(OCCUPANCY_DENOMINATOR)
            totals[sp.symbol] = totals.get(sp.symbol, Fraction(0)) + share
    n = len(structure)
    eps = 1e-6
    windows = {el: (float(c / n) - eps, float(c / n) + eps) for el, c in totals.items()}
    return atoms, allowed, windows


def _icet_cells(structure: Structure, sizes: Sequence[int]) -> Iterator[tuple]:
    from icet.tools import enumerate_structures

    atoms, allowed, windows = _icet_inputs(structure)
    for a in enumerate_structures(atoms, list(sizes), allowed, concentration_restrictions=windows,
                                  niggli_reduce=False, symprec=1e-3):
        yield a.cell[:], a.get_scaled_positions(), a.get_chemical_symbols()


def _enumlib_cells(structure: Structure, sizes: Sequence[int]) -> Iterator[tuple]:
    from pymatgen.transformations.advanced_transformations import EnumerateStructureTransformation

    trans = EnumerateStructureTransformation(min_cell_size=min(sizes), max_cell_size=max(sizes),
                                             sort_criteria="num_sites", symm_prec=1e-3)
    for item in trans.apply_transformation(structure, return_ranked_list=10**9):
        s = item["structure"]
        yield s.lattice.matrix, s.frac_coords, [str(sp) for sp in s.species]
