"""Headless tests of the labeling app: click, type, and check the labels file on disk.

Every test that presses a button or types an entry asserts on the saved JSON
Lines file, not only on the widget, so an unwired button or a label that
never reached the disk fails here.
"""

import html
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from almat.campaign import Campaign  # noqa: E402
from almat.enumeration import enumerate_table  # noqa: E402
from almat.oracles import TableOracle  # noqa: E402
from almat.pool import make_pool  # noqa: E402
from almat.structures import load_parent, set_occupancy  # noqa: E402
from almat.widget import LabelingApp, Outcome  # noqa: E402

BUDGET = 10


@pytest.fixture(scope="module")
def table():
    return enumerate_table(set_occupancy(load_parent(), 0.5), 1)


@pytest.fixture(scope="module")
def pool(table):
    # A toy energy table written out here, independent of the code under test:
    # -4.10 eV/atom, +20 meV/atom for a doubly filled 48h pair, plus a small
    # spread so that the candidates differ.
    base = make_pool(table, name="size1")
    short = base.reference["min_li_li"].to_numpy() < 2.0
    energies = -4.10 + 0.020 * short + 0.0005 * (np.arange(len(table)) % 7)
    return make_pool(table, energies, name="size1")


def new_app(pool, path, budget=BUDGET, **kwargs):
    campaign = Campaign(pool, TableOracle(), strategy="lcb", seed=0, ledger_path=path,
                        n_initial=2, **kwargs)
    return LabelingApp(campaign, budget=budget)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "labels.jsonl"


@pytest.fixture
def app(pool, path):
    return new_app(pool, path)


def saved(path):
    """The events in the labels file (header left out)."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert lines[0]["type"] == "header"
    return lines[1:]


def shown_id(app):
    """The candidate id the app shows as the next query."""
    html = app.query_html.value
    start = html.index("<code>") + len("<code>")
    return html[start:html.index("</code>", start)]


def last_message(app):
    return app.messages.outputs[-1]["text"].strip()


def last_is_error(app):
    return app.messages.outputs[-1]["name"] == "stderr"


def assert_click_records_one_line(app, path):
    """Click "Compute" and check that exactly one label of the shown candidate reached the file."""
    before = saved(path)
    shown = shown_id(app)
    app.compute_button.click()
    after = saved(path)
    assert len(after) == len(before) + 1, "the compute button recorded nothing"
    event = after[-1]
    assert event["type"] == "label" and event["id"] == shown
    return event


# ---------------------------------------------------------------- buttons
def test_compute_button_records_the_shown_candidate(app, path, pool):
    assert saved(path) == []
    event = assert_click_records_one_line(app, path)
    # the value is the toy table's, looked up here by id
    assert event["label"] == pytest.approx(pool.reference.loc[event["id"], "energy_per_atom"])
    assert event["labelled_by"] == "table"
    assert app.status.value.startswith("<span>labelled 1 / 10")
    assert app.progress.value == 1 and app.progress.max == BUDGET
    assert event["id"] in last_message(app) and not last_is_error(app)
    assert shown_id(app) != event["id"]  # the app moved on to the next query


def test_an_unwired_compute_button_fails_the_click_test(app, path):
    app.compute_button._click_handlers.callbacks.clear()
    with pytest.raises(AssertionError, match="recorded nothing"):
        assert_click_records_one_line(app, path)


def test_submit_button_records_the_typed_value(app, path):
    shown = shown_id(app)
    app.value_text.value = " -4.0512 "
    app.submit_button.click()
    (event,) = saved(path)
    assert event["type"] == "label" and event["id"] == shown
    assert event["label"] == -4.0512 and event["labelled_by"] == "human"
    assert app.value_text.value == ""
    assert "-4.0512 eV/atom" in last_message(app)
    assert "labelled 1 / 10" in app.status.value


@pytest.mark.parametrize("entry, why", [
    ("abc", "not a number"),
    ("", "No value"),
    ("   ", "No value"),
    ("nan", "not a finite number"),
    ("inf", "not a finite number"),
    ("-inf", "not a finite number"),
    ("1e9", "far outside"),
    ("-4105", "far outside"),  # meV typed instead of eV
])
def test_bad_entries_are_refused_and_nothing_is_saved(app, path, entry, why):
    app.compute_button.click()
    before = path.read_bytes()
    shown, status = shown_id(app), app.status.value
    app.value_text.value = entry
    app.submit_button.click()
    assert path.read_bytes() == before
    assert last_is_error(app) and why in last_message(app)
    assert shown_id(app) == shown and app.status.value == status
    assert app.value_text.value == entry  # left for the learner to correct
    outcome = app.submit(entry)  # the method refuses the same way
    assert isinstance(outcome, Outcome) and not outcome and why in outcome.message
    assert path.read_bytes() == before


def test_skip_button_records_the_reason(app, path):
    shown = shown_id(app)
    app.skip_reason.value = "SCF did not converge"
    app.skip_button.click()
    (event,) = saved(path)
    assert event["type"] == "skip" and event["id"] == shown
    assert event["reason"] == "SCF did not converge"
    assert "skipped 1" in app.status.value and "labelled 0 / 10" in app.status.value
    assert shown_id(app) != shown


def test_skip_without_a_reason_is_refused(app, path):
    before = path.read_bytes()
    app.skip_button.click()
    assert path.read_bytes() == before
    assert last_is_error(app) and "reason" in last_message(app)


def test_undo_button_appends_an_undo_and_keeps_the_label_line(app, path):
    first = assert_click_records_one_line(app, path)
    app.undo_button.click()
    events = saved(path)
    assert [e["type"] for e in events] == ["label", "undo"]
    assert events[0] == first  # nothing erased or rewritten
    assert events[1]["undoes"] == first["step"] and events[1]["id"] == first["id"]
    assert "labelled 0 / 10" in app.status.value and "undone 1" in app.status.value
    assert "taken back" in last_message(app)


def test_undo_with_nothing_to_undo_is_refused(app, path):
    before = path.read_bytes()
    assert app.undo_button.disabled
    app.undo_button.click()  # a disabled button still runs its handler headlessly
    assert path.read_bytes() == before
    assert last_is_error(app) and "nothing to undo" in last_message(app)


def test_strategy_dropdown_changes_the_next_pick(app, path):
    app.compute_button.click()
    app.compute_button.click()  # the two random initial picks (n_initial=2)
    assert set(app.strategy_select.options) == {"random", "uncertainty", "greedy", "lcb", "ei"}
    before = saved(path)
    app.strategy_select.value = "greedy"
    # the choice is recorded (a resumed campaign goes on with it), but labels nothing
    assert saved(path) == before + [dict(saved(path)[-1], type="strategy", strategy="greedy")]
    assert app.campaign.strategy == "greedy" and "greedy" in app.query_html.value
    event = assert_click_records_one_line(app, path)
    assert event["strategy"] == "greedy"


def test_set_strategy_method_and_unknown_name(app, path):
    outcome = app.set_strategy("uncertainty")
    assert outcome and app.strategy_select.value == "uncertainty"
    bad = app.set_strategy("nonsense")
    assert not bad and last_is_error(app) and "nonsense" in bad.message
    assert app.campaign.strategy == "uncertainty" and app.strategy_select.value == "uncertainty"
    assert [(e["type"], e["strategy"]) for e in saved(path)] == [("strategy", "uncertainty")]


@pytest.mark.slow
def test_methods_mirror_the_buttons(app, path):
    assert app.compute().ok
    assert app.submit("-4.07").ok
    assert app.skip("too large for my laptop").ok
    assert app.undo().ok
    types = [e["type"] for e in saved(path)]
    assert types == ["label", "label", "skip", "undo"]
    assert app.counter_text() == "labelled 2 / 10 · skipped 0 · undone 1"


def test_budget_reached_stops_labelling(pool, path):
    app = new_app(pool, path, budget=2)
    app.compute_button.click()
    app.compute_button.click()
    assert len(saved(path)) == 2 and app.compute_button.disabled and app.submit_button.disabled
    before = path.read_bytes()
    app.compute_button.click()
    assert not app.submit("-4.1").ok
    assert path.read_bytes() == before
    assert "budget" in last_message(app)
    app.budget = 3
    assert not app.compute_button.disabled
    assert_click_records_one_line(app, path)


# ---------------------------------------------------------------- restart, display, errors
@pytest.mark.slow
def test_kernel_restart_shows_the_same_state(pool, path):
    app = new_app(pool, path)
    app.compute()
    app.submit("-4.0801")
    app.skip("no time")
    app.compute()
    app.undo()
    state = (app.counter_text(), app.status.value, shown_id(app), app.query_html.value)
    del app
    again = new_app(pool, path)  # a new kernel: new Campaign and new app from the file
    assert (again.counter_text(), again.status.value, shown_id(again), again.query_html.value) == state
    assert again.counter_text() == "labelled 2 / 10 · skipped 1 · undone 1"
    assert_click_records_one_line(again, path)


def test_pictures_are_drawn_and_follow_the_query(app):
    def png(output):
        (out,) = output.outputs
        return out["data"]["image/png"]

    structure, plots = png(app.structure_output), png(app.plot_output)
    app.compute()
    assert png(app.structure_output) != structure and png(app.plot_output) != plots


def test_li_li_warning(pool):
    d = pool.reference["min_li_li"].to_numpy()
    short = LabelingApp(Campaign(pool.subset(np.flatnonzero(d < 2.0)), TableOracle()))
    assert "Li on both sites of a 1.8 Å 48h pair" in short.lili_html.value
    assert "almat-warning" in short.lili_html.value
    far = LabelingApp(Campaign(pool.subset(np.flatnonzero(d >= 2.0)), TableOracle()))
    assert "shortest Li–Li 2.33 Å" in far.lili_html.value  # 2.3315 Å from pymatgen, 2 decimals
    assert "48h pair" not in far.lili_html.value


def test_query_shows_mu_sigma_cell_size_and_reason(app):
    assert "cell size 1 (13 atoms)" in app.query_html.value  # Li6PS5Cl: 6 + 1 + 5 + 1
    q = app.campaign.suggest()
    assert q.strategy == "initial" and html.escape(q.reason) in app.query_html.value
    assert "not yet" in app.query_html.value  # no μ ± σ before the surrogate is fitted
    app.compute()
    app.compute()
    q = app.campaign.suggest()
    assert q.strategy == "lcb" and html.escape(q.reason) in app.query_html.value
    assert f"{q.mu:.4f} ± {q.sigma:.4f} eV/atom" in app.query_html.value


def test_display_delegates_to_the_root_box(app):
    bundle = app._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == app.view.model_id
    classes = {c for w in (app.compute_button, app.submit_button, app.value_text, app.undo_button,
                           app.skip_button, app.status, app.messages) for c in w._dom_classes}
    assert {"almat-compute", "almat-submit", "almat-value", "almat-undo", "almat-skip",
            "almat-counter", "almat-messages"} <= classes


def test_a_failing_display_still_saves_the_label_and_says_so(app, path, monkeypatch):
    def broken():
        raise RuntimeError("plotting exploded")

    monkeypatch.setattr(app, "_update_plots", broken)
    assert_click_records_one_line(app, path)
    assert last_is_error(app) and "saved" in last_message(app) and "plotting exploded" in last_message(app)


def test_an_oracle_error_is_shown_and_nothing_saved(pool, path):
    class BrokenOracle:
        name = "broken"

        def label(self, pool, index):
            raise RuntimeError("the cluster is down")

    app = LabelingApp(Campaign(pool, BrokenOracle(), ledger_path=path, n_initial=2))
    before = path.read_bytes()
    app.compute_button.click()
    assert path.read_bytes() == before
    assert last_is_error(app) and "the cluster is down" in last_message(app)
    assert not app.compute_button.disabled and app.compute_button.description == "Compute with broken"


@pytest.mark.slow
def test_compute_with_chgnet(pool, path):
    from almat.scoring import load_chgnet

    app = LabelingApp(Campaign(pool, ledger_path=path, n_initial=2))  # CHGNetOracle by default
    assert app.compute_button.description == "Compute with CHGNet"
    event = assert_click_records_one_line(app, path)
    expected = load_chgnet().predict_structure(pool.structure(event["index"]))["e"]
    assert event["label"] == pytest.approx(float(expected), abs=1e-5)
    assert event["labelled_by"] == "chgnet"


def test_pool_without_reference_energies(table, path):
    pool = make_pool(table, name="unknown")  # energies NaN: the learner is the only oracle
    app = LabelingApp(Campaign(pool, TableOracle(), ledger_path=path, n_initial=2), budget=5)
    app.compute_button.click()  # the table has no value: refused, recorded as a skip
    (event,) = saved(path)
    assert event["type"] == "skip" and "no finite energy" in event["reason"]
    for text in ("-4.08", "-4.09", "-4.07"):
        app.value_text.value = text
        app.submit_button.click()
    assert [e["label"] for e in saved(path)[1:]] == [-4.08, -4.09, -4.07]
    assert app.plot_output.outputs and "labelled 3 / 5" in app.status.value
