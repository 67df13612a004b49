"""Figures for the lesson: an ordering, the search progress, parity and strategy curves.

Every function draws on a matplotlib ``Axes`` (a new one when ``ax`` is None)
and returns it, so figures compose with ``plt.subplots`` and work with the
non-interactive ``Agg`` backend (tests, CI, the widget). Energies come in
eV/atom, as everywhere in ``almat``. A title speaks the unit of its axes: one
plot, one unit (the strategy curves' regret axis is in meV/atom, and so is
everything written on it).

Colours are the Okabe–Ito palette, which stays distinguishable with the common
forms of colour blindness, and every strategy also has its own line style and
marker, so curves can be told apart in greyscale too. Text is at least
:data:`MIN_FONT_PT` points, readable on a projector.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter

from almat.errors import AlmatError
from almat.structures import MIN_LI_LI

#: Symbols of the disordered sublattice: an Li ion or a vacancy ("X", icet's convention).
LI, VACANCY = "Li", "X"
#: The Okabe–Ito palette (Okabe and Ito, "Color Universal Design", 2008), by name.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}
LI_COLOUR = OKABE_ITO["blue"]
SHORT_COLOUR = OKABE_ITO["vermillion"]
#: Colour, line style and marker of each strategy of :data:`almat.acquisition.STRATEGIES`.
STRATEGY_STYLES: dict[str, tuple[str, str | tuple, str]] = {
    "random": (OKABE_ITO["black"], ":", "o"),
    "uncertainty": (OKABE_ITO["sky blue"], "-.", "v"),
    "greedy": (OKABE_ITO["vermillion"], "-", "s"),
    "lcb": (OKABE_ITO["blue"], "--", "^"),
    "ei": (OKABE_ITO["bluish green"], (0, (6, 2, 1, 2)), "D"),
}
#: Styles for strategies without an entry in STRATEGY_STYLES, used in turn.
OTHER_STYLES = ((OKABE_ITO["orange"], (0, (3, 1, 1, 1, 1, 1)), "P"),
                (OKABE_ITO["reddish purple"], (0, (8, 3)), "X"))
#: Smallest font size (points) of any text in a figure; 10 pt at 72 dpi is 10 CSS px.
MIN_FONT_PT = 10
TITLE_PT = 12
#: Grey shades and marker sizes of the fixed framework.
FRAMEWORK = {"P": ("#4d4d4d", 30), "S": ("#a6a6a6", 18), "Cl": ("#7f7f7f", 24)}


def _readable(ax: Axes) -> None:
    """Set the axis labels and tick labels of ``ax`` to at least :data:`MIN_FONT_PT`."""
    ax.tick_params(labelsize=MIN_FONT_PT)
    for label in (ax.xaxis.label, ax.yaxis.label, getattr(ax, "zaxis", ax.xaxis).label):
        label.set_fontsize(max(label.get_fontsize(), MIN_FONT_PT + 1))


class PlotInputError(AlmatError, ValueError):
    """The data handed to a plotting function cannot be drawn."""


def _sites(obj, index: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Cell rows (Å), Cartesian positions (Å) and element symbols of a structure-like object."""
    if hasattr(obj, "atoms") and callable(obj.atoms):  # a Pool or an Orderings table
        if index is None:
            raise PlotInputError(
                f"plot_structure got a {type(obj).__name__}; say which candidate with index=i "
                "(e.g. plot_structure(pool, index=0))."
            )
        obj = obj.atoms(int(index))
    if hasattr(obj, "get_chemical_symbols"):  # ase Atoms
        return np.asarray(obj.cell[:]), np.asarray(obj.positions), list(obj.get_chemical_symbols())
    if hasattr(obj, "lattice") and hasattr(obj, "cart_coords"):  # pymatgen Structure
        if not obj.is_ordered:
            raise PlotInputError(
                "plot_structure needs an ordering, not the disordered parent: pick one with "
                "pool.atoms(i) or enumerate_table(...).atoms(i)."
            )
        symbols = [getattr(s.specie, "symbol", str(s.specie)) for s in obj]
        return np.asarray(obj.lattice.matrix), np.asarray(obj.cart_coords), symbols
    raise PlotInputError(
        f"plot_structure draws ase Atoms, a pymatgen Structure, or a pool with an index; "
        f"got {type(obj).__name__}."
    )


def _unwrap(cell: np.ndarray, pos: np.ndarray, link: float) -> tuple[np.ndarray, np.ndarray]:
    """Move sites by lattice vectors so that groups closer than ``link`` (Å) sit together.

    Sites are joined when a periodic image lies within ``link``; each connected
    group is walked breadth first from its lowest index using minimum-image
    vectors, then shifted as a whole so that its centroid lies inside the cell.

    Returns
    -------
    positions, group
        Unwrapped Cartesian positions (Å) and the group number of each site.
    """
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    n = len(pos)
    atoms = Atoms(["H"] * n, positions=pos, cell=cell, pbc=True)
    first, second, vec = neighbor_list("ijD", atoms, link)
    neighbours: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n)]
    for i, j, d in zip(first, second, vec):
        neighbours[i].append((j, d))
    out = np.zeros_like(pos)
    group = np.full(n, -1)
    inv = np.linalg.inv(cell)
    for root in range(n):
        if group[root] >= 0:
            continue
        g = group.max() + 1
        out[root], group[root] = pos[root], g
        queue = deque([root])
        while queue:
            i = queue.popleft()
            for j, d in neighbours[i]:
                if group[j] < 0:
                    out[j], group[j] = out[i] + d, g
                    queue.append(j)
        members = group == g
        out[members] -= np.floor(out[members].mean(axis=0) @ inv) @ cell
    return out, group


def _framework_images(cell: np.ndarray, pos: np.ndarray, anchors: np.ndarray,
                      shell: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Periodic images of ``pos`` within ``shell`` (Å) of an anchor.

    Returns the image positions, the index of the site each image comes from,
    and the index of the nearest anchor.
    """
    shifts = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) @ cell
    images = (pos[:, None, :] + shifts[None, :, :]).reshape(-1, 3)
    source = np.repeat(np.arange(len(pos)), len(shifts))
    dist = np.linalg.norm(images[:, None, :] - anchors[None, :, :], axis=2)
    keep = dist.min(axis=1) < shell
    return images[keep], source[keep], dist[keep].argmin(axis=1)


def _is_3d(ax: Axes) -> bool:
    return getattr(ax, "name", "") == "3d"


def plot_structure(structure, ax: Axes | None = None, *, index: int | None = None,
                   short: float = MIN_LI_LI, link: float = 2.5, shell: float = 2.7,
                   title: str | None = None) -> Axes:
    """Draw one Li/vacancy ordering: Li filled, vacant sites open, the framework small and grey.

    The sites of the disordered sublattice (Li and vacancies) are unwrapped into
    compact groups: in Li6PS5Cl each group is the cage of twelve 48h sites
    around a 4d S2- ion, made of six pairs 1.8 Å apart, one pair on each face
    of a cube. Sites closer than ``short`` are joined by a thin grey line, or
    by a red one when both hold Li (a pair with both sites filled). Anions
    within ``shell`` of a cage site are drawn small and grey.

    On a 2D axes (the default) each cage is projected along z, the pairs on
    the upper face crossing those on the lower one in the middle (larger
    markers are higher up), and cages are set side by side. A 3D axes shows
    the sites where they are.

    Parameters
    ----------
    structure
        ase ``Atoms`` with vacancies as ``"X"`` (``pool.atoms(i)``), a pool or
        ``Orderings`` table together with ``index``, or an ordered pymatgen
        ``Structure`` (vacancies removed, so only the Li ions show and a
        cage may fall apart into several groups).
    ax
        Axes to draw on, 2D or 3D; a new 2D axes by default.
    index
        Which candidate, when ``structure`` is a pool or table.
    short
        Distance (Å) below which two sites count as a pair; red when both hold Li.
    link
        Distance (Å) that keeps sites of one cage together when unwrapping.
    shell
        Framework ions closer than this (Å) to a cage site are drawn.
    title
        Axes title; by default the number of Li ions and sites.

    Returns
    -------
    Axes
    """
    cell, pos, symbols = _sites(structure, index)
    kinds = np.array(symbols)
    sub = np.isin(kinds, [LI, VACANCY])
    if not sub.any():
        raise PlotInputError("The structure has no Li or vacancy sites to draw.")
    xyz, group = _unwrap(cell, pos[sub], link)
    li = kinds[sub] == LI
    frame_kinds = kinds[~sub]
    images, source, nearest = _framework_images(cell, pos[~sub], xyz, shell)
    image_kinds = frame_kinds[source]

    dist = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=2)
    pairs = np.argwhere(np.triu(dist < short, k=1))
    both = li[pairs[:, 0]] & li[pairs[:, 1]] if len(pairs) else np.zeros(0, bool)

    if ax is None:
        ax = plt.figure(figsize=(2.2 + 2.8 * (group.max() + 1), 3.2), layout="constrained").add_subplot()
    three_d = _is_3d(ax)
    if three_d:
        site_xy, image_xy = xyz, images
        size = np.full(len(xyz), 80.0)
    else:
        # Centre each cage, project along z and set the cages side by side.
        centres = np.array([xyz[group == g].mean(axis=0) for g in range(group.max() + 1)])
        width = np.ptp(xyz[:, 0] - centres[group, 0]) + 2 * shell + 1.0
        offset = np.zeros_like(centres)
        offset[:, 0] = width * np.arange(len(centres))
        site_xy = (xyz - centres[group] + offset[group])[:, :2]
        image_xy = (images - centres[group[nearest]] + offset[group[nearest]])[:, :2]
        height = xyz[:, 2] - centres[group, 2]
        size = 80.0 * (1 + 0.35 * height / max(np.abs(height).max(), 1e-9))

    for (a, b), red in zip(pairs, both):
        ax.plot(*site_xy[[a, b]].T, color=SHORT_COLOUR if red else "#bbbbbb",
                lw=2.5 if red else 1.0, zorder=1)
    for element, (colour, s) in FRAMEWORK.items():
        mask = image_kinds == element
        if mask.any():
            ax.scatter(*image_xy[mask].T, s=s, color=colour, zorder=2)
    others = ~np.isin(image_kinds, list(FRAMEWORK))
    if others.any():
        ax.scatter(*image_xy[others].T, s=18, color="#cccccc", zorder=2)
    ax.scatter(*site_xy[li].T, s=size[li], color=LI_COLOUR, edgecolors=LI_COLOUR, zorder=3)
    ax.scatter(*site_xy[~li].T, s=size[~li], facecolors="white", edgecolors=LI_COLOUR,
               linewidths=1.5, zorder=3)

    handles = [
        Line2D([], [], ls="", marker="o", ms=8, color=LI_COLOUR, label=f"Li ({int(li.sum())})"),
        Line2D([], [], ls="", marker="o", ms=8, mfc="white", mec=LI_COLOUR,
               label=f"vacancy ({int((~li).sum())})"),
        Line2D([], [], ls="", marker="o", ms=4, color=FRAMEWORK["S"][0], label="P, S, Cl"),
        Line2D([], [], color=SHORT_COLOUR, lw=2.5, label=f"Li–Li < {short:g} Å ({int(both.sum())})"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5),
              fontsize=MIN_FONT_PT, frameon=False)
    if three_d:
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
        ax.set_zlabel("z (Å)")
        everything = np.vstack([site_xy, image_xy])
        ax.set_box_aspect(np.ptp(everything, axis=0) + 1e-9)
    else:
        ax.set_xlabel("x (Å), cages side by side")
        ax.set_ylabel("y (Å)")
        ax.set_aspect("equal")
    ax.xaxis.set_major_formatter(FormatStrFormatter("%.0f"))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.0f"))
    if title is None:
        n_cages = group.max() + 1
        title = f"{int(li.sum())} Li on {len(li)} sites, {n_cages} cage{'s' if n_cages > 1 else ''}"
    ax.set_title(title, fontsize=TITLE_PT)
    _readable(ax)
    return ax


def _empty(ax: Axes, message: str, title: str) -> None:
    """An axes with nothing to draw yet: no frame or ticks that would suggest data, only why."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            fontsize=MIN_FONT_PT + 1, wrap=True)
    ax.set_title(title, fontsize=TITLE_PT)


def _best_series(history) -> pd.Series:
    """Best label so far against the number of labels, from the inputs plot_best_so_far accepts."""
    if hasattr(history, "best_so_far") and callable(history.best_so_far):
        history = history.best_so_far()
    if isinstance(history, pd.DataFrame):
        if "energy" not in history.columns:
            raise PlotInputError(
                "A history DataFrame needs an 'energy' column (energy per atom, eV/atom); "
                f"it has {list(history.columns)}."
            )
        labels = history["energy"].dropna().to_numpy(dtype=float)
        return pd.Series(np.minimum.accumulate(labels), index=np.arange(1, len(labels) + 1))
    if not isinstance(history, pd.Series):
        values = np.asarray(history, dtype=float).ravel()
        history = pd.Series(values, index=np.arange(1, len(values) + 1))
    return history.astype(float).dropna().cummin()


def plot_best_so_far(history, reference_min: float | None = None, ax: Axes | None = None, *,
                     label: str | None = None) -> Axes:
    """Lowest energy found against the number of labels.

    Parameters
    ----------
    history
        A campaign (its ``best_so_far()`` is used), a history DataFrame with a
        ``energy`` column (eV/atom; unlabelled rows are skipped and the running
        minimum is taken), a Series of energies indexed by the number of
        labels, or a plain sequence of energies for 1, 2, ... labels. The
        running minimum of a Series or sequence is drawn, so labels in pick
        order and best-so-far values give the same curve.
    reference_min
        The pool's lowest energy (eV/atom), drawn as a dashed line.
    ax
        Axes to draw on; a new one by default.
    label
        Legend entry of the curve.

    Returns
    -------
    Axes
    """
    best = _best_series(history)
    if ax is None:
        ax = plt.figure(figsize=(4.5, 3.2)).add_subplot()
    if not len(best):
        _empty(ax, "no labels yet:\nthe best energy found\nis drawn here", "best energy found")
        return ax
    ax.step(best.index.to_numpy(), best.to_numpy(), where="post", color=LI_COLOUR, lw=2,
            label=label or "best found")
    ax.plot(best.index[-1], best.iloc[-1], "o", color=LI_COLOUR)
    title = f"best {best.iloc[-1]:.4f} eV/atom after {best.index[-1]} labels"
    if reference_min is not None and np.isfinite(reference_min):
        ax.axhline(reference_min, ls="--", color="k", lw=1,
                   label=f"pool minimum {reference_min:.4f}")
        gap = round(float(best.iloc[-1] - reference_min), 4) + 0.0  # + 0.0 turns -0.0 into 0.0
        where = "below" if gap < 0 else "above"
        title += f"\n{abs(gap):.4f} eV/atom {where} the pool minimum"
    ax.set_xlabel("labels")
    ax.set_ylabel("best energy (eV/atom)")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3f"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=MIN_FONT_PT, frameon=False)
    ax.set_title(title, fontsize=TITLE_PT)
    _readable(ax)
    return ax


def plot_parity(y_true: Sequence[float], y_pred: Sequence[float],
                y_std: Sequence[float] | None = None, ax: Axes | None = None, *,
                labelled: Sequence[bool] | None = None,
                xlabel: str = "label (eV/atom)", ylabel: str = "surrogate μ (eV/atom)") -> Axes:
    """Predicted against true energies, with the line y = x and the MAE in the title.

    Pairs with a NaN on either side are left out.

    Parameters
    ----------
    y_true, y_pred
        Energies per atom (eV/atom).
    y_std
        Predicted standard deviations (eV/atom), drawn as ±1σ error bars.
    ax
        Axes to draw on; a new one by default.
    labelled
        Which points were training labels: drawn filled, the others open, so
        that the fit to the labels and the prediction elsewhere are told apart.
    xlabel, ylabel
        Axis labels.

    Returns
    -------
    Axes
        The title reads ``MAE = … eV/atom (n = …)``, in the axes' unit, with
        MAE = mean |y_pred - y_true|.
    """
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise PlotInputError(f"plot_parity needs as many predictions as labels; got {t.size} and {p.size}.")
    s = None if y_std is None else np.asarray(y_std, dtype=float).ravel()
    if s is not None and s.shape != t.shape:
        raise PlotInputError(f"y_std has {s.size} values for {t.size} labels.")
    mask = np.ones(t.shape, bool) if labelled is None else np.asarray(labelled, dtype=bool).ravel()
    if mask.shape != t.shape:
        raise PlotInputError(f"labelled has {mask.size} values for {t.size} labels.")
    ok = np.isfinite(t) & np.isfinite(p)
    t, p, mask = t[ok], p[ok], mask[ok]
    s = None if s is None else np.where(np.isfinite(s[ok]), s[ok], 0.0)
    if ax is None:
        ax = plt.figure(figsize=(3.8, 3.6)).add_subplot()
    if len(t):
        if s is not None:
            ax.errorbar(t, p, yerr=s, fmt="none", ecolor="#999999", elinewidth=0.8, zorder=1)
        if labelled is None:
            ax.scatter(t, p, s=18, color=LI_COLOUR, zorder=2)
        else:
            ax.scatter(t[~mask], p[~mask], s=14, facecolors="none", edgecolors="#999999",
                       zorder=2, label="not labelled")
            ax.scatter(t[mask], p[mask], s=22, color=LI_COLOUR, zorder=3, label="labelled")
        lo, hi = min(t.min(), p.min()), max(t.max(), p.max())
        pad = 0.05 * (hi - lo) if hi > lo else 0.001
        lims = (lo - pad, hi + pad)
        ax.plot(lims, lims, "k--", lw=1, label="y = x")
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        mae = float(np.mean(np.abs(p - t)))
        ax.set_title(f"MAE = {mae:.4f} eV/atom (n = {len(t)})", fontsize=TITLE_PT)
        ax.legend(fontsize=MIN_FONT_PT, frameon=False, loc="upper left")
    else:
        _empty(ax, "no predictions yet:\nthe surrogate is fitted\nonce there are labels", "parity")
        return ax
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FormatStrFormatter("%.3f"))
    ax.tick_params(axis="x", labelrotation=30)
    _readable(ax)
    return ax


#: Axis labels of the metrics a benchmark table usually holds.
METRIC_LABELS = {
    "regret_meV": "best found − pool minimum (meV/atom)",
    "best": "best energy found (eV/atom)",
    "mae_meV": "MAE (meV/atom)",
}


def plot_strategy_curves(df: pd.DataFrame, ax: Axes | None = None, *, x: str = "n_labels",
                         y: str = "regret_meV", by: str = "strategy",
                         band: tuple[float, float] = (0.25, 0.75),
                         ylabel: str | None = None) -> Axes:
    """Median and inter-quantile band of a metric per strategy, over seeds.

    Each strategy has the colour, line style and marker of
    :data:`STRATEGY_STYLES`. Curves that coincide stay visible: each curve is
    drawn narrower than the one before it, on top of it, with markers at
    staggered labels. A band is a light tint between two thin edge lines in the
    strategy's colour and style, so overlapping bands do not mix into a new colour.

    Parameters
    ----------
    df
        Long table, one row per (strategy, seed, number of labels): columns
        ``by``, ``x`` and ``y``; any further columns (e.g. ``seed``) are pooled.
    ax
        Axes to draw on; a new one by default.
    x, y, by
        Column names: number of labels, metric, strategy.
    band
        Lower and upper quantile of the shaded band (the quartiles by default).
    ylabel
        Y-axis label; taken from :data:`METRIC_LABELS` for known metrics
        (``regret_meV`` and ``mae_meV`` in meV/atom, ``best`` in eV/atom). Values are
        drawn as given: convert units before plotting.

    Returns
    -------
    Axes
    """
    missing = [c for c in (x, y, by) if c not in df.columns]
    if missing:
        raise PlotInputError(
            f"plot_strategy_curves needs columns {missing} (one row per strategy, seed and "
            f"number of labels); the table has {list(df.columns)}."
        )
    if ax is None:
        ax = plt.figure(figsize=(5.5, 3.6)).add_subplot()
    groups = list(df.groupby(by, sort=False))
    others = iter(OTHER_STYLES * len(groups))
    n_x = max(df[x].nunique(), 1)
    for k, (name, group) in enumerate(groups):
        colour, dashes, marker = STRATEGY_STYLES.get(str(name)) or next(others)
        stats = group.groupby(x)[y].quantile([band[0], 0.5, band[1]]).unstack()
        xs = stats.index.to_numpy()
        width = 1.4 + 0.6 * (len(groups) - 1 - k)  # the first drawn is the widest, at the bottom
        every = max(n_x // 8, 1)
        ax.plot(xs, stats[0.5], color=colour, ls=dashes, lw=width, marker=marker, ms=4 + width,
                markevery=(k * max(every // len(groups), 1) % every, every), zorder=3 + k,
                label=str(name))
        ax.fill_between(xs, stats[band[0]], stats[band[1]], color=colour, alpha=0.08, lw=0,
                        zorder=1)
        for edge in (band[0], band[1]):
            ax.plot(xs, stats[edge], color=colour, ls=dashes, lw=0.8, alpha=0.7, zorder=2)
    n_runs = df.groupby(by).size().max() // n_x
    ax.set_xlabel("labels")
    ax.set_ylabel(ylabel or METRIC_LABELS.get(y, y))
    ax.set_title(f"median and {band[0]:.0%}–{band[1]:.0%} band over {n_runs} runs",
                 fontsize=TITLE_PT)
    ax.legend(fontsize=MIN_FONT_PT, frameon=False, handlelength=3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    _readable(ax)
    return ax
