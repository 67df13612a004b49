"""The Hart-Forcade backend against independent references.

References: icet 4.0's ``enumerate_structures`` run here (counts and the
structures themselves, compared up to symmetry with pymatgen's StructureMatcher
or Ewald energies), the counts stated in issue 6 for Li6PS5Cl, and the counts
of Hart & Forcade, Phys. Rev. B 77, 224115 (2008).

Convention: icet, like this backend, counts A3B and AB3 (a labelling and its
species-swapped copy) as two orderings. Hart & Forcade's table for binary fcc
(2, 3, 12, 14, 50, 52 at cell sizes 2..7) counts them once. At odd cell sizes no
binary fcc ordering is its own swapped copy (the two counts differ), so there
our count is exactly twice theirs.
"""

from __future__ import annotations

import hashlib
import itertools
import os

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from icet_reference import enumerate_structures, needs_icet
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

import almat
from almat.enumeration import CellSizeError, ConcentrationError, SymmetryError
from almat.enumeration.counting import count_labelings
from almat.enumeration.hnf import hnfs_of_index
from almat.enumeration.walk import enumerate_labelings
from almat.orderings import (
    disorder_of,
    hermite_normal_form,
    hermite_normal_forms,
    orderings_from_cells,
    translations,
)
from almat.structures import OccupancyError

LATTICES = {
    "fcc": bulk("Cu", "fcc", a=4.0),
    "bcc": bulk("Fe", "bcc", a=3.0),
    "hcp": bulk("Ti", "hcp", a=3.0, c=4.8),
}


@pytest.fixture(scope="module")
def argyrodite() -> Structure:
    return almat.set_occupancy(almat.load_parent(), 0.5)


@pytest.fixture(scope="module")
def argyrodite_size2(argyrodite):
    return enumerate_labelings(argyrodite, [2])


def disordered(atoms: Atoms, species: list[str], sublattices: list[list[str]] | None = None) -> Structure:
    """A pymatgen parent from ase Atoms: every site (or site i) shared equally by its species."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    for i in range(len(structure)):
        names = sublattices[i] if sublattices else species
        structure.replace(i, {name: 1 / len(names) for name in names})
    return structure


def icet_structures(atoms: Atoms, sizes, allowed, restrict=None) -> list[Structure]:
    """icet's orderings as pymatgen structures, vacancies ("X") removed."""
    out = []
    for a in enumerate_structures(atoms, list(sizes), allowed, concentration_restrictions=restrict,
                                  symprec=1e-3):
        keep = [s != "X" for s in a.get_chemical_symbols()]
        out.append(AseAtomsAdaptor.get_structure(a[keep]))
    return out


def icet_argyrodite_inputs(parent: Structure) -> tuple[Atoms, list[list[str]]]:
    symbols, allowed = [], []
    for site in parent:
        names = [sp.symbol for sp in site.species]
        if site.species.num_atoms < 1 - 1e-6:
            names.append("X")
        symbols.append(names[0])
        allowed.append(names)
    return Atoms(symbols, scaled_positions=parent.frac_coords, cell=parent.lattice.matrix, pbc=True), allowed


def assert_same_up_to_symmetry(mine: list[Structure], theirs: list[Structure]) -> None:
    """Every structure of ``mine`` matches exactly one of ``theirs``, and no two match the same."""
    assert len(mine) == len(theirs)
    matcher = StructureMatcher()
    key = [(s.composition.reduced_formula, len(s), s.get_space_group_info()[1]) for s in theirs]
    used: set[int] = set()
    for s in mine:
        mine_key = (s.composition.reduced_formula, len(s), s.get_space_group_info()[1])
        hits = [k for k, t in enumerate(theirs) if key[k] == mine_key and matcher.fit(s, t)]
        assert len(hits) == 1, f"{s.composition} matches {len(hits)} reference structures"
        assert hits[0] not in used
        used.add(hits[0])


# --- counts against icet -------------------------------------------------------------------------


@pytest.mark.parametrize("lattice,sizes", [("fcc", range(1, 6)), ("bcc", range(1, 6)), ("hcp", range(1, 5))])
@needs_icet
def test_binary_counts_match_icet(lattice, sizes):
    atoms = LATTICES[lattice]
    parent = disordered(atoms, ["Ag", "Au"])
    counts = count_labelings(parent, sizes, "any")
    for n in sizes:
        reference = sum(1 for _ in enumerate_structures(atoms, [n], ["Ag", "Au"]))
        assert len(enumerate_labelings(parent, [n], "any")) == reference, n
        assert counts[n] == reference, n


@pytest.mark.parametrize("lattice", ["fcc", "bcc", "hcp"])
@needs_icet
def test_ternary_counts_match_icet(lattice):
    atoms = LATTICES[lattice]
    parent = disordered(atoms, ["Ag", "Au", "Pd"])
    for n in (1, 2, 3):
        reference = sum(1 for _ in enumerate_structures(atoms, [n], ["Ag", "Au", "Pd"]))
        assert len(enumerate_labelings(parent, [n], "any")) == reference
        assert count_labelings(parent, [n], "any")[n] == reference


@needs_icet
def test_concentration_range_matches_icet():
    atoms = LATTICES["fcc"]
    parent = disordered(atoms, ["Ag", "Au"])
    sizes = range(1, 7)
    table = enumerate_labelings(parent, sizes, {"Au": (0.25, 0.5)})
    reference = list(enumerate_structures(atoms, sizes, ["Ag", "Au"], {"Au": (0.25, 0.5)}))
    assert len(table) == len(reference) == sum(count_labelings(parent, sizes, {"Au": (0.25, 0.5)}).values())
    au = (table.occupations == 1).sum(axis=1) / table.cell_sizes
    assert au.min() >= 0.25 and au.max() <= 0.5


@needs_icet
def test_fixed_ternary_site_matches_icet():
    """A site shared 1/3 : 1/3 : 1/3 by three species, fixed composition."""
    atoms = LATTICES["fcc"]
    parent = disordered(atoms, ["Ag", "Au", "Pd"])
    third = (1 / 3, 1 / 3)
    for n in (3, 6):
        reference = sum(1 for _ in enumerate_structures(atoms, [n], ["Ag", "Au", "Pd"],
                                                        {"Ag": third, "Au": third}))
        assert len(enumerate_labelings(parent, [n])) == reference
        assert count_labelings(parent, [n])[n] == reference
    counts = count_labelings(parent, [1, 2, 3])
    assert counts[1] == counts[2] == 0  # a third of 1 or 2 sites is no whole number


@needs_icet
def test_two_disordered_sublattices_match_icet():
    """Zincblende with Ga/Al on one sublattice and As/P on the other, free and fixed composition."""
    atoms = bulk("GaAs", "zincblende", a=5.65)
    allowed = [["Ga", "Al"], ["As", "P"]]
    parent = disordered(atoms, [], allowed)
    for n in (1, 2, 3):
        free = sum(1 for _ in enumerate_structures(atoms, [n], allowed))
        assert len(enumerate_labelings(parent, [n], "any")) == free
        assert count_labelings(parent, [n], "any")[n] == free
    for n in (2, 4):  # half Al on its sublattice and half P on its: a quarter of all atoms each
        fixed = icet_structures(atoms, [n], allowed, {"Al": (0.25, 0.25), "P": (0.25, 0.25)})
        table = enumerate_labelings(parent, [n])
        assert len(table) == len(fixed) == count_labelings(parent, [n])[n]
        if n == 2:
            assert_same_up_to_symmetry(table.structures(), fixed)


# --- published counts ----------------------------------------------------------------------------


def test_fcc_binary_odd_sizes_are_twice_hart_forcade():
    """Hart & Forcade (2008): 3, 14, 52 binary fcc superstructures at sizes 3, 5, 7 (A<->B identified)."""
    parent = disordered(LATTICES["fcc"], ["Ag", "Au"])
    counts = count_labelings(parent, [3, 5, 7], "any")
    assert counts == {3: 2 * 3, 5: 2 * 14, 7: 2 * 52}
    assert len(enumerate_labelings(parent, [7], "any")) == 2 * 52


def test_fcc_size2_by_hand():
    """Index-2 superlattices of fcc: stacking along [100] (L1_0) or [111] (L1_1); one AB ordering each."""
    parent = disordered(LATTICES["fcc"], ["Ag", "Au"])
    table = enumerate_labelings(parent, [2], "any")
    assert len(table.hnfs) == 2
    assert sorted(map(tuple, table.occupations)) == [(0, 1), (0, 1)]


# --- Li6PS5Cl ------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_icet
def test_argyrodite_size1_equals_icet(argyrodite):
    atoms, allowed = icet_argyrodite_inputs(argyrodite)
    reference = icet_structures(atoms, [1], allowed, {"Li": (6 / 19, 6 / 19)})
    for s in reference:
        s.add_oxidation_state_by_element({"Li": 1, "P": 5, "S": -2, "Cl": -1})
    table = enumerate_labelings(argyrodite, [1])
    assert len(table) == len(reference) == 48
    mine = table.structures()
    energies = [round(EwaldSummation(s).total_energy, 5) for s in mine]
    theirs = [round(EwaldSummation(s).total_energy, 5) for s in reference]
    assert sorted(energies) == sorted(theirs)
    for e in set(energies):  # equal Ewald energies: tell the structures apart with StructureMatcher
        assert_same_up_to_symmetry([s for s, x in zip(mine, energies) if x == e],
                                   [s for s, x in zip(reference, theirs) if x == e])


@needs_icet
def test_argyrodite_free_composition_size1_matches_icet(argyrodite):
    atoms, allowed = icet_argyrodite_inputs(argyrodite)
    reference = sum(1 for _ in enumerate_structures(atoms, [1], allowed, symprec=1e-3))
    assert len(enumerate_labelings(argyrodite, [1], "any")) == reference
    assert count_labelings(argyrodite, [1], "any") == {1: reference}


def test_argyrodite_counts(argyrodite, argyrodite_size2):
    """48 at size 1 and 395,632 at size 2 (icet 4.0, issue 6)."""
    assert count_labelings(argyrodite, [1, 2]) == {1: 48, 2: 395_632}
    assert len(enumerate_labelings(argyrodite, [1])) == 48
    assert len(argyrodite_size2) == 395_632
    assert ((argyrodite_size2.occupations == 0).sum(axis=1) == 12).all()  # 12 Li on 24 sites


def li_pair_shells(table, li_label: int = 0, cutoff: float = 6.0) -> np.ndarray:
    """Li-Li pairs per distance shell (0.01 Å bins, up to ``cutoff``) of every row: a symmetry invariant."""
    parent = table.parent
    frac = parent.frac_coords[table.sites]
    neighbours = []
    for hnf in table.hnfs:
        cart = (translations(hnf)[:, None, :] + frac[None]).reshape(-1, 3) @ parent.lattice.matrix
        sub = Structure(Lattice(hnf.T @ parent.lattice.matrix), ["Li"] * len(cart), cart,
                        coords_are_cartesian=True)
        i, j, _, dist = sub.get_neighbor_list(cutoff)
        neighbours.append((len(cart), i, j, np.round(dist, 2)))
    shells = np.unique(np.concatenate([n[3] for n in neighbours]))
    out = np.zeros((len(table), len(shells)), dtype=np.int64)
    for h, (m, i, j, dist) in enumerate(neighbours):
        rows = np.flatnonzero(table.hnf_index == h)
        li = (table.occupations[rows, :m] == li_label).astype(np.float32)
        for k, r in enumerate(shells):
            adjacency = np.zeros((m, m), dtype=np.float32)
            np.add.at(adjacency, (i[dist == r], j[dist == r]), 1.0)
            out[rows, k] = np.rint(((li @ adjacency) * li).sum(axis=1))
    return out


def digest(invariants: np.ndarray) -> str:
    """sha256 of the rows sorted: equal digests mean equal multisets of invariant vectors."""
    rows = np.ascontiguousarray(invariants, dtype=">i8")  # big-endian: bytes sort like numbers
    keys = np.sort(rows.view(np.dtype((np.void, rows.shape[1] * 8))).ravel())
    return hashlib.sha256(keys.tobytes()).hexdigest()


#: ``digest(li_pair_shells(icet's 395,632 size-2 orderings))``, from icet 4.0 run once here (~5 min);
#: ``ALMAT_ICET_SIZE2=1 pytest -k icet_full`` recomputes it from icet.
ICET_SIZE2_DIGEST = "9f5f9439927bb3941c2c17dabb9448beedbaa71098808ebef9a02284e72f7115"


def test_argyrodite_size2_invariants_equal_icet(argyrodite_size2):
    assert digest(li_pair_shells(argyrodite_size2)) == ICET_SIZE2_DIGEST


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("ALMAT_ICET_SIZE2"),
                    reason="icet takes 5 min or more; set ALMAT_ICET_SIZE2=1")
@needs_icet
def test_argyrodite_size2_icet_full(argyrodite):
    atoms, allowed = icet_argyrodite_inputs(argyrodite)
    cells = ((a.cell[:], a.get_scaled_positions(), a.get_chemical_symbols())
             for a in enumerate_structures(atoms, [2], allowed, {"Li": (6 / 19, 6 / 19)}, symprec=1e-3))
    reference = orderings_from_cells(argyrodite, cells)
    assert len(reference) == 395_632
    assert digest(li_pair_shells(reference)) == ICET_SIZE2_DIGEST


def test_argyrodite_size2_sample_is_distinct_and_not_superperiodic(argyrodite_size2):
    table = argyrodite_size2
    rng = np.random.default_rng(0)
    sample = table.structures(rng.choice(len(table), 12, replace=False))
    for s in sample:
        assert s.composition.reduced_formula == "Li6PS5Cl"
        assert len(s.get_primitive_structure()) == len(s) == 26
    groups = StructureMatcher().group_structures(sample)
    assert len(groups) == len(sample)


# --- site-restricted lattices: every crystal once ------------------------------------------------


def restricted(atoms: Atoms, allowed: list[list[str]]) -> Structure:
    """A parent whose site i allows the species allowed[i] ("X" a vacancy), shared equally."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    for i, names in enumerate(allowed):
        structure.replace(i, {name: 1 / len(names) for name in names if name != "X"})
    return structure


HCP_CU_AU_AG = [["Cu", "Au"], ["Cu", "Au", "Ag"]]


@needs_icet
def test_hcp_with_different_species_sets_matches_icet():
    """hcp's symmetry swaps its two sites; icet (which uses the symmetry of all active sites) agrees."""
    atoms = LATTICES["hcp"]
    parent = restricted(atoms, HCP_CU_AU_AG)
    counts = count_labelings(parent, [1, 2, 3], "any")
    for n in (1, 2, 3):
        reference = sum(1 for _ in enumerate_structures(atoms, [n], HCP_CU_AU_AG))
        assert counts[n] == reference == len(enumerate_labelings(parent, [n], "any")), n
    assert counts[1] == 5  # 2 x 3 labellings; (Cu, Au) and (Au, Cu) are one crystal


def test_hcp_with_different_species_sets_lists_every_crystal_once():
    """Brute force at sizes 1 and 2: every labelling of every supercell (all HNFs) that is not
    superperiodic is one of almat's orderings, and no two of almat's are the same crystal
    (StructureMatcher with tight tolerances: the defaults also merge distinct hcp orderings)."""
    parent = restricted(LATTICES["hcp"], HCP_CU_AU_AG)
    matcher = StructureMatcher(ltol=0.01, stol=0.01, angle_tol=0.1)
    sites, species = disorder_of(parent)
    for n in (1, 2):
        mine = enumerate_labelings(parent, [n], "any").structures()
        every = []
        for hnf in hnfs_of_index(n):
            rows = np.array(list(itertools.product(*[range(len(species[c % 2])) for c in range(2 * n)])))
            table = almat.Orderings(parent, sites, species, hnf[None], np.zeros(len(rows), dtype=np.int64),
                                    rows.astype(np.int8))
            every += [s for s in table.structures() if len(s.get_primitive_structure()) == len(s)]
        groups = matcher.group_structures(mine + every)
        assert all(sum(any(x is m for m in mine) for x in g) == 1 for g in groups), n
        assert len(groups) == len(mine)


@needs_icet
def test_translation_between_different_sites_counts_once():
    """CsCl with Cu/Au on one site and Cu/Au/Ag on the other: the body-centring translation maps
    (Cu, Au) onto (Au, Cu), one crystal. icet, using CsCl's symmetry, lists it twice."""
    atoms = Atoms("CuAu", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3) * 3.0, pbc=True)
    parent = restricted(atoms, HCP_CU_AU_AG)
    theirs = icet_structures(atoms, [1], HCP_CU_AU_AG)
    mine = enumerate_labelings(parent, [1], "any").structures()
    assert len(theirs) == 6 and len(mine) == count_labelings(parent, [1], "any")[1] == 5
    groups = StructureMatcher(ltol=0.01, stol=0.01, angle_tol=0.1).group_structures(mine + theirs)
    assert len(groups) == 5 and all(sum(any(x is m for m in mine) for x in g) == 1 for g in groups)


# --- table conventions ---------------------------------------------------------------------------


def test_rows_sorted_reproducible_and_hnfs_canonical(argyrodite):
    parent = disordered(LATTICES["hcp"], ["Ag", "Au"])
    a = enumerate_labelings(parent, [1, 2, 3], "any")
    b = enumerate_labelings(parent, [3, 2, 1], "any")
    assert np.array_equal(a.occupations, b.occupations) and np.array_equal(a.hnfs, b.hnfs)
    assert np.all(np.diff(a.cell_sizes) >= 0)
    keys = [(n, *a.hnfs[h].ravel(), *row) for n, h, row in zip(a.cell_sizes, a.hnf_index, a.occupations)]
    assert keys == sorted(keys)
    for hnf in a.hnfs:
        assert np.array_equal(hermite_normal_form(hnf), hnf)
    assert a.occupations.dtype == np.int8 and (a.occupations[a.cell_sizes == 1][:, 2:] == -1).all()


def test_hermite_normal_forms_by_their_definition():
    """H = M U with U unimodular, H lower triangular, 0 <= H[i, k] < H[i, i]: checked on random matrices."""
    rng = np.random.default_rng(1)
    mats = rng.integers(-5, 6, size=(3000, 3, 3))
    mats = mats[np.rint(np.abs(np.linalg.det(mats))) > 0]
    h = hermite_normal_forms(mats)
    u = np.linalg.solve(mats.astype(float), h.astype(float))
    assert np.allclose(u, np.rint(u)) and np.allclose(np.abs(np.linalg.det(u)), 1)
    assert (h[:, [0, 0, 1], [1, 2, 2]] == 0).all() and (np.diagonal(h, axis1=1, axis2=2) > 0).all()
    for i, k in ((1, 0), (2, 0), (2, 1)):
        assert ((0 <= h[:, i, k]) & (h[:, i, k] < h[:, i, i])).all()
    assert all(np.array_equal(hermite_normal_form(m), x) for m, x in zip(mats[:50], h[:50]))


def test_species_order_per_site_is_respected():
    """Two equivalent hcp sites listing their species in opposite orders give the same orderings."""
    atoms = LATTICES["hcp"]
    same = disordered(atoms, ["Ag", "Au"])
    swapped = disordered(atoms, [], [["Ag", "Au"], ["Au", "Ag"]])
    a = enumerate_labelings(same, [1, 2, 3], "any")
    b = enumerate_labelings(swapped, [1, 2, 3], "any")
    assert b.species[0] == ("Ag", "Au") and b.species[1] == ("Au", "Ag")
    assert len(a) == len(b) == sum(count_labelings(swapped, [1, 2, 3], "any").values())
    for h in range(len(b.hnfs)):
        rows = [tuple(r) for r in b.occupations[b.hnf_index == h]]
        assert rows == sorted(rows)
    assert_same_up_to_symmetry(b.structures(), a.structures())


@needs_icet
def test_structures_equal_icet_on_hcp_and_bcc():
    for lattice, sizes in (("hcp", (1, 2, 3)), ("bcc", (1, 2, 3, 4))):
        atoms = LATTICES[lattice]
        table = enumerate_labelings(disordered(atoms, ["Ag", "Au"]), sizes, "any")
        assert_same_up_to_symmetry(table.structures(), icet_structures(atoms, sizes, ["Ag", "Au"]))


def test_parent_left_alone(argyrodite):
    before = argyrodite.copy()
    enumerate_labelings(argyrodite, [1])
    assert argyrodite == before


# --- bad input -----------------------------------------------------------------------------------


def test_errors(argyrodite):
    with pytest.raises(OccupancyError, match="no partially occupied site"):
        enumerate_labelings(Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]]), [1])
    with pytest.raises(OccupancyError, match=r"multiple of 2; you asked for cell sizes \[1, 3\]"):
        enumerate_labelings(disordered(LATTICES["fcc"], ["Ag", "Au"]), [1, 3])
    with pytest.raises(ConcentrationError, match="No disordered site allows 'Na'"):
        enumerate_labelings(argyrodite, [1], {"Na": 0.5})
    with pytest.raises(ConcentrationError, match="0 <= low <= high <= 1"):
        count_labelings(argyrodite, [1], {"Li+": (0.6, 0.4)})
    with pytest.raises(ConcentrationError, match="concentrations must be"):
        enumerate_labelings(argyrodite, [1], "fixed")
    with pytest.raises(SymmetryError, match="not a primitive cell"):
        enumerate_labelings(disordered(bulk("Cu", "fcc", a=4.0, cubic=True), ["Ag", "Au"]), [1], "any")
    with pytest.raises(CellSizeError, match="positive integers"):
        enumerate_labelings(argyrodite, [0])


def test_an_index_too_large_is_refused_before_its_supercells_are_listed():
    """1447 is prime, so it has 1 + 1447 + 1447^2 = 2,095,257 HNFs; they used to be listed first."""
    import time
    import tracemalloc

    from almat.enumeration.hnf import distinct_supercells

    tracemalloc.start()
    start = time.process_time()
    with pytest.raises(CellSizeError, match="Cell size 1447 is too large"):
        distinct_supercells(1447, np.eye(3, dtype=np.int64)[None])
    seconds, peak = time.process_time() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 0.5 and peak < 1e6, (seconds, peak)
