"""Features: cluster vectors checked against icet (the reference extra), Li-Li descriptor against pymatgen."""

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from ase.build import make_supercell
from pymatgen.io.ase import AseAtomsAdaptor

import almat
import lessoncheck
from almat.enumeration import enumerate_table
from almat.features import (
    ClusterVectorFeaturizer,
    FeaturizerError,
    FunctionFeaturizer,
    IcetMissingError,
    LiLiDistanceFeaturizer,
    as_featurizer,
    parent_atoms,
)
from almat.orderings import Orderings, disorder_of, orderings_from_cells
from icet_reference import enumerate_structures, icet_space, icet_vectors, needs_icet
from test_clusters import fcc


def hnfs_of_size(n):
    """Every lower-triangular HNF of determinant n (7 for n = 2, 13 for n = 3)."""
    out = []
    for a in range(1, n + 1):
        for c in range(1, n + 1):
            if n % (a * c):
                continue
            f = n // (a * c)
            out += [np.array([[a, 0, 0], [b, c, 0], [d, e, f]])
                    for b in range(c) for d in range(f) for e in range(f)]
    return out


def random_supercells(half, size, per_hnf, seed):
    """Random half-filled Li/X decorations built with ase alone (not through Orderings)."""
    atoms, _ = parent_atoms(half)
    rng = np.random.default_rng(seed)
    out = []
    for h in hnfs_of_size(size):
        for _ in range(per_hnf):
            s = make_supercell(atoms, h.T)
            symbols = np.array(s.get_chemical_symbols())
            li = np.flatnonzero(symbols == "Li")
            symbols[rng.choice(li, len(li) // 2, replace=False)] = "X"
            s.set_chemical_symbols(list(symbols))
            out.append(s)
    return out


def as_table(half, structures):
    return orderings_from_cells(half, [(s.cell[:], s.get_scaled_positions(), s.get_chemical_symbols())
                                       for s in structures])


def random_table(half, n, seed=0):
    """n random balanced size-2 orderings over all 7 size-2 supercells."""
    sites, species = disorder_of(half)
    rng = np.random.default_rng(seed)
    labels = (np.argsort(rng.random((n, 2 * len(sites))), axis=1) % 2).astype(np.int8)
    return Orderings(half, sites, species, np.array(hnfs_of_size(2)), rng.integers(0, 7, n), labels)


@pytest.fixture(scope="module")
def cv(half):
    return ClusterVectorFeaturizer(half, cutoffs=(6.0, 5.0))  # triplets too: the stricter icet check


@pytest.fixture(scope="module")
def size1(half):
    return enumerate_table(half, 1)


@pytest.fixture(scope="module")
def size1_icet(half):
    """The 48 size-1 orderings as icet enumerates them, and as a table."""
    atoms, allowed = parent_atoms(half)
    li = 6 / len(atoms)  # icet counts concentration over all 19 sites
    half_filled = {"Li": (li - 1e-6, li + 1e-6)}
    structures = list(enumerate_structures(atoms, [1], allowed, concentration_restrictions=half_filled))
    return structures, as_table(half, structures)


@pytest.fixture(scope="module")
def pool():
    return almat.load_pool()


def test_cluster_space_has_45_varying_columns(cv):
    assert len(cv.feature_names) == 45
    assert len(set(cv.feature_names)) == 45
    assert cv.feature_names[0] == "pair_1.81A"
    assert sum(n.startswith("pair") for n in cv.feature_names) == 14
    assert sum(n.startswith("triplet") for n in cv.feature_names) == 31


def test_default_is_the_pair_shells_up_to_8_angstrom(half, cv):
    pairs = ClusterVectorFeaturizer(half)
    assert pairs.cutoffs == (8.0,)
    assert all(n.startswith("pair") for n in pairs.feature_names)
    six = ClusterVectorFeaturizer(half, cutoffs=(6.0,))
    assert six.feature_names == [n for n in cv.feature_names if n.startswith("pair")]


@needs_icet
def test_size1_equals_icet(cv, half, size1_icet):
    structures, table = size1_icet
    assert len(structures) == 48  # published count at occupancy 1/2, cell size 1
    X = cv.transform(table)
    assert X.shape == (48, 45)
    np.testing.assert_allclose(X, icet_vectors(icet_space(half, cv.cutoffs), structures), atol=1e-10, rtol=0)


@needs_icet
@pytest.mark.parametrize("size", [2, 3])
def test_larger_cells_equal_icet(cv, half, size):
    structures = random_supercells(half, size, per_hnf=3, seed=size)
    table = as_table(half, structures)
    assert len(np.unique(table.hnf_index)) == len(hnfs_of_size(size))
    np.testing.assert_allclose(cv.transform(table), icet_vectors(icet_space(half, cv.cutoffs), structures),
                               atol=1e-10, rtol=0)


@needs_icet
@pytest.mark.parametrize("cutoffs", [(6.0,), (8.0,), (6.0, 5.0)])
def test_shipped_pool_equals_icet(pool, cutoffs):
    parent = pool.orderings.parent
    structures = [pool.orderings.atoms(i) for i in range(len(pool.orderings))]
    X = ClusterVectorFeaturizer(parent, cutoffs).transform(pool)
    assert X.shape[0] == 630
    np.testing.assert_allclose(X, icet_vectors(icet_space(parent, cutoffs), structures), atol=1e-10, rtol=0)


@needs_icet
def test_fcc_binary_equals_icet():
    """A second lattice: Ag/Au on fcc, every 50:50 ordering up to 8 atoms, pairs, triplets, quadruplets."""
    parent = fcc()
    table = enumerate_table(parent, 8)
    cutoffs = (8.0, 6.0, 4.5)
    featurizer = ClusterVectorFeaturizer(parent, cutoffs, fixed_composition=False)
    structures = [table.atoms(i) for i in range(len(table))]
    X = featurizer.transform(table)
    assert featurizer.feature_names[0] == "point" and X.shape[0] > 100
    np.testing.assert_allclose(X, icet_vectors(icet_space(parent, cutoffs), structures, least_order=1),
                               atol=1e-10, rtol=0)


@needs_icet
def test_three_species_go_through_icet():
    parent = fcc({"Cu": 1 / 3, "Au": 1 / 3})  # Cu, Au and a vacancy
    table = enumerate_table(parent, 3)
    featurizer = ClusterVectorFeaturizer(parent, (6.0, 4.0))
    # Three cluster functions per pair orbit on a three-species site, one column each.
    assert featurizer.orbits is None
    assert featurizer.feature_names[:4] == ["pair_2.88A", "pair_2.88A#2", "pair_2.88A#3", "pair_4.08A"]
    structures = [table.atoms(i) for i in range(len(table))]
    np.testing.assert_allclose(featurizer.transform(table), icet_vectors(featurizer.cluster_space, structures))
    with pytest.raises(FeaturizerError, match="two species"):
        featurizer.transform(table, method="fast")


@needs_icet
def test_icet_method_agrees_with_fast_path(cv, half):
    table = random_table(half, 6, seed=3)
    np.testing.assert_allclose(cv.transform(table, method="icet"), cv.transform(table, method="fast"),
                               atol=1e-10, rtol=0)


WITHOUT_ICET = r"""
import json, sys
sys.modules["icet"] = None  # as if the reference extra were not installed
import almat, almat.features
from pymatgen.core import Lattice, Structure
pool = almat.load_pool()
featurizer = almat.ClusterVectorFeaturizer(pool.orderings.parent)
out = {"shape": featurizer.transform(pool).shape, "columns": featurizer.feature_names}
campaign = almat.Campaign(pool, almat.TableOracle(), strategy="lcb", seed=0, n_initial=3)
out["labels"] = len(campaign.run(5))
errors = []
try:
    featurizer.transform(pool, method="icet")
except almat.features.IcetMissingError as err:
    errors.append(str(err))
ternary = Structure(Lattice.cubic(3.0), [{"Cu": 0.3, "Au": 0.3}], [[0, 0, 0]])
try:
    almat.ClusterVectorFeaturizer(ternary)
except almat.features.IcetMissingError as err:
    errors.append(str(err))
out["errors"] = errors
print("RESULT " + json.dumps(out))
"""


def test_lesson_featurizer_and_campaign_work_without_icet(pool, tmp_path):
    env = {**os.environ, "ALMAT_LABELS_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", WITHOUT_ICET], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stderr[-3000:]
    out = json.loads(lines[0][7:])
    featurizer = ClusterVectorFeaturizer(pool.orderings.parent)
    assert out["shape"] == [630, 32] and out["columns"] == featurizer.feature_names
    assert out["labels"] == 5
    assert len(out["errors"]) == 2
    for message in out["errors"]:
        assert 'pip install "almat[reference]"' in message and "\n" not in message


def test_icet_is_imported_only_inside_functions():
    """``import almat`` and every module stay importable without icet: no module-level import of it."""
    package = Path(almat.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "icet" for n in names), f"{path.name}:{node.lineno}"


def test_no_episode_code_asks_for_icet():
    """The lesson reaches icet only if its code asks for a reference path (method or backend "icet")."""
    root = Path(__file__).resolve().parents[1]
    for episode in lessoncheck.episode_files(root):
        for block in lessoncheck.code_blocks(episode):
            assert "icet" not in block.text, f"{episode.name}, line {block.line}"


def test_without_icet_the_reference_paths_refuse_in_process(cv, monkeypatch):
    monkeypatch.setitem(sys.modules, "icet", None)
    fresh = ClusterVectorFeaturizer(cv.parent, cv.cutoffs)
    with pytest.raises(IcetMissingError, match=r"almat\[reference\]"):
        fresh.cluster_space


def test_the_48h_pair_correlation_by_hand(cv, half, size1):
    """Li on exactly one site of every 1.81 Å pair gives pair correlation -1 (φ(Li) = -φ(X));
    Li on both sites of three pairs and on neither of the other three gives +1."""
    sites, species = disorder_of(half)
    dist = half.distance_matrix[np.ix_(sites, sites)]
    partner = [int(np.flatnonzero(np.isclose(row, row[row > 0.1].min()))[0]) for row in dist]
    pairs = sorted({tuple(sorted((j, partner[j]))) for j in range(len(sites))})
    assert len(pairs) == 6
    one_each = np.ones(len(sites), dtype=np.int8)
    both_or_none = np.ones(len(sites), dtype=np.int8)
    for k, (a, b) in enumerate(pairs):
        one_each[a] = 0
        both_or_none[[a, b]] = 0 if k < 3 else 1
    table = Orderings(half, sites, species, np.eye(3, dtype=np.int64)[None], np.zeros(2, dtype=np.int64),
                      np.stack([one_each, both_or_none]))
    X = cv.transform(table)
    assert X[:, 0].tolist() == [-1.0, 1.0]
    # The issue states: 44 of the 48 size-1 orderings put Li on both sites of a 1.8 Å pair.
    assert len(size1) == 48  # published count at occupancy 1/2, cell size 1
    assert int(np.sum(cv.transform(size1)[:, 0] == -1.0)) == 4


def test_pool_like_object_and_caching(cv, half):
    table = random_table(half, 50, seed=1)
    pool = SimpleNamespace(orderings=table)
    np.testing.assert_array_equal(cv.transform(pool), cv.transform(table))
    assert len(cv._tables) >= 1


def test_speed_3000_size2(cv, half):
    table = random_table(half, 3000)
    start = time.perf_counter()
    X = cv.transform(table)
    elapsed = time.perf_counter() - start
    print(f"\nClusterVectorFeaturizer: 3,000 size-2 orderings in {elapsed:.2f} s")
    assert X.shape == (3000, 45)
    assert elapsed < 20  # ~0.1 s here; loose so that a loaded CI machine passes


@pytest.mark.slow
def test_speed_whole_size2_space(cv, half):
    table = random_table(half, 395_632)
    start = time.perf_counter()
    X = cv.transform(table)
    elapsed = time.perf_counter() - start
    print(f"\nClusterVectorFeaturizer: 395,632 size-2 orderings in {elapsed:.1f} s")
    assert X.shape == (395_632, 45)
    assert elapsed < 60


def test_bad_input(cv, half):
    with pytest.raises(FeaturizerError, match="Orderings"):
        cv.transform([half])
    with pytest.raises(FeaturizerError, match="method"):
        cv.transform(random_table(half, 2), method="magic")
    bad = random_table(half, 3)
    occupations = bad.occupations.copy()
    occupations[1, 5] = 2
    with pytest.raises(FeaturizerError, match="Ordering 1"):
        cv.transform(Orderings(half, bad.sites, bad.species, bad.hnfs, bad.hnf_index, occupations))
    other = half.copy()
    other.scale_lattice(other.volume * 1.1)
    sites, species = disorder_of(other)
    with pytest.raises(FeaturizerError, match="same parent"):
        cv.transform(Orderings(other, sites, species, bad.hnfs, bad.hnf_index, bad.occupations))


def pymatgen_li_li(structure, edges):
    """Shell counts per formula unit and shortest Li-Li distance, straight from pymatgen."""
    li = [i for i, s in enumerate(structure) if s.specie.symbol == "Li"]
    n_fu = structure.composition["P"]
    centre, neighbour, _, dist = structure.get_neighbor_list(edges[-1] - 1e-9)
    dist = dist[np.isin(centre, li) & np.isin(neighbour, li)]
    counts = np.histogram(dist, bins=edges)[0] / 2 / n_fu
    return np.append(counts, dist.min() if len(dist) else edges[-1])


@pytest.mark.parametrize("size", [1, 2])
def test_li_li_features_equal_pymatgen(half, size1, size):
    structures = ([size1.atoms(i) for i in range(len(size1))] if size == 1
                  else random_supercells(half, 2, per_hnf=2, seed=7))
    featurizer = LiLiDistanceFeaturizer(half)
    X = featurizer.transform(as_table(half, structures))
    adaptor = AseAtomsAdaptor()
    for row, atoms in zip(X, structures):
        keep = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s != "X"]
        ref = pymatgen_li_li(adaptor.get_structure(atoms[keep]), featurizer.edges)
        np.testing.assert_allclose(row, ref, atol=1e-6)
    assert featurizer.feature_names[-1] == "LiLi_min_distance_A"
    if size == 1:  # the issue: 44 of 48 orderings have Li on both ends of a 1.8 Å pair
        assert int(np.sum(X[:, -1] < 2.0)) == 44


def test_li_li_edges_validated(half):
    with pytest.raises(FeaturizerError, match="increasing"):
        LiLiDistanceFeaturizer(half, edges=(3.0, 2.0))


def test_plain_function_is_a_featurizer(half):
    table = random_table(half, 10)

    def n_vacancies_first_cell(orderings):
        return (orderings.occupations[:, :12] == 1).sum(axis=1)

    fz = as_featurizer(n_vacancies_first_cell)
    assert isinstance(fz, FunctionFeaturizer)
    with pytest.raises(FeaturizerError, match="transform once"):
        fz.feature_names
    X = fz.transform(SimpleNamespace(orderings=table))
    assert X.shape == (10, 1)
    np.testing.assert_array_equal(X[:, 0], (table.occupations[:, :12] == 1).sum(axis=1))
    assert fz.feature_names == ["n_vacancies_first_cell_0"]
    named = as_featurizer(lambda o: np.zeros((len(o), 2)), names=["a", "b"])
    assert named.feature_names == ["a", "b"]
    cv = LiLiDistanceFeaturizer(half)
    assert as_featurizer(cv) is cv


def test_plain_function_errors(half):
    table = random_table(half, 4)
    with pytest.raises(FeaturizerError, match="one row per ordering"):
        as_featurizer(lambda o: np.zeros((3, 2))).transform(table)
    with pytest.raises(FeaturizerError, match="NaN"):
        as_featurizer(lambda o: np.full(len(o), np.nan)).transform(table)
    with pytest.raises(FeaturizerError, match="names"):
        as_featurizer(lambda o: np.zeros((len(o), 2)), names=["a"]).transform(table)
    with pytest.raises(FeaturizerError, match="featurizer"):
        as_featurizer(42)
