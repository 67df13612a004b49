"""Headless tests of the labeling app: click, type, and check the labels file on disk.

Every test that presses a button or types an entry asserts on the saved JSON
Lines file, not only on the widget, so an unwired button or a label that
never reached the disk fails here.
"""

import html
import json
import re
import threading
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from almat.campaign import Campaign  # noqa: E402
from almat.ledger import CampaignError  # noqa: E402
from almat.enumeration import enumerate_table  # noqa: E402
from almat.oracles import TableOracle  # noqa: E402
from almat.pool_build import make_pool  # noqa: E402
from almat.structures import load_parent, set_occupancy  # noqa: E402
from almat.plots import MIN_FONT_PT  # noqa: E402
from almat.oracles import RelaxedCHGNetOracle  # noqa: E402
from almat.widget import DPI, PLACEHOLDER, RESTART_HINT, LabelingApp, Outcome  # noqa: E402
from matplotlib.text import Text  # noqa: E402

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
    html = app.ui.query_html.value
    start = html.index("<code>") + len("<code>")
    return html[start:html.index("</code>", start)]


def last_message(app):
    return app.ui.message_texts()[-1]


def last_is_error(app):
    return app.ui.last_level() == "error"


def assert_click_records_one_line(app, path):
    """Click "Compute" and check that exactly one label of the shown candidate reached the file."""
    before = saved(path)
    shown = shown_id(app)
    app.ui.compute_button.click()
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
    assert event["energy"] == pytest.approx(pool.reference.loc[event["id"], "energy_per_atom"])
    assert event["labelled_by"] == "table"
    assert app.ui.status.value.startswith("<span>labelled 1 / 10")
    assert app.ui.progress.value == 1 and app.ui.progress.max == BUDGET
    assert event["id"] in last_message(app) and not last_is_error(app)
    assert shown_id(app) != event["id"]  # the app moved on to the next query


def test_an_unwired_compute_button_fails_the_click_test(app, path):
    app.ui.compute_button._click_handlers.callbacks.clear()
    with pytest.raises(AssertionError, match="recorded nothing"):
        assert_click_records_one_line(app, path)


def test_submit_button_records_the_typed_value(app, path):
    shown = shown_id(app)
    app.ui.value_text.value = " -4.0512 "
    app.ui.submit_button.click()
    (event,) = saved(path)
    assert event["type"] == "label" and event["id"] == shown
    assert event["energy"] == -4.0512 and event["labelled_by"] == "human"
    assert app.ui.value_text.value == ""
    assert "-4.0512 eV/atom" in last_message(app)
    assert "labelled 1 / 10" in app.ui.status.value


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
    app.ui.compute_button.click()
    before = path.read_bytes()
    shown, status = shown_id(app), app.ui.status.value
    app.ui.value_text.value = entry
    app.ui.submit_button.click()
    assert path.read_bytes() == before
    assert last_is_error(app) and why in last_message(app)
    assert shown_id(app) == shown and app.ui.status.value == status
    assert app.ui.value_text.value == entry  # left for the learner to correct
    outcome = app.submit(entry)  # the method refuses the same way
    assert isinstance(outcome, Outcome) and not outcome and why in outcome.message
    assert path.read_bytes() == before


def test_skip_button_records_the_reason(app, path):
    shown = shown_id(app)
    app.ui.skip_reason.value = "SCF did not converge"
    app.ui.skip_button.click()
    (event,) = saved(path)
    assert event["type"] == "skip" and event["id"] == shown
    assert event["reason"] == "SCF did not converge"
    assert "skipped 1" in app.ui.status.value and "labelled 0 / 10" in app.ui.status.value
    assert shown_id(app) != shown


def test_skip_without_a_reason_is_refused(app, path):
    before = path.read_bytes()
    app.ui.skip_button.click()
    assert path.read_bytes() == before
    assert last_is_error(app) and "reason" in last_message(app)


def test_undo_button_appends_an_undo_and_keeps_the_label_line(app, path):
    first = assert_click_records_one_line(app, path)
    app.ui.undo_button.click()
    events = saved(path)
    assert [e["type"] for e in events] == ["label", "undo"]
    assert events[0] == first  # nothing erased or rewritten
    assert events[1]["undoes"] == first["step"] and events[1]["id"] == first["id"]
    assert "labelled 0 / 10" in app.ui.status.value and "undone 1" in app.ui.status.value
    assert "taken back" in last_message(app)


def test_undo_with_nothing_to_undo_is_refused(app, path):
    before = path.read_bytes()
    assert app.ui.undo_button.disabled
    app.ui.undo_button.click()  # a disabled button still runs its handler headlessly
    assert path.read_bytes() == before
    assert last_is_error(app) and "nothing to undo" in last_message(app)


def test_strategy_dropdown_changes_the_next_pick(app, path):
    app.ui.compute_button.click()
    app.ui.compute_button.click()  # the two random initial picks (n_initial=2)
    assert set(app.ui.strategy_select.options) == {"random", "uncertainty", "greedy", "lcb", "ei"}
    before = saved(path)
    app.ui.strategy_select.value = "greedy"
    # the choice is recorded (a resumed campaign goes on with it), but labels nothing
    assert saved(path) == before + [dict(saved(path)[-1], type="strategy", strategy="greedy")]
    assert app.campaign.strategy == "greedy" and "greedy" in app.ui.query_html.value
    event = assert_click_records_one_line(app, path)
    assert event["strategy"] == "greedy"


def test_set_strategy_method_and_unknown_name(app, path):
    outcome = app.set_strategy("uncertainty")
    assert outcome and app.ui.strategy_select.value == "uncertainty"
    bad = app.set_strategy("nonsense")
    assert not bad and last_is_error(app) and "nonsense" in bad.message
    assert app.campaign.strategy == "uncertainty" and app.ui.strategy_select.value == "uncertainty"
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
    app.ui.compute_button.click()
    app.ui.compute_button.click()
    assert len(saved(path)) == 2 and app.ui.compute_button.disabled and app.ui.submit_button.disabled
    before = path.read_bytes()
    app.ui.compute_button.click()
    assert not app.submit("-4.1").ok
    assert path.read_bytes() == before
    assert "budget of 2 labels is spent" in last_message(app)
    # say how to go on, not only grey the buttons
    for shown in (last_message(app), app.ui.query_html.value):
        assert "app.budget = 12" in shown and "new campaign" in shown
    app.budget = 3
    assert not app.ui.compute_button.disabled
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
    state = (app.counter_text(), app.ui.status.value, shown_id(app), app.ui.query_html.value)
    del app
    again = new_app(pool, path)  # a new kernel: new Campaign and new app from the file
    assert (again.counter_text(), again.ui.status.value, shown_id(again), again.ui.query_html.value) == state
    assert again.counter_text() == "labelled 2 / 10 · skipped 1 · undone 1"
    assert_click_records_one_line(again, path)


def test_pictures_are_drawn_with_alt_text_and_follow_the_query(app):
    def png(widget):
        (image,) = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', widget.value)
        return image

    structure, best, parity = png(app.ui.structure_image), png(app.ui.best_image), png(app.ui.parity_image)
    assert 'alt="Best energy found against the number of labels: best energy found"' in \
        app.ui.best_image.value
    app.compute()
    assert png(app.ui.structure_image) != structure and png(app.ui.best_image) != best
    assert "after 1 labels" in app.ui.best_image.value  # the alt text follows the plot
    app.compute()  # the surrogate is fitted from two labels on
    assert png(app.ui.parity_image) != parity and "MAE = " in app.ui.parity_image.value


def test_the_3d_view_shows_the_candidate_on_screen(pool, path):
    app = new_app(pool, path, budget=2)
    view = app.ui.structure_view
    assert view.index == app.shown.index and len(view.children) == 1
    assert app.shown.id in repr(view.children[0])  # "<3-D view of c1-000003: 6 Li, ...>"
    first = view.children[0]
    app.compute()
    assert view.index == app.shown.index and app.shown.id in repr(view.children[0])
    assert first.comm is None  # the box stayed, the view of the labelled candidate was closed
    app.compute()  # the budget is spent: nothing to show
    assert app.shown is None and view.children == () and view.index is None


def test_li_li_warning(pool):
    d = pool.reference["min_li_li"].to_numpy()
    short = LabelingApp(Campaign(pool.subset(np.flatnonzero(d < 2.0)), TableOracle()))
    assert "Li on both sites of a 1.8 Å 48h pair" in short.ui.lili_html.value
    assert "almat-warning" in short.ui.lili_html.value
    far = LabelingApp(Campaign(pool.subset(np.flatnonzero(d >= 2.0)), TableOracle()))
    assert "shortest Li–Li 2.33 Å" in far.ui.lili_html.value  # 2.3315 Å from pymatgen, 2 decimals
    assert "48h pair" not in far.ui.lili_html.value


def test_query_shows_mu_sigma_cell_size_and_reason(app):
    assert "cell size 1 (13 atoms)" in app.ui.query_html.value  # Li6PS5Cl: 6 + 1 + 5 + 1
    q = app.campaign.suggest()
    assert q.strategy == "initial" and html.escape(q.reason) in app.ui.query_html.value
    assert "not yet" in app.ui.query_html.value  # no μ ± σ before the surrogate is fitted
    app.compute()
    app.compute()
    q = app.campaign.suggest()
    assert q.strategy == "lcb" and html.escape(q.reason) in app.ui.query_html.value
    # μ and σ in one unit on their line, and the index the lesson's code looks up beside the id
    assert f"μ ± σ = {q.mu:.4f} ± {q.sigma:.4f} eV/atom" in app.ui.query_html.value
    assert "meV" not in app.ui.query_html.value
    assert f"<code>{q.id}</code></b> · index {q.index} in the pool" in app.ui.query_html.value


def test_display_delegates_to_the_root_box(app):
    bundle = app._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == app.view.model_id
    classes = {c for w in (app.ui.compute_button, app.ui.submit_button, app.ui.value_text, app.ui.undo_button,
                           app.ui.skip_button, app.ui.status, app.ui.messages) for c in w._dom_classes}
    assert {"almat-compute", "almat-submit", "almat-value", "almat-undo", "almat-skip",
            "almat-counter", "almat-messages"} <= classes


def test_saved_output_reads_well_without_a_kernel(app):
    """Untrusted notebooks and nbviewer show text/html or text/plain: a sentence, not widget reprs."""
    bundle = app._repr_mimebundle_()
    for mime in ("text/plain", "text/html"):
        text = html.unescape(re.sub(r"<[^>]+>", " ", bundle[mime]))
        assert "run this cell" in text and "If the buttons do nothing" in text, mime
        assert not text.lstrip().startswith(("VBox(", "HBox(", "Tab(")), mime


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stored_output_is_a_widget_repr(notebook):
    """A stored output that would show ``VBox(children=(HTML(value=...`` to a learner."""
    bad = []
    for number, cell in enumerate(json.loads(notebook.read_text())["cells"], start=1):
        for out in cell.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/plain", ""))
            if text.lstrip().startswith(("VBox(", "HBox(", "Tab(", "Output(")):
                bad.append(f"cell {number}: {text[:60]}")
    assert not bad, bad


def test_app_cell_of_notebook_06_stores_the_placeholder_and_the_restart_hint():
    notebook = next(p for p in NOTEBOOKS if p.name.startswith("06-"))
    outputs = [out for cell in json.loads(notebook.read_text())["cells"]
               for out in cell.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
               and "almat-placeholder" in "".join(out["data"].get("text/html", ""))]
    assert len(outputs) == 1, "notebook 06 should show one labeling app"
    text = "".join(outputs[0]["data"]["text/plain"])
    assert PLACEHOLDER in text and RESTART_HINT in text


@pytest.mark.parametrize("oracle, expected", [
    (TableOracle(), "Look up in table"),
    (RelaxedCHGNetOracle(cache=None), "Relax with CHGNet"),
    (type("Mine", (), {"name": "my-dft", "label": lambda self, pool, index: None})(), "Compute with my-dft"),
    (type("Says", (), {"name": "x", "action": "Ask Ada", "label": lambda self, pool, index: None})(),
     "Ask Ada"),
])
def test_compute_button_says_what_the_oracle_declares(pool, oracle, expected):
    app = LabelingApp(Campaign(pool, oracle, n_initial=2))
    assert app.ui.compute_button.description == expected


def test_a_new_oracle_in_another_cell_renames_the_button_on_the_next_redraw(app, path):
    app.campaign.oracle = RelaxedCHGNetOracle(cache=None)
    app.refresh()
    assert app.ui.compute_button.description == "Relax with CHGNet"


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
    app.ui.compute_button.click()
    assert path.read_bytes() == before
    assert last_is_error(app) and "the cluster is down" in last_message(app)
    assert not app.ui.compute_button.disabled and app.ui.compute_button.description == "Compute with broken"


@pytest.mark.slow
def test_compute_with_chgnet(pool, path):
    from almat.scoring import load_chgnet

    app = LabelingApp(Campaign(pool, ledger_path=path, n_initial=2))  # CHGNetOracle by default
    assert app.ui.compute_button.description == "Compute with CHGNet"
    event = assert_click_records_one_line(app, path)
    expected = load_chgnet().predict_structure(pool.structure(event["index"]))["e"]
    assert event["energy"] == pytest.approx(float(expected), abs=1e-5)
    assert event["labelled_by"] == "chgnet"


def test_pool_without_reference_energies(table, path):
    pool = make_pool(table, name="unknown")  # energies NaN: the learner is the only oracle
    app = LabelingApp(Campaign(pool, TableOracle(), ledger_path=path, n_initial=2), budget=5)
    app.ui.compute_button.click()  # the table has no value: refused, recorded as a skip
    (event,) = saved(path)
    assert event["type"] == "skip" and "no finite energy" in event["reason"]
    for text in ("-4.08", "-4.09", "-4.07"):
        app.ui.value_text.value = text
        app.ui.submit_button.click()
    assert [e["energy"] for e in saved(path)[1:]] == [-4.08, -4.09, -4.07]
    assert "<img" in app.ui.best_image.value and "labelled 3 / 5" in app.ui.status.value


# ---------------------------------------------------------------- keyboard, layout, dead ends
def press_enter(text_widget):
    """What the browser sends when Enter is pressed in an ipywidgets Text."""
    text_widget._handle_custom_msg({"event": "submit"}, [])


def test_enter_in_the_energy_box_submits(app, path):
    shown = shown_id(app)
    app.ui.value_text.value = "-4.0512"
    press_enter(app.ui.value_text)
    (event,) = saved(path)
    assert (event["id"], event["energy"], event["labelled_by"]) == (shown, -4.0512, "human")
    assert app.ui.value_text.value == ""


def test_enter_in_the_reason_box_skips(app, path):
    app.ui.skip_reason.value = "no time"
    press_enter(app.ui.skip_reason)
    (event,) = saved(path)
    assert event["type"] == "skip" and event["reason"] == "no time"


def test_other_messages_of_a_text_box_do_nothing(app, path):
    app.ui.value_text.value = "-4.0512"
    app.ui.value_text._handle_custom_msg({"event": "something else"}, [])
    assert saved(path) == []


def test_the_budget_has_one_owner_the_campaign(pool, path):
    campaign = Campaign(pool, TableOracle(), ledger_path=path, n_initial=2, budget=2)
    app = LabelingApp(campaign)
    app.compute()
    app.compute()
    assert not app.compute().ok
    app.budget = 4  # sets the campaign's: there is no other
    assert campaign.budget == 4 and app.compute().ok
    campaign.budget = 3  # lowered in another cell: the app reads it, it does not keep its own
    app.refresh()
    assert app.budget == 3 and "labelled 3 / 3" in app.ui.status.value and app.ui.compute_button.disabled
    assert LabelingApp(campaign, budget=8).budget == campaign.budget == 8


def test_no_budget_means_the_whole_pool_and_says_so(pool, path):
    app = LabelingApp(Campaign(pool, TableOracle(), ledger_path=path, n_initial=2))
    assert app.budget is None and app.ui.progress.max == len(pool)
    assert app.counter_text() == "labelled 0 (no budget) · skipped 0 · undone 0"


@pytest.mark.parametrize("budget", [0, -3, "5", 2.5, True, float("nan")])
def test_a_bad_budget_is_refused_in_one_line_and_nothing_changes(pool, path, budget):
    campaign = Campaign(pool, TableOracle(), ledger_path=path, n_initial=2, budget=7)
    with pytest.raises(CampaignError, match=r"^budget must be a whole number of labels, 1 or more, "
                                            r"or None for no limit; got .*\.$") as refused:
        LabelingApp(campaign, budget=budget)
    assert "\n" not in str(refused.value) and campaign.budget == 7
    app = LabelingApp(campaign)
    with pytest.raises(CampaignError, match="budget must be"):
        app.budget = budget
    assert app.budget == 7 and "labelled 0 / 7" in app.ui.status.value


def test_restart_hint_is_shown(app):
    hints = [w for w in app.view.children if "almat-restart-hint" in w._dom_classes]
    assert len(hints) == 1 and "run this cell again" in hints[0].value
    assert html.escape(RESTART_HINT) in hints[0].value


def test_messages_wrap_between_words_and_mark_errors(app):
    app.submit("abc")
    assert "word-break:normal" in app.ui.messages.value and "almat-error" in app.ui.messages.value
    assert "break-all" not in app.ui.messages.value
    app.skip("no time")
    assert app.ui.messages.value.count("almat-error") == 1 and not last_is_error(app)


def test_without_labels_the_plots_show_no_empty_axes(app):
    assert app.campaign.n_labels == 0
    for name in ("best", "parity"):
        (ax,) = app.figures[name].axes
        assert not ax.axison and len(ax.lines) == 0, name


def test_app_figures_have_projector_sized_text(app):
    app.compute()
    app.compute()
    app.compute()
    for name, fig in app.figures.items():
        fig.canvas.draw()
        width_px = fig.get_figwidth() * DPI  # the PNG is saved at the widget's DPI
        assert width_px <= 420, f"{name} is {width_px} px wide and would be scaled down"
        small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
                 if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT]
        assert not small, (name, small)


def test_best_so_far_title_never_shows_negative_zero(pool, path):
    app = new_app(pool, path)
    lowest = int(np.nanargmin(pool.energies))
    app.campaign.submit(float(pool.energies[lowest]) - 1e-12, index=lowest)
    app.refresh()
    title = app.figures["best"].axes[0].get_title()
    assert "0.0000 eV/atom above" in title and "-0.0" not in title


# ---------------------------------------------------------------- oracles that report progress
class SteppingOracle:
    """A fake relaxation: calls on_step(step, fmax) a few times, then answers from the table.

    It declares max_steps and target_fmax, and nothing else an oracle may declare.
    """

    name = "relaxer"
    max_steps = 50
    target_fmax = 0.05

    def __init__(self, app_probe=None):
        self.calls = []
        self.app = app_probe

    def label(self, pool, index, on_step=None):
        self.calls.append(on_step is not None)
        seen = []
        for step, fmax in enumerate([1.2, 0.31, 0.04], start=1):
            if on_step is not None:
                on_step(step, fmax)
                if self.app is not None:
                    ui = self.app.ui
                    seen.append((ui.work_line.layout.display, round(ui.work_progress.value, 3),
                                 ui.work_html.value,
                                 [b.disabled for b in (ui.compute_button, ui.submit_button,
                                                       ui.skip_button, ui.undo_button)]))
        self.seen = seen
        return TableOracle().label(pool, index)


def test_progress_is_the_force_against_its_target_on_a_log_scale(pool, path):
    oracle = SteppingOracle()
    campaign = Campaign(pool, oracle, ledger_path=path, n_initial=2)
    app = LabelingApp(campaign)
    oracle.app = app
    assert app.ui.work_line.layout.display == "none"
    app.submit("-4.1")  # something to undo: Undo is enabled before, disabled while it computes
    assert not app.ui.undo_button.disabled
    app.ui.compute_button.click()
    assert oracle.calls == [True]
    # log10(1.2/0.31) / log10(1.2/0.05) = 0.426, written out here; below the target: full
    assert [s[:2] for s in oracle.seen] == [("flex", 0.0), ("flex", 0.426), ("flex", 1.0)]
    assert oracle.seen[1][2] == "relaxing: step 2 of at most 50; max force 0.310 eV/Å, target 0.05 eV/Å"
    assert all(s[3] == [True, True, True, True] for s in oracle.seen), "a control stayed clickable"
    assert app.ui.work_line.layout.display == "none"  # hidden again once labelled
    assert not any(b.disabled for b in (app.ui.compute_button, app.ui.submit_button, app.ui.skip_button,
                                        app.ui.undo_button))
    assert app.ui.compute_button.description == "Compute with relaxer"
    assert [e["labelled_by"] for e in saved(path)] == ["human", "relaxer"]
    assert campaign.oracle.oracle is oracle  # adapted once, in the campaign


def test_without_a_force_target_the_bar_counts_steps(pool, path):
    class Counting(SteppingOracle):
        target_fmax = None

    oracle = Counting()
    app = LabelingApp(Campaign(pool, oracle, ledger_path=path, n_initial=2))
    oracle.app = app
    assert app.compute().ok
    assert [s[1] for s in oracle.seen] == [0.02, 0.04, 0.06]  # steps 1-3 of 50
    assert oracle.seen[0][2] == "relaxing: step 1 of at most 50; max force 1.200 eV/Å"


def test_controls_come_back_and_the_bar_goes_when_the_oracle_fails(pool, path):
    class Failing(SteppingOracle):
        def label(self, pool, index, on_step=None):
            on_step(1, 2.0)
            raise RuntimeError("did not converge")

    oracle = Failing()
    app = LabelingApp(Campaign(pool, oracle, ledger_path=path, n_initial=2))
    app.submit("-4.1")
    assert not app.compute().ok and "did not converge" in last_message(app)
    assert app.ui.work_line.layout.display == "none" and app.campaign.oracle.oracle is oracle
    assert not any(b.disabled for b in (app.ui.compute_button, app.ui.submit_button, app.ui.skip_button,
                                        app.ui.undo_button, app.ui.strategy_select))
    assert app.ui.compute_button.description == "Compute with relaxer"


def test_an_oracle_that_declares_no_steps_is_called_without_on_step(pool, path):
    class Plain:
        name = "plain"

        def label(self, pool, index):  # no on_step: it never promised progress
            return TableOracle().label(pool, index)

    app = LabelingApp(Campaign(pool, Plain(), ledger_path=path, n_initial=2))
    assert app.compute().ok and app.ui.work_line.layout.display == "none"
    assert saved(path)[0]["labelled_by"] == "plain"


def test_the_app_reads_what_an_oracle_declares_and_guesses_nothing():
    """No isinstance against oracle classes, no signature inspection: the oracle says it."""
    source = "".join(p.read_text() for p in (Path(__file__).parents[1] / "code/almat/widget").glob("*.py"))
    assert "inspect" not in source and "Oracle)" not in source and "reports_progress" not in source
    assert ".action" in source and ".max_steps" in source and ".target_fmax" in source


# ---------------------------------------------------------------- bound to the candidate on screen
def test_two_apps_on_one_campaign_never_label_a_candidate_not_shown(pool, path):
    """Issue 19's reproduction: compute() in the second app, submit() in the first."""
    campaign = Campaign(pool, TableOracle(), strategy="lcb", seed=0, ledger_path=path, n_initial=2)
    first, second = LabelingApp(campaign), LabelingApp(campaign)
    on_first = shown_id(first)
    assert second.compute().ok
    before = path.read_bytes()
    first.ui.value_text.value = "-4.10"
    outcome = first.submit()
    assert not outcome.ok and path.read_bytes() == before  # nothing recorded
    assert first.ui.value_text.value == ""  # typed for a candidate no longer shown: not offered again
    (labelled,) = saved(path)
    now = campaign.suggest()
    assert outcome.message == (f"The campaign moved on elsewhere (step 1 labelled {labelled['id']}); "
                               f"nothing was recorded; now showing {now.id} (index {now.index}).")
    assert shown_id(first) == now.id != on_first  # refreshed: it shows what it would label now
    assert first.submit("-4.10").ok  # and that is what it labels
    assert [(e["id"], e["labelled_by"]) for e in saved(path)] == [(labelled["id"], "table"),
                                                                  (now.id, "human")]


def test_a_step_in_another_cell_is_noticed_before_the_oracle_runs(pool, path):
    oracle = SteppingOracle()
    campaign = Campaign(pool, oracle, ledger_path=path, n_initial=2)
    app = LabelingApp(campaign)
    campaign.step()  # another cell
    assert oracle.calls == [False]
    assert not app.compute().ok and oracle.calls == [False]  # refused before relaxing anything
    assert "moved on elsewhere (step 1 labelled" in last_message(app) and len(saved(path)) == 1
    assert app.compute().ok and len(saved(path)) == 2


@pytest.mark.parametrize("action", ["skip", "undo"])
def test_skip_and_undo_are_bound_too(pool, path, action):
    campaign = Campaign(pool, TableOracle(), ledger_path=path, n_initial=2)
    first, second = LabelingApp(campaign), LabelingApp(campaign)
    first.submit("-4.1")
    assert not second.compute().ok  # second had not seen that label: refused, and redrawn
    assert second.compute().ok  # first has not seen this label: its Undo would take back second's
    before = path.read_bytes()
    outcome = first.skip("no time") if action == "skip" else first.undo()
    assert not outcome.ok and path.read_bytes() == before
    assert f"moved on elsewhere (step 2 labelled {saved(path)[1]['id']})" in outcome.message
    assert (first.skip("no time") if action == "skip" else first.undo()).ok  # now it has seen it


def test_a_campaign_made_again_from_the_file_leaves_the_old_app_unable_to_record(pool, path):
    app = new_app(pool, path)
    again = Campaign(pool, TableOracle(), strategy="lcb", seed=0, ledger_path=path, n_initial=2)
    again.step()  # e.g. the cell above re-run, and labelled there
    before = path.read_bytes()
    outcome = app.submit("-4.1")
    assert not outcome.ok and path.read_bytes() == before
    assert "changed since it was last read here" in outcome.message and "\n" not in outcome.message


def test_two_threads_submitting_at_once_keep_the_file_in_order(pool, tmp_path):
    """Jupyter runs one click at a time, but the API must not rely on it."""
    for trial in range(8):
        path = tmp_path / f"threads-{trial}.jsonl"
        app = new_app(pool, path)
        start = threading.Barrier(2)
        outcomes = []

        def submit(value):
            start.wait()
            outcomes.append(app.submit(value))

        threads = [threading.Thread(target=submit, args=(v,)) for v in ("-4.10", "-4.09")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = saved(path)  # a readable file: every line parses, one header
        assert [e["step"] for e in events] == list(range(1, len(events) + 1))
        assert len(events) == sum(o.ok for o in outcomes) >= 1
        assert len({e["id"] for e in events}) == len(events)  # never one candidate twice
        refused = [o.message for o in outcomes if not o.ok]
        assert all("moved on elsewhere" in m for m in refused), refused
        again = Campaign(pool, TableOracle(), strategy="lcb", seed=0, ledger_path=path, n_initial=2)
        assert again.n_labels == len(events)


# ---------------------------------------------------------------- implausible labels
def trained_app(pool, path):
    app = new_app(pool, path)
    app.compute()
    app.compute()  # μ and σ from here on
    return app


def test_a_label_many_sigma_from_mu_asks_for_a_second_submit(pool, path):
    app = trained_app(pool, path)
    q = app.shown
    assert np.isfinite(q.mu) and q.sigma > 0
    far = round(q.mu + 0.3, 4)  # the toy pool's energies spread over 23 meV/atom
    assert abs(far - q.mu) > 5 * q.sigma
    before = path.read_bytes()
    first = app.submit(str(far))
    assert not first.ok and path.read_bytes() == before  # not in the file unconfirmed
    assert first.message.startswith(f"Check {far:.4f} eV/atom: it is ")
    assert f"σ from the surrogate's μ ± σ = {q.mu:.4f} ± {q.sigma:.4f} eV/atom for {q.id}" in first.message
    assert "Press Submit again with the same value" in first.message
    assert app.ui.last_level() == "check" and "almat-check" in app.ui.messages.value
    assert app.shown == q and not last_is_error(app)
    second = app.submit(str(far))
    assert second.ok and saved(path)[-1]["energy"] == far and saved(path)[-1]["id"] == q.id


def test_another_value_or_another_candidate_asks_again(pool, path):
    app = trained_app(pool, path)
    q = app.shown
    assert not app.submit(str(q.mu + 0.3)).ok
    assert not app.submit(str(q.mu + 0.31)).ok  # a different value is checked on its own
    assert app.skip("not this one").ok
    assert not app.submit(str(app.shown.mu + 0.31)).ok  # a new candidate: asked again
    assert app.submit(f"{app.shown.mu:.4f}").ok  # a plausible value goes straight in
    assert [e["type"] for e in saved(path)] == ["label", "label", "skip", "label"]


def test_a_value_out_of_range_is_refused_not_offered_for_confirmation(pool, path):
    app = trained_app(pool, path)
    for _ in range(2):
        outcome = app.submit("-4105")  # meV typed for eV: refused each time, never "press again"
        assert not outcome.ok and outcome.message.startswith("LabelError: -4105 eV/atom is far outside")
    assert len(saved(path)) == 2


def test_before_the_surrogate_is_fitted_nothing_is_implausible(pool, path):
    app = new_app(pool, path)
    assert not np.isfinite(app.shown.mu)
    assert app.submit("-4.0").ok


# ---------------------------------------------------------------- id and index, resumed strategy
def test_what_the_app_shows_is_what_the_lessons_code_looks_up(pool, path):
    app = new_app(pool, path)
    q = app.shown
    assert f"{q.id}</code></b> · index {q.index}" in app.ui.query_html.value
    assert pool.ids[q.index] == q.id
    app.compute()
    last = app.campaign.labelled.iloc[-1]  # how episode 6 compares a label with the table
    assert last["id"] == q.id and pool.energies[last["index"]] == pytest.approx(last["energy"])


def test_a_resumed_strategy_change_is_said_in_the_app_not_warned(pool, path, capsys):
    new_app(pool, path).set_strategy("greedy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = new_app(pool, path)  # strategy="lcb" again, as the cell says
    note = app.campaign.note
    assert app.campaign.strategy == "greedy" and note.startswith("labels.jsonl was last labelled")
    assert app.ui.message_texts() == [note] and not last_is_error(app)
    assert str(path.parent) not in note and capsys.readouterr().out == note + "\n"
