"""Tests of almat.views: what the 3-D views and the pool map are built from.

Facts used (Li6PS5Cl, F-43m, a = 9.86 Å): the 48h sites come in pairs 1.81 Å
apart (episode 2 measures it with pymatgen), 6 pairs (12 sites) per primitive
cell of 19 sites; at occupancy 1/2 an ordering of one primitive cell has 6 Li
and 6 empty sites. Pairs that hold two Li are counted independently here with
pymatgen's neighbour list on the structure with the vacancies removed.
Rendering in a browser is tested in ``tests/browser/test_views_in_jupyterlab.py``.
"""

import json

import numpy as np
import pytest
from pymatgen.core import Structure

import almat
from almat import chemiscope_widgets, views
from almat.relaxation import Relaxation

#: The 48h pair distance of Li6PS5Cl (Å), from the parent structure (episode 2 prints 1.81).
PAIR_LENGTH = 1.81


@pytest.fixture(scope="module")
def pool():
    return almat.load_pool()


@pytest.fixture(scope="module")
def every(half):
    """All 48 orderings of one primitive cell, without the exclusion (some have full pairs)."""
    return almat.enumerate_table(half, max_cell_size=1)


def li_li_pairs(structure: Structure, cutoff: float = 2.0) -> int:
    """Li-Li pairs closer than ``cutoff`` (Å), periodic images included, by pymatgen."""
    li = structure.copy()
    li.remove_species([s for s in li.composition if s.symbol != "Li"])
    centres, neighbours, _, distances = li.get_neighbor_list(cutoff)
    return int((distances < cutoff).sum()) // 2  # each pair is listed from both ends


def same_point_in_crystal(a: np.ndarray, b: np.ndarray, cell: np.ndarray) -> bool:
    """Whether Cartesian points a and b differ by a lattice vector."""
    frac = np.linalg.solve(cell.T, (a - b).T).T
    return bool(np.allclose(frac, np.rint(frac), atol=1e-6))


# --------------------------------------------------------------------- one ordering
@pytest.mark.parametrize("index, cell_size", [(0, 1), (3, 1), (4, 2), (355, 2), (629, 2)])
def test_candidate_sites_pairs_and_framework(pool, index, cell_size):
    scene = views.ordering_scene(pool, index)
    structure = pool.structure(index)
    assert pool.reference["cell_size"].iloc[index] == cell_size
    assert scene.n_li == 6 * cell_size
    assert len(scene.vacancies) == 6 * cell_size
    assert sorted(scene.symbols) == sorted(s.specie.symbol for s in structure)
    # every drawn atom is an atom of the structure, perhaps moved by a lattice vector
    for symbol, position in zip(scene.symbols, scene.positions):
        assert any(symbol == s.specie.symbol
                   and same_point_in_crystal(position, s.coords, scene.cell) for s in structure)
    # 6 pairs per primitive cell, each 1.81 Å long, each with one Li and one empty site
    assert scene.pairs.shape == (6 * cell_size, 2, 3)
    lengths = np.linalg.norm(scene.pairs[:, 1] - scene.pairs[:, 0], axis=1)
    assert np.allclose(lengths, PAIR_LENGTH, atol=0.01)
    li = scene.positions[np.array(scene.symbols) == "Li"]
    for end_a, end_b in scene.pairs:
        holds = [any(same_point_in_crystal(end, p, scene.cell) for p in li) for end in (end_a, end_b)]
        empty = [any(same_point_in_crystal(end, v, scene.cell) for v in scene.vacancies)
                 for end in (end_a, end_b)]
        assert sorted(holds) == [False, True] and sorted(empty) == [False, True]
    assert not scene.full.any()  # the pool excludes two Li closer than 2 Å
    assert scene.describe() == (f"{pool.ids[index]}: {6 * cell_size} Li, {6 * cell_size} empty "
                                f"48h sites, {6 * cell_size} pairs (0 with two Li)")


def test_cages_are_drawn_whole(pool):
    """Drawn 48h sites lie within a cage's reach of each other: no cage is cut by the cell edge."""
    for index in (0, 1, 2, 3, 100, 500):
        scene = views.ordering_scene(pool, index)
        sites = np.vstack([scene.positions[np.array(scene.symbols) == "Li"], scene.vacancies])
        gaps = np.linalg.norm(sites[:, None] - sites[None], axis=2)
        np.fill_diagonal(gaps, np.inf)
        assert gaps.min(axis=1).max() < 2.0, index  # every site has its pair partner beside it
        for end_a, end_b in scene.pairs:  # and the rods join drawn sites, not far images
            assert np.linalg.norm(sites - end_a, axis=1).min() < 1e-6
            assert np.linalg.norm(sites - end_b, axis=1).min() < 1e-6


def test_full_pairs_match_an_independent_count(every):
    counts = []
    for i in range(len(every)):
        scene = views.ordering_scene(every, i)
        assert int(scene.full.sum()) == li_li_pairs(every.structure(i)), i
        counts.append(int(scene.full.sum()))
    assert min(counts) == 0 and max(counts) == 3  # 6 Li on 6 pairs: at most 3 pairs full
    assert views.ordering_scene(every, counts.index(3)).describe().endswith("(3 with two Li)")


def test_pool_scenes_are_the_single_scenes(pool):
    scenes = views.pool_scenes(pool)
    assert [s.name for s in scenes] == pool.ids
    for i in (0, 3, 4, 300, 629):
        one = views.ordering_scene(pool, i)
        assert scenes[i].symbols == one.symbols
        for field in ("positions", "vacancies", "pairs", "full"):
            assert np.array_equal(getattr(scenes[i], field), getattr(one, field)), (i, field)


def test_a_structure_without_vacancies(pool, every):
    scene = views.ordering_scene(pool.structure(0))
    assert scene.n_li == 6 and len(scene.vacancies) == 0 and len(scene.pairs) == 0
    crowded = max(range(len(every)), key=lambda i: li_li_pairs(every.structure(i)))
    scene = views.ordering_scene(every.structure(crowded))
    assert len(scene.pairs) == int(scene.full.sum()) == 3  # only Li are known: pairs of two Li


def test_candidate_by_id(pool):
    assert views.ordering_scene(pool, "c2-000355").name == "c2-000355"
    assert np.array_equal(views.ordering_scene(pool, "c2-000355").positions,
                          views.ordering_scene(pool, pool.ids.index("c2-000355")).positions)


@pytest.mark.parametrize("call, match", [
    (lambda pool, parent: views.show_ordering(pool), r"say which candidate, e\.g\. show_ordering"),
    (lambda pool, parent: views.show_ordering(pool, "c9-999999"), "No candidate 'c9-999999'"),
    (lambda pool, parent: views.show_ordering(pool, 630), "outside pool 'li6ps5cl' \\(0 to 629\\)"),
    (lambda pool, parent: views.show_ordering(parent), "not the disordered parent"),
    (lambda pool, parent: views.show_ordering("c1-000000"), "got str"),
])
def test_refusals_are_clear(pool, parent, call, match):
    with pytest.raises(views.ViewError, match=match) as caught:
        call(pool, parent)
    assert isinstance(caught.value, almat.AlmatError)
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------- the widgets
@pytest.fixture
def first_messages(monkeypatch):
    """The state each widget is created with (its comm's opening message), by class name."""
    import ipywidgets.widgets.widget as widget_module

    opened: dict[str, dict] = {}
    create = widget_module.comm.create_comm

    def record(**args):
        opened.setdefault(args["data"]["state"].get("_anywidget_id", "").split(".")[-1],
                          args["data"]["state"])
        return create(**args)

    monkeypatch.setattr(widget_module.comm, "create_comm", record)
    return opened


def assert_created_whole(view, opened: dict[str, dict]) -> None:
    """The page draws from the state a widget is created with: data, settings and mode must be
    in it, not in updates sent after it (chemiscope sends them after, and a page can miss them)."""
    first = opened[type(view).__name__]
    for name in ("value", "settings", "mode", "has_metadata"):
        assert first[name] == getattr(view, name), name
    assert json.loads(first["value"])["structures"], "no structures in the first message"


def test_ordering_view_holds_the_scene(pool, every, first_messages):
    crowded = max(range(len(every)), key=lambda i: li_li_pairs(every.structure(i)))
    view = views.show_ordering(every, crowded)
    data = json.loads(view.value)
    assert len(data["structures"]) == 1
    frame = data["structures"][0]
    assert frame["size"] == 13 and frame["names"].count("Li") == 6  # 19 sites, 6 empty
    spheres = data["shapes"][views.EMPTY_SITES]["parameters"]["structure"][0]
    rods = data["shapes"][views.PAIRS]["parameters"]["structure"][0]
    assert len(spheres["centers"]) == 6 and len(rods["vectors"]) == 6
    assert sorted(rods["radii"]) == [views.PAIR_RADIUS] * 3 + [views.FULL_PAIR_RADIUS] * 3
    assert rods["colors"].count(views.SHORT_COLOUR) == 3
    assert data["settings"]["structure"][0]["shape"] == f"{views.EMPTY_SITES},{views.PAIRS}"
    assert view.mode == "structure"
    assert_created_whole(view, first_messages)
    assert repr(view) == (f"<3-D view of ordering {crowded}: 6 Li, 6 empty 48h sites, 6 pairs "
                          "(3 with two Li)>")


def test_views_load_chemiscope_behind_the_offline_prologue():
    import chemiscope.widget

    bundle = open(chemiscope.widget._ESM_PATH, encoding="utf-8").read()
    esm = chemiscope_widgets.ChemiscopeView._esm
    assert esm == f"{chemiscope_widgets.OFFLINE_PROLOGUE}\n{bundle}\n{chemiscope_widgets.ON_SCREEN_EPILOGUE}"
    assert "const anywidget={render};export{anywidget as default};" in bundle  # the epilogue's name
    # The opt-out the prologue sets is the one this chemiscope's tracker reads, and the tracker
    # sends with XMLHttpRequest, which the prologue shadows; a new chemiscope must be checked again.
    assert '"true"===window.localStorage.plausible_ignore' in bundle
    assert "new XMLHttpRequest" in bundle
    assert 'localStorage.setItem("plausible_ignore", "true")' in chemiscope_widgets.OFFLINE_PROLOGUE


def test_relaxation_moves_are_measured_against_the_cell(pool):
    before = pool.structure(0)
    shift = np.array([0.01, -0.02, 0.03])  # fractional: a move of every atom by one vector
    moved = Structure(before.lattice, before.species, before.frac_coords + shift)
    start, end, moves = views.relaxation_scenes(before, moved)
    assert np.allclose(moves, shift @ before.lattice.matrix)
    assert np.allclose(end.positions - start.positions, shift @ before.lattice.matrix)
    # a cell that only grows moves no atom relative to it; the relaxed atoms stay in its frame
    grown = before.copy()
    grown.scale_lattice(before.volume * 1.03)
    start, end, moves = views.relaxation_scenes(pool, grown, 0)
    assert np.allclose(moves, 0, atol=1e-9)
    assert len(start.vacancies) == len(end.vacancies) == 6 and len(end.pairs) == 6
    assert np.allclose(np.linalg.solve(end.cell.T, end.positions.T),
                       np.linalg.solve(start.cell.T, start.positions.T))


def test_relaxation_view(pool):
    before = pool.structure(0)
    after = Structure(before.lattice, before.species,
                      before.frac_coords + np.array([0.0, 0.0, 0.02]))
    result = Relaxation(-4.4, -4.37, 3, True, after, 1.0)
    row = views.show_relaxation(pool, result, index=0)
    left, right = row.views
    assert not left.has_metadata and not right.has_metadata  # captions instead of chemiscope's
    assert [column.children[1] for column in row.children] == [left, right]
    assert "c1-000000 before relaxation" in row.children[0].children[0].value
    arrows = json.loads(left.value)["shapes"]["moves"]["parameters"]["atom"]
    assert len(arrows) == 13
    expected = views.ARROW_SCALE * 0.02 * np.linalg.norm(before.lattice.matrix[2])
    assert np.allclose([np.linalg.norm(a["vector"]) for a in arrows], expected, atol=1e-3)
    assert "moves" not in json.loads(right.value)["shapes"]
    assert repr(row) == ("<3-D views of c1-000000 before and after relaxation: 13 atoms, "
                         f"largest move {0.02 * before.lattice.c:.2f} Å>")
    with pytest.raises(views.ViewError, match="same order"):
        views.show_relaxation(pool.structure(1), pool.structure(4))


# --------------------------------------------------------------------- the map
def test_map_properties_of_a_pool(pool, first_messages):
    props = views.pool_map_properties(pool)
    assert props["id"]["values"] == pool.ids
    relaxed = pool.reference["energy_per_atom"].to_numpy()
    assert np.allclose(props["relaxed energy"]["values"], 1000 * (relaxed - relaxed.min()),
                       atol=1e-3)
    assert min(props["unrelaxed energy"]["values"]) == 0
    assert props["relaxed energy"]["units"] == "meV/atom"
    assert props["cell size"]["values"].count(1) == 4
    view = views.show_pool(pool)
    data = json.loads(view.value)
    assert len(data["structures"]) == len(pool)
    assert data["settings"]["map"]["x"] == {"property": "unrelaxed energy"}
    assert data["settings"]["map"]["y"] == {"property": "relaxed energy"}
    assert view.mode == "default"
    assert_created_whole(view, first_messages)
    with pytest.raises(views.ViewError, match="no property 'energy'; choose from"):
        views.show_pool(pool, x="energy")


def test_map_of_a_campaign(pool, tmp_path):
    campaign = almat.Campaign(pool, almat.TableOracle(), strategy="greedy", n_initial=3, seed=1,
                              ledger_path=tmp_path / "labels.jsonl")
    props = views.pool_map_properties(pool, campaign)
    assert "μ" not in props and props["status"]["values"].count("next") == 1
    campaign.run(6)
    campaign.skip("looks odd")
    props = views.pool_map_properties(pool, campaign)
    status = np.array(props["status"]["values"])
    assert sorted(np.flatnonzero(status == "labelled")) == sorted(campaign.labelled["index"])
    assert list(np.flatnonzero(status == "skipped")) == list(campaign.skipped["index"])
    assert list(np.flatnonzero(status == "next")) == [campaign.suggest().index]
    mu, sigma = campaign.predict()
    best = campaign.labelled["energy"].min()
    assert np.allclose(props["μ"]["values"], 1000 * (mu - best), atol=1e-3)
    assert np.allclose(props["σ"]["values"], 1000 * sigma, atol=1e-3)
    data = json.loads(views.show_pool(pool, campaign).value)
    assert data["settings"]["map"]["x"] == {"property": "μ"}
    assert data["settings"]["map"]["symbol"] == "status"
    assert data["settings"]["map"]["color"] == {"property": "unrelaxed energy"}
    data = json.loads(views.show_pool(pool, campaign, color="status").value)
    assert data["settings"]["map"]["color"] == {"property": "status", "palette": "tab10"}
    with pytest.raises(views.ViewError, match="another pool"):
        views.pool_map_properties(pool.subset(range(10)), campaign)


# --------------------------------------------------------------------- the app's view
def test_candidate_view_updates_in_place(pool):
    box = views.CandidateView(pool)
    assert box.children == () and repr(box) == "<CandidateView of pool 'li6ps5cl': nothing yet>"
    box.show(3)
    first = box.children[0]
    assert "c1-000003" in repr(first)
    box.show("c1-000003")  # the same candidate: nothing rebuilt
    assert box.children[0] is first
    box.show("c2-000355")
    assert len(box.children) == 1 and "c2-000355" in repr(box.children[0])
    assert first.comm is None  # the old view was closed, so the page lets it go
    assert box.index == pool.ids.index("c2-000355")
    with pytest.raises(views.ViewError, match="No candidate"):
        box.show("c2-9")
    shown = box.children[0]
    box.clear()
    assert box.children == () and box.index is None and shown.comm is None
    tall = views.CandidateView(pool, height="320px")
    tall.show(0)
    assert tall.children[0].layout.height == "320px"
    assert "almat-fit" in tall.children[0]._dom_classes  # FIT_CSS: the viewer fills the 320 px


# --------------------------------------------------------------------- saved notebooks
def test_saved_notebooks_keep_a_line_not_chemiscope(pool):
    """scripts/make_notebooks.py stores each view as a line to run its cell, not 3 MB of JavaScript."""
    import ipywidgets
    import nbformat
    from notebook_script import load_make_notebooks

    make_notebooks = load_make_notebooks()
    view, other = views.show_ordering(pool, 0), ipywidgets.HTML("kept")
    state = {w.model_id: {"model_name": w._model_name, "state": w.get_state()} for w in (view, other)}
    assert len(state[view.model_id]["state"]["_esm"]) > 3_000_000
    nb = nbformat.v4.new_notebook(metadata={"widgets": {make_notebooks.WIDGET_STATE: {
        "state": state}}})
    assert make_notebooks.shrink_views(nb) == 1
    state = nb.metadata["widgets"][make_notebooks.WIDGET_STATE]["state"]
    saved = state[view.model_id]["state"]
    assert saved["_esm"] == make_notebooks.SAVED_VIEW_ESM and saved["value"] == ""
    assert saved["mode"] == "structure"  # the rest of the view's state is as it was
    assert state[other.model_id]["state"]["value"] == "kept"
    assert len(json.dumps(state)) < 10_000
