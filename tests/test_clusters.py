"""Orbits of clusters: against textbook fcc shells, pymatgen's distances, and icet (the reference extra)."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from almat.clusters import ClusterError, cluster_key, cluster_orbits, point_functions
from almat.features import parent_atoms
from almat.orderings import disorder_of
from icet_reference import icet_space, needs_icet

#: A model fcc lattice (Å), close to Ag and Au; any value would do.
A_FCC = 4.08


def fcc(species=None):
    """The primitive fcc cell with one disordered site (Ag/Au by default)."""
    a = A_FCC / np.sqrt(2)
    return Structure(Lattice.from_parameters(a, a, a, 60, 60, 60), [species or {"Ag": 0.5, "Au": 0.5}],
                     [[0, 0, 0]])


def test_fcc_pair_shells_are_the_textbook_ones():
    # fcc coordination shells at a*sqrt(n/2), n = 1..9, hold 12, 6, 24, 12, 24, 8, 48, 6 and
    # 12 + 24 sites; per primitive cell each pair counts once, so half of that. At n = 9 two
    # inequivalent shells share one distance, (330)/2 and (411)/2, sorted by multiplicity.
    orbits = cluster_orbits(fcc(), (9.0,))
    assert [o.multiplicity for o in orbits] == [6, 3, 12, 6, 12, 4, 24, 3, 6, 12]
    expected = A_FCC * np.sqrt(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 9]) / 2)
    np.testing.assert_allclose([o.distances[0] for o in orbits], expected, rtol=1e-9)
    assert [o.name for o in orbits][:2] == ["pair_2.88A", "pair_4.08A"]


def test_fcc_nearest_neighbour_triangles_and_tetrahedra():
    # Each site has 12 neighbours, each neighbour pair shares 4 more: 12 * 4 / 2 = 24 triangles
    # per site, 24 / 3 = 8 per cell; nearest-neighbour tetrahedra are the 2 tetrahedral holes per site.
    orbits = cluster_orbits(fcc(), (3.0, 3.0, 3.0))
    assert [(o.order, o.multiplicity) for o in orbits] == [(2, 6), (3, 8), (4, 2)]
    nn = A_FCC / np.sqrt(2)
    for orbit in orbits:
        np.testing.assert_allclose(orbit.distances, nn, rtol=1e-9)
    assert orbits[2].name == "quadruplet_2.88_2.88_2.88_2.88_2.88_2.88A"


def test_li_pairs_match_pymatgen_neighbour_counts(half):
    orbits = cluster_orbits(half, (8.0,))
    assert len(orbits) == 32 and orbits[0].name == "pair_1.81A" and orbits[0].multiplicity == 6
    sites, _ = disorder_of(half)
    li = Structure.from_sites([half[int(i)] for i in sites])
    _, _, _, dist = li.get_neighbor_list(8.0)
    shells, counts = np.unique(np.round(dist, 4), return_counts=True)
    per_shell = {}
    for orbit in orbits:
        key = round(orbit.distances[0], 4)
        per_shell[key] = per_shell.get(key, 0) + 2 * orbit.multiplicity  # pymatgen counts both ends
    assert per_shell == dict(zip(shells.tolist(), counts.tolist()))


def test_orbits_are_sorted_and_their_clusters_alike(half):
    orbits = cluster_orbits(half, (6.0, 5.0))
    assert [o.order for o in orbits] == sorted(o.order for o in orbits)
    lattice, frac = half.lattice.matrix, half.frac_coords[disorder_of(half)[0]]
    for orbit in orbits:
        cart = (frac[orbit.sites] + orbit.offsets) @ lattice  # (m, order, 3)
        i, j = np.triu_indices(orbit.order, 1)
        np.testing.assert_allclose(np.sort(np.linalg.norm(cart[:, i] - cart[:, j], axis=2), axis=1),
                                   np.broadcast_to(orbit.distances, (orbit.multiplicity, len(i))), atol=1e-6)
        assert len({cluster_key(s, n) for s, n in zip(orbit.sites, orbit.offsets)}) == orbit.multiplicity


def test_positions_outside_the_cell_give_the_same_orbits(half):
    frac = half.frac_coords + np.where(np.arange(len(half)) % 2, 2.0, -1.0)[:, None] * [1, 0, 1]
    moved = Structure(half.lattice, [s.species for s in half], frac, coords_are_cartesian=False)
    assert [(o.name, o.multiplicity) for o in cluster_orbits(moved, (6.0, 5.0))] == \
        [(o.name, o.multiplicity) for o in cluster_orbits(half, (6.0, 5.0))]


def test_occupancies_do_not_split_orbits(half):
    uneven = half.copy()
    for i in range(0, 12, 2):
        uneven.replace(i, {"Li+": 0.25})
    assert [(o.name, o.multiplicity) for o in cluster_orbits(uneven, (6.0,))] == \
        [(o.name, o.multiplicity) for o in cluster_orbits(half, (6.0,))]


def test_points_are_one_orbit_per_sublattice(half):
    orbits = cluster_orbits(half, (2.0,), points=True)
    assert [(o.name, o.multiplicity) for o in orbits] == [("point", 12), ("pair_1.81A", 6)]


def test_cluster_key_ignores_translation_and_site_order():
    sites, offsets = np.array([3, 0, 5]), np.array([[0, 0, 1], [1, -1, 0], [2, 0, 0]])
    key = cluster_key(sites, offsets)
    assert cluster_key(sites[::-1], offsets[::-1] + [4, 5, -6]) == key
    assert cluster_key(sites, offsets + [[0, 0, 0], [0, 0, 0], [0, 0, 1]]) != key


def test_point_functions_convention():
    # icet's two-species basis: φ(σ) = -cos(π σ), σ the rank by atomic number (vacancy 0).
    np.testing.assert_array_equal(point_functions([("Li+", "X"), ("X", "Li")]), [[1, -1], [-1, 1]])
    np.testing.assert_array_equal(point_functions([("Au", "Cu"), ("Cu", "Au")]), [[1, -1], [-1, 1]])
    with pytest.raises(ClusterError, match="two species"):
        point_functions([("Li", "Na", "X")])


def test_bad_input(half):
    for cutoffs in [(), (-1.0,), ("far",), None]:
        with pytest.raises(ClusterError, match="cutoffs"):
            cluster_orbits(half, cutoffs)
    with pytest.raises(ClusterError, match="no partially occupied site"):
        cluster_orbits(fcc({"Ag": 1.0}), (5.0,))


def _located(parent, cluster):
    """Disordered column and cell offset of each site of an icet cluster, by position."""
    sites, _ = disorder_of(parent)
    frac = np.array(cluster.positions) @ np.linalg.inv(parent.lattice.matrix)
    diff = frac[:, None] - parent.frac_coords[sites][None]
    j = np.abs(diff - np.rint(diff)).max(axis=2).argmin(axis=1)
    return j, np.rint(diff[np.arange(len(j)), j]).astype(int)


CASES = [("li", (8.0,)), ("li", (6.0,)), ("li", (6.0, 5.0)), ("fcc", (9.0, 6.0, 4.5))]


@needs_icet
@pytest.mark.parametrize("lattice, cutoffs", CASES, ids=[f"{p}-{c}" for p, c in CASES])
def test_orbits_equal_icets_in_icets_order(half, lattice, cutoffs):
    parent = half if lattice == "li" else fcc()
    space = icet_space(parent, cutoffs)
    rows = [row for row in space.as_list if row["order"] >= 2]
    orbits = cluster_orbits(parent, cutoffs)
    assert len(orbits) == len(rows)
    for orbit, row in zip(orbits, rows):
        reference = space.orbit_list.orbits[row["orbit_index"]]
        assert (orbit.order, orbit.multiplicity) == (row["order"], row["multiplicity"])
        assert orbit.radius == pytest.approx(row["radius"], abs=1e-6)
        np.testing.assert_allclose(orbit.distances, sorted(reference.representative_cluster.distances),
                                   atol=1e-6)
        theirs = {cluster_key(*_located(parent, c)) for c in reference.clusters}
        assert theirs == {cluster_key(s, n) for s, n in zip(orbit.sites, orbit.offsets)}


@needs_icet
@pytest.mark.parametrize("species", [{"Li+": 0.5}, {"Cu": 0.5, "Au": 0.5}, {"Au": 0.5, "Cu": 0.5}],
                         ids=["Li-X", "Cu-Au", "Au-Cu"])
def test_point_functions_equal_icets(half, species):
    """icet's point correlation of a structure with species m on every disordered site is φ(m)."""
    parent = half if "Li+" in species else fcc(species)
    sites, allowed = disorder_of(parent)
    space = icet_space(parent, (3.0,))
    point = [row["index"] for row in space.as_list if row["order"] == 1]
    atoms, symbols = parent_atoms(parent)
    for m in range(2):
        probe = atoms.copy()
        probe.symbols[sites] = [symbols[i][m] for i in sites]
        expected = np.unique(point_functions(allowed)[:, m])  # one value: one sublattice here
        np.testing.assert_allclose(space.get_cluster_vector(probe)[point], expected, atol=1e-12)
