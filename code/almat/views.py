"""See the crystal: 3-D views of an ordering, of a relaxation, and a map of the pool.

The views are `chemiscope <https://chemiscope.org>`_ widgets (3Dmol.js for the
crystal, Plotly for the map), which work offline in JupyterLab 4 with
ipywidgets 8: their JavaScript comes inside the chemiscope wheel. Drag to turn
a crystal, scroll to zoom, click a point of a map to see its crystal.

- :func:`show_ordering`: one Li/vacancy ordering. Li ions and the P, S and Cl
  framework are atoms; empty 48h sites are small pale spheres; each 48h pair
  (two sites closer than :data:`PAIR_DISTANCE`) is a thin grey rod, or a thick
  orange one when both of its sites hold Li. The cages of 48h sites are
  drawn whole, as in :func:`almat.plots.plot_structure`.
- :func:`show_relaxation`: a structure before and after relaxation, side by
  side; arrows on the left show where each atom goes (drawn
  :data:`ARROW_SCALE` times longer than the move).
- :func:`show_pool`: a map of the pool (unrelaxed against relaxed energy, or,
  given a campaign, the surrogate's μ against σ with the labelled candidates
  marked) next to the crystal of the point clicked.
- :class:`CandidateView`: one box that shows whichever candidate it is told
  to, for the labeling app.

Why chemiscope, and how its telemetry is kept off: :mod:`almat.chemiscope_widgets`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import chemiscope
import ipywidgets
import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from almat.campaign import Campaign
from almat.chemiscope_widgets import MapView, StructureView
from almat.errors import AlmatError
from almat.orderings import VACANCY
from almat.plots import SHORT_COLOUR, _unwrap
from almat.pool import Pool
from almat.relaxation import Relaxation
from almat.structures import MIN_LI_LI

#: Two 48h sites closer than this (Å) form a pair, which holds at most one Li (episode 2).
PAIR_DISTANCE = MIN_LI_LI
#: Sites of one cage are kept together when closer than this (Å); see :func:`almat.plots._unwrap`.
CAGE_LINK = 2.5
#: Radius (Å) of the marker of an empty 48h site, and its colour (pale grey-blue).
VACANCY_RADIUS = 0.22
VACANCY_COLOUR = "#b8c7d9"
#: Radii (Å) and colours of the pair rods: a pair with one Li, and one with two.
PAIR_RADIUS, FULL_PAIR_RADIUS = 0.05, 0.14
PAIR_COLOUR = "#9a9a9a"
#: Displacement arrows of :func:`show_relaxation` are this many times longer than the move.
ARROW_SCALE = 5.0

LI = "Li"


class ViewError(AlmatError, ValueError):
    """What was handed to a view cannot be shown."""



# --------------------------------------------------------------------- what is drawn
@dataclass(frozen=True)
class Scene:
    """What a 3-D view draws for one structure; positions in Å.

    Attributes
    ----------
    name
        Shown above the view, e.g. ``"c1-000003"``.
    cell
        ``(3, 3)`` cell vectors as rows.
    symbols, positions
        The atoms drawn: Li and the framework, with the cages of 48h sites whole
        (sites may lie outside the cell).
    vacancies
        ``(m, 3)`` positions of the empty 48h sites.
    pairs
        ``(p, 2, 3)`` the two ends of each 48h pair (sites closer than
        :data:`PAIR_DISTANCE`).
    full
        ``(p,)`` whether each pair has Li on both sites.
    """

    name: str
    cell: np.ndarray
    symbols: list[str]
    positions: np.ndarray
    vacancies: np.ndarray
    pairs: np.ndarray
    full: np.ndarray

    @property
    def n_li(self) -> int:
        return self.symbols.count(LI)

    def describe(self) -> str:
        """One line: Li, empty sites and pairs."""
        return (f"{self.name}: {self.n_li} Li, {len(self.vacancies)} empty 48h sites, "
                f"{len(self.pairs)} pairs ({int(self.full.sum())} with two Li)")


def _atoms(source, index: int | str | None, caller: str) -> tuple[Atoms, str]:
    """ase Atoms (vacancies as ``"X"`` where known) and a name, from almat's currency."""
    if isinstance(source, Pool):
        if index is None:
            raise ViewError(f"{caller} got a pool; say which candidate, e.g. {caller}(pool, 0) "
                            f"or {caller}(pool, 'c1-000000').")
        i = _pool_index(source, index)
        return source.atoms(i), source.ids[i]
    if hasattr(source, "atoms") and callable(source.atoms):  # an Orderings table
        if index is None:
            raise ViewError(f"{caller} got a table of orderings; say which one, e.g. "
                            f"{caller}(table, 0).")
        return source.atoms(int(index)), f"ordering {int(index)}"
    if isinstance(source, Structure):
        if not source.is_ordered:
            raise ViewError(f"{caller} needs an ordering, not the disordered parent: pick one "
                            "with pool.structure(i) or enumerate_table(...).structure(i).")
        return AseAtomsAdaptor.get_atoms(source), source.composition.reduced_formula
    if isinstance(source, Atoms):
        return source, source.get_chemical_formula()
    raise ViewError(f"{caller} shows a Pool or table of orderings with an index, a pymatgen "
                    f"Structure or ase Atoms; got {type(source).__name__}.")


def _pool_index(pool: Pool, index: int | str) -> int:
    """Position in the pool of a candidate given by position or by id."""
    if isinstance(index, str):
        try:
            return pool.ids.index(index)
        except ValueError:
            raise ViewError(f"No candidate {index!r} in pool {pool.name!r}; ids look like "
                            f"{pool.ids[0]!r}.") from None
    if not 0 <= int(index) < len(pool):
        raise ViewError(f"Candidate index {index} is outside pool {pool.name!r} "
                        f"(0 to {len(pool) - 1}).")
    return int(index)


def ordering_scene(source, index: int | str | None = None) -> Scene:
    """What :func:`show_ordering` draws: atoms, empty 48h sites and 48h pairs.

    Parameters
    ----------
    source
        A :class:`~almat.pool.Pool` or :class:`~almat.orderings.Orderings` table
        with ``index`` (position, or for a pool also an id such as ``"c2-000355"``),
        ase ``Atoms`` with vacancies as ``"X"``, or an ordered pymatgen
        ``Structure`` (vacancies removed: no empty sites, and only pairs of two Li).
    index
        Which candidate of a pool or table.
    """
    atoms, name = _atoms(source, index, "show_ordering")
    return _scene(name, np.asarray(atoms.cell[:]), atoms.get_chemical_symbols(),
                  np.asarray(atoms.positions, dtype=float), unwrap=True)


@dataclass(frozen=True)
class _Layout:
    """Where the atoms of one cell are drawn and which 48h sites pair up; no species."""

    positions: np.ndarray  # every site, cages whole
    sites: np.ndarray  # indices of the 48h sites (Li or vacancy)
    first: np.ndarray  # the pairs, as indices into ``sites`` ...
    second: np.ndarray
    vectors: np.ndarray  # ... and the vector from the first site to the second


def _layout(cell: np.ndarray, positions: np.ndarray, symbols: np.ndarray, unwrap: bool) -> _Layout:
    """Place the sites (``unwrap``: each cage of 48h sites whole) and find the 48h pairs."""
    positions = positions.copy()
    sites = np.flatnonzero(np.isin(symbols, [LI, VACANCY]))
    if not len(sites):
        return _Layout(positions, sites, *np.zeros((2, 0), dtype=int), np.zeros((0, 3)))
    if unwrap:
        positions[sites], _ = _unwrap(cell, positions[sites], CAGE_LINK)
    lattice = Atoms(["H"] * len(sites), positions=positions[sites], cell=cell, pbc=True)
    first, second, vectors = neighbor_list("ijD", lattice, PAIR_DISTANCE)
    once = first < second
    return _Layout(positions, sites, first[once], second[once], vectors[once])


def _scene(name: str, cell: np.ndarray, symbols: Sequence[str], positions: np.ndarray,
           unwrap: bool, layout: _Layout | None = None) -> Scene:
    """A scene from atoms; ``layout`` of the same sites, if known, saves finding it again."""
    symbols = np.asarray(symbols)
    layout = layout or _layout(cell, positions, symbols, unwrap)
    ends = layout.positions[layout.sites][layout.first]
    pairs = np.stack([ends, ends + layout.vectors], axis=1).reshape(-1, 2, 3)
    li = symbols[layout.sites] == LI
    empty = symbols == VACANCY
    return Scene(name, cell, symbols[~empty].tolist(), layout.positions[~empty],
                 layout.positions[empty], pairs, li[layout.first] & li[layout.second])


def pool_scenes(pool: Pool) -> list[Scene]:
    """The scene of every candidate, named by its id (orderings of one supercell share a layout)."""
    layouts: dict[int, _Layout] = {}
    scenes = []
    for i, (name, cell_key) in enumerate(zip(pool.ids, pool.orderings.hnf_index)):
        atoms = pool.atoms(i)
        cell, symbols = np.asarray(atoms.cell[:]), np.array(atoms.get_chemical_symbols())
        if cell_key not in layouts:
            layouts[cell_key] = _layout(cell, atoms.positions, symbols, unwrap=True)
        scenes.append(_scene(name, cell, symbols, atoms.positions, True, layouts[cell_key]))
    return scenes


# --------------------------------------------------------------------- chemiscope input
def _frame(scene: Scene) -> dict:
    """A chemiscope structure: names, x, y, z and the cell."""
    x, y, z = scene.positions.T if len(scene.positions) else ([], [], [])
    return {"size": len(scene.symbols), "names": list(scene.symbols),
            "x": np.round(x, 4).tolist(), "y": np.round(y, 4).tolist(),
            "z": np.round(z, 4).tolist(), "cell": np.round(scene.cell, 4).ravel().tolist()}


#: Names of the shapes of the 48h sites, as chemiscope's shape menu lists them.
EMPTY_SITES, PAIRS = "empty 48h sites", "48h pairs"
#: Stands in for "nothing" in a structure that has no shape of a kind that others have
#: (chemiscope needs at least one per structure): radius 0, so nothing is drawn.
_NOTHING = {EMPTY_SITES: {"centers": [[0.0, 0.0, 0.0]], "radii": 0.0},
            PAIRS: {"bases": [[0.0, 0.0, 0.0]], "vectors": [[0.0, 0.0, 1e-3]], "radii": 0.0}}


def _site_shapes(scenes: Sequence[Scene]) -> dict:
    """chemiscope shapes: empty sites (spheres) and pairs (rods), each where any scene has one."""
    spheres, rods = [], []
    for scene in scenes:
        spheres.append({"centers": np.round(scene.vacancies, 4).tolist(),
                        "radii": VACANCY_RADIUS, "colors": VACANCY_COLOUR})
        rods.append({"bases": np.round(scene.pairs[:, 0], 4).tolist(),
                     "vectors": np.round(scene.pairs[:, 1] - scene.pairs[:, 0], 4).tolist(),
                     "radii": [FULL_PAIR_RADIUS if f else PAIR_RADIUS for f in scene.full],
                     "colors": [SHORT_COLOUR if f else PAIR_COLOUR for f in scene.full]})
    shapes = {}
    for name, kind, per_scene, key in ((EMPTY_SITES, "spheres", spheres, "centers"),
                                       (PAIRS, "cylinders", rods, "vectors")):
        if any(p[key] for p in per_scene):
            padded = [p if p[key] else _NOTHING[name] for p in per_scene]
            shapes[name] = {"kind": kind, "parameters": {"structure": padded}}
    return shapes


VIEWER_SETTINGS = {"bonds": False, "unitCell": True, "keepOrientation": True}


def _input(scenes: Sequence[Scene], name: str, description: str, properties: dict | None = None,
           settings: dict | None = None, extra_shapes: dict | None = None) -> dict:
    """The chemiscope input of some scenes (the dict :func:`chemiscope.create_input` makes).

    Every viewer shows the shapes of the 48h sites and ``extra_shapes``.
    """
    props = {"index": {"target": "structure", "values": list(range(len(scenes)))}}
    props.update(properties or {})
    shapes = _site_shapes(scenes)
    shapes.update(extra_shapes or {})
    viewer = dict(VIEWER_SETTINGS, shape=",".join(shapes))
    chosen = {"structure": [viewer]}
    chosen.update(settings or {})
    return chemiscope.create_input(
        structures=[_frame(s) for s in scenes], properties=props, shapes=shapes,
        metadata={"name": name, "description": description}, settings=chosen)


# --------------------------------------------------------------------- the views
def show_ordering(source, index: int | str | None = None) -> StructureView:
    """A 3-D view of one ordering: Li, empty 48h sites, pairs, framework; drag to turn it.

    Parameters are those of :func:`ordering_scene`. The text under the view (and
    the widget's plain-text form) says how many Li, empty sites and pairs there
    are, and how many pairs hold two Li.
    """
    scene = ordering_scene(source, index)
    description = ("Li: purple; empty 48h sites: small pale spheres; 48h pairs: grey rods, "
                   "thick orange when both sites hold Li.")
    return StructureView(_input([scene], scene.name, description),
                         f"<3-D view of {scene.describe()}>")


def relaxation_scenes(before, after: Structure | Relaxation, index: int | str | None = None
                      ) -> tuple[Scene, Scene, np.ndarray]:
    """The scenes of a structure before and after relaxation, and each atom's move (Å).

    Parameters are those of :func:`show_relaxation`. Each relaxed atom is drawn
    at the periodic image nearest to where it started, and empty sites stay
    where they were relative to the cell, so that the two views and the moves
    agree. The moves are relative to the cell (its change of shape left out).
    """
    relaxed = after.structure if isinstance(after, Relaxation) else after
    if not isinstance(relaxed, Structure):
        raise ViewError("show_relaxation(before, after): after is the relaxed Structure, or "
                        f"what relax_structure returned; got {type(after).__name__}.")
    atoms, name = _atoms(before, index, "show_relaxation")
    symbols = np.array(atoms.get_chemical_symbols())
    kept = symbols != VACANCY
    if symbols[kept].tolist() != [s.specie.symbol for s in relaxed]:
        raise ViewError("The relaxed structure does not have the atoms of the one before, in "
                        "the same order; pass the structure (or pool and index) that was relaxed.")
    cell = np.asarray(atoms.cell[:])
    start = _scene(name, cell, symbols, atoms.positions, unwrap=True)
    # where the sites were drawn (with the lattice vectors that unwrapping added), as fractions
    layout = _layout(cell, atoms.positions, symbols, unwrap=True)
    frac = np.linalg.solve(cell.T, layout.positions.T).T
    step = np.zeros_like(frac)
    step[kept] = relaxed.frac_coords - frac[kept]
    step -= np.rint(step)
    end = _scene(name, relaxed.lattice.matrix, symbols,
                 (frac + step) @ relaxed.lattice.matrix, unwrap=False)
    return start, end, (step @ relaxed.lattice.matrix)[kept]


class ViewRow(ipywidgets.HBox):
    """Views side by side, each under its caption (HTML), with a plain-text description.

    Attributes
    ----------
    views
        The views, left to right.
    """

    def __init__(self, views: Sequence[StructureView], captions: Sequence[str], description: str):
        width = f"{100 / len(views):.4g}%"
        super().__init__([ipywidgets.VBox([ipywidgets.HTML(caption), view],
                                          layout=ipywidgets.Layout(width=width))
                          for caption, view in zip(captions, views)],
                         layout=ipywidgets.Layout(width="100%"))
        self.views = tuple(views)
        self._description = description

    def __repr__(self) -> str:
        return self._description


def show_relaxation(before, after: Structure | Relaxation, index: int | str | None = None
                    ) -> ViewRow:
    """Two 3-D views side by side: a structure before and after relaxation.

    Arrows in the left view show where each atom moves relative to the cell,
    :data:`ARROW_SCALE` times longer than the move.

    Parameters
    ----------
    before
        What was relaxed: a pool (or table of orderings) with ``index``, which
        shows the empty 48h sites too, or the Structure itself.
    after
        The relaxed structure, or the :class:`~almat.relaxation.Relaxation`
        that :func:`~almat.relaxation.relax_structure` returned.
    index
        Which candidate of a pool or table (position, or id for a pool).
    """
    start, end, moves = relaxation_scenes(before, after, index)
    largest = float(np.linalg.norm(moves, axis=1).max())
    arrows = {"moves": {"kind": "arrow", "parameters": {
        "global": {"baseRadius": 0.05, "headRadius": 0.14, "headLength": 0.3, "color": "#000000"},
        "atom": [{"vector": np.round(ARROW_SCALE * m, 4).tolist()} for m in moves]}}}
    left = StructureView(_input([start], "before", f"{start.name} before relaxation. Arrows: "
                                 f"where each atom moves, drawn {ARROW_SCALE:g} times longer "
                                 "than the move.", extra_shapes=arrows),
                         f"<{start.describe()}, before relaxation>", title=False)
    right = StructureView(_input([end], "after", f"{end.name} after relaxation."),
                          f"<{end.describe()}, after relaxation>", title=False)
    captions = [f"<b>{start.name} before relaxation</b>; arrows {ARROW_SCALE:g}× the move",
                f"<b>{end.name} after relaxation</b>; largest move {largest:.2f} Å"]
    return ViewRow([left, right], captions, f"<3-D views of {start.name} before and after "
                   f"relaxation: {len(moves)} atoms, largest move {largest:.2f} Å>")


def _above_lowest(values: np.ndarray, lowest: float | None = None) -> list[float]:
    """Energies (eV/atom) as meV/atom above ``lowest`` (their own minimum by default)."""
    values = np.asarray(values, dtype=float)
    if lowest is None:
        lowest = np.nanmin(values) if np.isfinite(values).any() else 0.0
    return np.round(1000 * (values - lowest), 3).tolist()


#: Columns of a pool's reference table shown on the map: (column, name on the map, units).
MAP_ENERGIES = (("energy_per_atom", "relaxed energy"),
                ("unrelaxed_energy_per_atom", "unrelaxed energy"),
                ("ewald_energy_per_atom", "Ewald energy"))
#: Labels of the candidates on a campaign's map, by what happened to them.
STATUS = ("labelled", "skipped", "next", "not labelled")


def pool_map_properties(pool: Pool, campaign: Campaign | None = None) -> dict[str, dict]:
    """The properties of each candidate that :func:`show_pool` can put on the map's axes.

    Energies are in meV/atom above the lowest of their column; with a campaign,
    ``μ`` is meV/atom above the best label so far, ``σ`` is in meV/atom, and
    ``status`` is one of :data:`STATUS`.
    """
    ref = pool.reference
    props = {"id": {"target": "structure", "values": list(pool.ids)}}
    for column, name in MAP_ENERGIES:
        if column in ref and np.isfinite(ref[column].to_numpy(dtype=float)).any():
            props[name] = {"target": "structure", "units": "meV/atom",
                           "description": f"{name} above the lowest of the pool",
                           "values": _above_lowest(ref[column].to_numpy(dtype=float))}
    if "min_li_li" in ref:
        props["shortest Li-Li"] = {"target": "structure", "units": "Å",
                                   "values": np.round(ref["min_li_li"].to_numpy(float), 3).tolist()}
    props["cell size"] = {"target": "structure", "values": ref["cell_size"].astype(int).tolist()}
    if campaign is None:
        return props
    if campaign.pool is not pool:
        raise ViewError("show_pool(pool, campaign): the campaign works on another pool; "
                        "use show_pool(campaign.pool, campaign).")
    status = np.full(len(pool), STATUS[3], dtype=object)
    status[campaign.skipped["index"].to_numpy(dtype=int)] = STATUS[1]
    status[campaign.labelled["index"].to_numpy(dtype=int)] = STATUS[0]
    if not campaign.done:
        status[campaign.suggest().index] = STATUS[2]
    props["status"] = {"target": "structure", "values": status.tolist()}
    mu, sigma = campaign.predict()
    if np.isfinite(mu).any():
        best = float(campaign.best()["energy"])
        props["μ"] = {"target": "structure", "units": "meV/atom",
                      "description": "predicted energy above the best label so far",
                      "values": _above_lowest(mu, best)}
        props["σ"] = {"target": "structure", "units": "meV/atom",
                      "description": "uncertainty of the prediction (standard deviation)",
                      "values": np.round(1000 * sigma, 3).tolist()}
    return props


def show_pool(pool: Pool, campaign: Campaign | None = None, *, x: str | None = None,
              y: str | None = None, color: str | None = None) -> MapView:
    """A map of the pool beside a 3-D view: click a point to see its crystal.

    Without a campaign the map shows the unrelaxed against the relaxed energy,
    coloured by the Ewald energy. With one it shows the surrogate's
    μ against σ (once two labels are in), coloured by the unrelaxed energy, and
    marks each candidate as labelled, skipped, next or not labelled
    (:data:`STATUS`) by the symbol of its point.

    Parameters
    ----------
    pool
        The candidates.
    campaign
        A campaign on this pool, whose labels and predictions are shown.
    x, y, color
        Names of the properties (see :func:`pool_map_properties`) to put on the
        axes and the colour scale instead of the defaults.
    """
    props = pool_map_properties(pool, campaign)
    if campaign is not None and "μ" in props:
        axes = {"x": "μ", "y": "σ", "color": "unrelaxed energy"}
    else:
        axes = {"x": "unrelaxed energy", "y": "relaxed energy", "color": "Ewald energy"}
    axes.update({k: v for k, v in {"x": x, "y": y, "color": color}.items() if v is not None})
    for name in axes.values():
        if name not in props:
            raise ViewError(f"The map has no property {name!r}; choose from "
                            f"{', '.join(sorted(props))}.")
    settings = {"map": {key: {"property": name} for key, name in axes.items()}}
    if "status" in props:
        settings["map"]["symbol"] = "status"
        if axes["color"] == "status":
            settings["map"]["color"]["palette"] = "tab10"
    scenes = pool_scenes(pool)
    description = (f"Each point is a candidate of pool {pool.name!r}; click one to see its "
                   "crystal. Empty 48h sites: small pale spheres; pairs with two Li: thick "
                   "orange rods.")
    return MapView(_input(scenes, f"pool {pool.name}", description, props, settings),
                   f"<map of the {len(pool)} candidates of pool {pool.name!r}: "
                   f"{axes['x']} against {axes['y']}>")


class CandidateView(ipywidgets.VBox):
    """A 3-D view that shows whichever candidate of a pool it is told to.

    The labeling app keeps one and calls :meth:`show` with the candidate on
    screen; the view inside is replaced, the box stays where it is.

    Parameters
    ----------
    pool
        The candidates.
    height
        Height of the view in the page (CSS), e.g. ``"320px"``; None leaves
        chemiscope's own.
    """

    def __init__(self, pool: Pool, height: str | None = None):
        super().__init__()
        self.pool = pool
        self.height = height
        self.index: int | None = None
        self.add_class("almat-view")
        # chemiscope's viewer is a few px wider than its box (borders): clip them, no scrollbar
        self.layout.overflow = "hidden"

    def show(self, index: int | str) -> None:
        """Show candidate ``index`` (position in the pool, or id)."""
        i = _pool_index(self.pool, index)
        if i == self.index:
            return
        view = show_ordering(self.pool, i)
        if self.height is not None:
            view.fit(self.height)
        self._replace((view,))
        self.index = i

    def clear(self) -> None:
        """Show nothing (the app has no candidate left to label)."""
        self._replace(())
        self.index = None

    def _replace(self, children: tuple) -> None:
        old = self.children
        self.children = children
        for view in old:
            view.close()

    def __repr__(self) -> str:
        shown = "nothing yet" if self.index is None else self.pool.ids[self.index]
        return f"<CandidateView of pool {self.pool.name!r}: {shown}>"
