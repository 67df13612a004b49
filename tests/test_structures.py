"""Chemistry of the parent structure and the errors a learner meets when preparing it."""

import numpy as np
import pytest
from pymatgen.core import Structure

import almat
from almat.structures import (
    LI_OCCUPANCY,
    OccupancyError,
    StructureFileError,
    build_parent,
)


def _shortest(structure, a, b):
    ia = [i for i, s in enumerate(structure) if s.species.elements[0].symbol == a]
    ib = [i for i, s in enumerate(structure) if s.species.elements[0].symbol == b]
    d = structure.distance_matrix[np.ix_(ia, ib)]
    return d[d > 0.1].min()


def test_shipped_cif_matches_the_published_facts(parent):
    conv = almat.load_parent(primitive=False)
    assert conv.get_space_group_info()[1] == 216
    assert conv.lattice.abc == pytest.approx((9.86, 9.86, 9.86))
    assert len(conv) == 4 + 16 + 4 + 4 + 48
    # the file on disk is what the build script writes
    assert conv.matches(build_parent())


@pytest.mark.parametrize("a,b,low,high", [
    ("Li", "S", 2.4, 2.5),
    ("P", "S", 2.03, 2.05),
    ("Li", "Cl", 2.55, 2.65),
])
def test_bond_lengths(parent, a, b, low, high):
    assert low <= _shortest(parent, a, b) <= high


def test_primitive_cell_has_12_li_sites(parent):
    li = [s for s in parent if s.species.elements[0].symbol == "Li"]
    assert len(parent) == 19
    assert len(li) == 12
    assert all(s.species.num_atoms == pytest.approx(LI_OCCUPANCY) for s in li)


def test_half_occupancy_gives_li6ps5cl(half, parent):
    assert half.composition.reduced_formula == "Li6PS5Cl"
    assert half.composition["Li+"] == pytest.approx(6)
    # oxidation states are kept, the input is left alone
    assert {str(sp) for sp in half.composition} == {"Li+", "P5+", "S2-", "Cl-"}
    assert parent.composition["Li+"] == pytest.approx(12 * 0.56)


def test_set_occupancy_on_an_ordered_structure_says_so():
    ordered = Structure([[3, 0, 0], [0, 3, 0], [0, 0, 3]], ["Na"], [[0, 0, 0]])
    with pytest.raises(OccupancyError, match="already ordered"):
        almat.set_occupancy(ordered, 0.5)


def test_occupancy_056_error_names_site_occupancy_and_cell_size(parent):
    with pytest.raises(OccupancyError) as info:
        almat.count_orderings(parent, 4)  # the one check of cell sizes, in almat.enumeration.problem
    msg = str(info.value)
    for part in ("Li+", "0.56", "14/25", "N = 25", "set_occupancy(structure, 0.5)"):
        assert part in msg
    assert "\n" not in msg  # one paragraph


def test_missing_cif(tmp_path):
    with pytest.raises(StructureFileError, match="No structure file") as info:
        almat.load_parent(tmp_path / "EntryWithCollCode418490.cif")
    assert "load_parent()" in str(info.value)


def test_unreadable_cif(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("<html><body>Session expired</body></html>\n")
    with pytest.raises(StructureFileError, match="Could not read") as info:
        almat.read_structure(bad)
    assert "atom_site" in str(info.value)
