"""Tests of almat.plots: what is drawn is checked against facts derived by hand.

Facts used (Li6PS5Cl, F-43m): the 48h sites come in pairs 1.8 Å apart, 24
pairs per conventional cell, so 6 pairs (12 sites) per primitive cell; each
primitive cell holds one cage of 12 sites around a 4d S2- ion. At occupancy
1/2 an ordering of one primitive cell has 6 Li and 6 vacancies.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from almat.enumeration import enumerate_table  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from almat.plots import (  # noqa: E402
    LI_COLOUR,
    MIN_FONT_PT,
    SHORT_COLOUR,
    STRATEGY_STYLES,
    PlotInputError,
    plot_best_so_far,
    plot_parity,
    plot_strategy_curves,
    plot_structure,
)
from almat.pool_build import make_pool  # noqa: E402
from almat.structures import load_parent, set_occupancy  # noqa: E402


@pytest.fixture(scope="module")
def pool():
    table = enumerate_table(set_occupancy(load_parent(), 0.5), 1)
    return make_pool(table, np.zeros(len(table)), name="size1")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _markers(ax):
    """(filled Li markers, open vacancy markers) drawn in the Li colour."""
    li_rgba = np.array(to_rgba(LI_COLOUR))
    filled = hollow = 0
    for coll in ax.collections:
        edges = coll.get_edgecolor()
        if len(edges) == 0 or not np.allclose(edges[0], li_rgba):
            continue
        faces = coll.get_facecolor()
        if np.allclose(faces[0], li_rgba):
            filled += len(coll.get_offsets())
        else:
            hollow += len(coll.get_offsets())
    return filled, hollow


def _pair_lines(ax):
    """(all pair lines, red Li-Li lines)."""
    lines = [ln for ln in ax.lines if len(ln.get_xdata()) == 2]
    red = [ln for ln in lines if np.allclose(to_rgba(ln.get_color()), to_rgba(SHORT_COLOUR))]
    return len(lines), len(red)


def test_structure_tells_li_from_vacancies(pool):
    ax = plot_structure(pool, index=0)
    assert _markers(ax) == (6, 6)
    n_pairs, _ = _pair_lines(ax)
    assert n_pairs == 6
    assert "1 cage" in ax.get_title()
    assert ax.get_xlabel().startswith("x (Å)") and ax.get_ylabel() == "y (Å)"


def test_structure_marks_li_on_both_sites_of_a_pair(pool):
    # pool.reference["min_li_li"] comes from pymatgen's neighbour list, not from the plot code.
    d = pool.reference["min_li_li"].to_numpy()
    short, far = int(np.argmin(d)), int(np.argmax(d))
    assert d[short] < 2.0 < d[far]
    assert _pair_lines(plot_structure(pool.atoms(short)))[1] >= 1
    assert _pair_lines(plot_structure(pool.atoms(far)))[1] == 0


@pytest.mark.slow
def test_structure_red_lines_count_doubly_filled_pairs(pool):
    # The six 48h pairs are found in the parent with pymatgen's periodic distances; a
    # pair is doubly filled when both its labels are 0 (Li). All 48 orderings (~5 s).
    parent = pool.orderings.parent
    sites = pool.orderings.sites
    frac = parent.frac_coords[sites]
    dist = parent.lattice.get_all_distances(frac, frac)
    pairs = [(a, b) for a in range(12) for b in range(a + 1, 12) if dist[a, b] < 2.0]
    assert len(pairs) == 6
    fig, ax = plt.subplots()
    counts = []
    for i in range(len(pool)):
        row = pool.orderings.row(i)
        both = sum(row[a] == 0 and row[b] == 0 for a, b in pairs)
        ax.clear()
        assert _pair_lines(plot_structure(pool, ax, index=i))[1] == both
        counts.append(both)
    assert 0 in counts and max(counts) >= 2  # both cases occur among the 48


def test_structure_two_cages_side_by_side(pool):
    atoms = pool.atoms(0).repeat((2, 1, 1))
    ax = plot_structure(atoms)
    assert _markers(ax) == (12, 12)
    assert _pair_lines(ax)[0] == 12
    assert "2 cages" in ax.get_title()


def test_structure_on_given_3d_axes(pool):
    fig = plt.figure()
    ax3 = fig.add_subplot(projection="3d")
    assert plot_structure(pool.atoms(3), ax3) is ax3
    assert ax3.get_zlabel() == "z (Å)"
    assert _markers(ax3) == (6, 6)


def test_structure_from_pymatgen_shows_only_li(pool):
    ax = plot_structure(pool.structure(0))
    assert _markers(ax) == (6, 0)


def test_structure_errors(pool):
    with pytest.raises(PlotInputError, match="index"):
        plot_structure(pool)
    with pytest.raises(PlotInputError, match="disordered"):
        plot_structure(set_occupancy(load_parent(), 0.5))
    with pytest.raises(PlotInputError, match="draws"):
        plot_structure([1, 2, 3])


def test_best_so_far_is_the_running_minimum():
    ax = plot_best_so_far([-4.0, -4.1, -4.05, -4.2], reference_min=-4.25)
    x, y = ax.lines[0].get_data()
    assert list(x) == [1, 2, 3, 4]
    assert np.allclose(y, [-4.0, -4.1, -4.1, -4.2])
    assert any(np.allclose(ln.get_ydata(), -4.25) for ln in ax.lines[1:])
    assert "0.0500 eV/atom above" in ax.get_title()  # best -4.2 is 50 meV/atom above -4.25
    assert ax.get_ylabel() == "best energy (eV/atom)"


def test_best_so_far_from_history_skips_unlabelled_rows():
    history = pd.DataFrame({"energy": [-4.0, np.nan, -4.3, -4.1]})
    x, y = plot_best_so_far(history).lines[0].get_data()
    assert list(x) == [1, 2, 3]
    assert np.allclose(y, [-4.0, -4.3, -4.3])
    with pytest.raises(PlotInputError, match="energy"):
        plot_best_so_far(pd.DataFrame({"label": [1.0]}))  # the column's name before format 5


def test_best_so_far_without_labels():
    ax = plot_best_so_far([], reference_min=-4.25)
    assert any("no labels yet" in t.get_text() for t in ax.texts)
    # no frame, ticks or pool-minimum line that would cross the message
    assert not ax.axison and len(ax.lines) == 0


def test_best_so_far_gap_is_never_negative_zero():
    # -4.25 - 1e-10 is "below" by a rounding error only: 0.0, not -0.0.
    ax = plot_best_so_far([-4.25 - 1e-10], reference_min=-4.25)
    assert "\n0.0000 eV/atom above the pool minimum" in ax.get_title()
    ax = plot_best_so_far([-4.26], reference_min=-4.25)  # a label below the pool's minimum
    assert "0.0100 eV/atom below the pool minimum" in ax.get_title()


def test_a_title_speaks_the_unit_of_its_axes():
    for ax in (plot_best_so_far([-4.0, -4.1], reference_min=-4.2),
               plot_parity([-4.0, -4.1], [-4.0, -4.05])):
        assert "eV/atom" in ax.get_ylabel() and "meV" not in ax.get_title(), ax.get_title()


def visible_texts(fig) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_every_text_is_large_enough_for_a_projector(pool):
    df = pd.DataFrame([(s, seed, n, float(n)) for s in ("random", "greedy") for seed in range(2)
                       for n in (1, 2, 3)], columns=["strategy", "seed", "n_labels", "regret_meV"])
    axes = [plot_structure(pool, index=0), plot_best_so_far([-4.0, -4.1], reference_min=-4.2),
            plot_best_so_far([]), plot_parity([-4.0, -4.1], [-4.0, -4.05], labelled=[True, False]),
            plot_parity([], []), plot_strategy_curves(df)]
    for ax in axes:
        ax.figure.canvas.draw()  # tick labels exist only once drawn
        small = [(t.get_text(), t.get_fontsize()) for t in visible_texts(ax.figure)
                 if t.get_fontsize() < MIN_FONT_PT]
        assert not small, small


def test_every_text_check_can_fail():
    ax = plot_best_so_far([-4.0, -4.1])
    ax.set_xlabel("labels", fontsize=8)
    assert any(t.get_fontsize() < MIN_FONT_PT for t in visible_texts(ax.figure))


def test_parity_mae_in_title_and_identity_line():
    # |errors| = 1, 0, 2 meV/atom -> MAE 0.0010 eV/atom, in the axes' unit; the NaN pair is left out.
    ax = plot_parity([-4.000, -4.001, -4.002, np.nan], [-3.999, -4.001, -4.000, -4.0],
                     y_std=[0.001, 0.001, 0.001, 0.001])
    assert ax.get_title() == "MAE = 0.0010 eV/atom (n = 3)"
    diag = [ln for ln in ax.lines if ln.get_label() == "y = x"][0]
    assert np.allclose(diag.get_xdata(), diag.get_ydata())
    assert "eV/atom" in ax.get_xlabel() and "eV/atom" in ax.get_ylabel()


def test_parity_errors():
    with pytest.raises(PlotInputError, match="as many"):
        plot_parity([1.0, 2.0], [1.0])
    with pytest.raises(PlotInputError, match="y_std"):
        plot_parity([1.0, 2.0], [1.0, 2.0], y_std=[0.1])
    ax = plot_parity([np.nan], [1.0])
    assert any("no predictions yet" in t.get_text() for t in ax.texts)
    assert not ax.axison and len(ax.lines) == 0  # no meaningless 0-1 axes or y = x line


def test_strategy_curves_median_per_strategy():
    rows = [("random", s, n, v) for s, vals in enumerate([[30, 20], [10, 10], [20, 0]])
            for n, v in zip((1, 2), vals)]
    rows += [("lcb", s, n, v) for s, vals in enumerate([[5, 0], [3, 0]]) for n, v in zip((1, 2), vals)]
    df = pd.DataFrame(rows, columns=["strategy", "seed", "n_labels", "regret_meV"])
    ax = plot_strategy_curves(df)
    medians = {ln.get_label(): ln.get_ydata() for ln in ax.lines}
    assert np.allclose(medians["random"], [20, 10])  # medians of (30, 10, 20) and (20, 10, 0)
    assert np.allclose(medians["lcb"], [4, 0])
    assert ax.get_ylabel() == "best found − pool minimum (meV/atom)"
    assert "3 runs" in ax.get_title()


def test_strategy_curves_missing_column():
    with pytest.raises(PlotInputError, match="n_labels"):
        plot_strategy_curves(pd.DataFrame({"strategy": ["a"], "regret_meV": [1.0]}))


def test_parity_tells_labelled_points_apart():
    ax = plot_parity([-4.0, -4.1, -4.2], [-4.0, -4.1, -4.1], labelled=[True, False, False])
    by_label = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    assert by_label["labelled"] == 1 and by_label["not labelled"] == 2
    with pytest.raises(PlotInputError, match="labelled"):
        plot_parity([1.0, 2.0], [1.0, 2.0], labelled=[True])


def _rendered(fig) -> np.ndarray:
    """The figure as an RGB array of floats in [0, 1]."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0


def _pixels_of(image: np.ndarray, colour: str, tol: float = 0.06) -> int:
    return int((np.abs(image - np.array(to_rgba(colour)[:3])).max(axis=2) < tol).sum())


def test_strategies_have_distinct_colours_styles_and_markers():
    colours, styles, markers = zip(*STRATEGY_STYLES.values())
    assert len(set(colours)) == len(set(map(str, styles))) == len(set(markers)) == len(STRATEGY_STYLES)
    rows = [(s, 0, n, 10.0 - n) for s in STRATEGY_STYLES for n in range(1, 11)]
    ax = plot_strategy_curves(pd.DataFrame(rows, columns=["strategy", "seed", "n_labels", "regret_meV"]))
    medians = {ln.get_label(): ln for ln in ax.lines if not ln.get_label().startswith("_")}
    for name, (colour, _, marker) in STRATEGY_STYLES.items():
        assert to_rgba(medians[name].get_color()) == to_rgba(colour)
        assert medians[name].get_marker() == marker


def test_greedy_stays_visible_under_identical_ei_and_lcb_curves():
    # The three strategies give exactly the same curve; greedy is drawn first.
    rows = [(s, seed, n, 20.0 / n + seed) for s in ("greedy", "ei", "lcb") for seed in range(3)
            for n in range(1, 21)]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    plot_strategy_curves(pd.DataFrame(rows, columns=["strategy", "seed", "n_labels", "regret_meV"]), ax)
    legend = ax.get_legend()
    legend.remove()  # count only the curves' own pixels
    image = _rendered(fig)
    for name in ("greedy", "ei", "lcb"):
        assert _pixels_of(image, STRATEGY_STYLES[name][0]) > 200, name  # 0 when hidden


def test_overlapping_bands_stay_light():
    # All five strategies with the same wide band: where the bands overlap, the tint must stay
    # pale (no brown from mixing the colours), so that the median lines stand out.
    rows = [(s, seed, n, 10.0 * seed) for s in STRATEGY_STYLES for seed in range(5)
            for n in range(1, 11)]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=100)
    plot_strategy_curves(pd.DataFrame(rows, columns=["strategy", "seed", "n_labels", "regret_meV"]), ax)
    ax.get_legend().remove()
    image = _rendered(fig)
    # a point inside both bands (between the quartiles 10 and 30), away from every line
    x, y = ax.transData.transform((5.5, 15.0))
    pixel = image[image.shape[0] - int(round(y)), int(round(x))]
    assert pixel.min() > 0.7, pixel  # alpha 0.2 fills, as before, gave 0.46
