"""Feature vectors for orderings: what a surrogate model sees.

A featurizer turns a table of orderings (:class:`almat.orderings.Orderings`,
or any object with an ``.orderings`` attribute such as a pool) into a float
array of shape ``(n_orderings, n_features)`` and names its columns::

    featurizer = ClusterVectorFeaturizer(parent)
    X = featurizer.transform(pool)          # (n, 32) for Li6PS5Cl
    featurizer.feature_names                # ['pair_1.81A', ...]

Two featurizers are provided, and :func:`as_featurizer` wraps a plain
function so that a learner can bring their own:

* :class:`ClusterVectorFeaturizer`: cluster correlations of a cluster
  expansion (orbits from :mod:`almat.clusters`), computed straight from the occupation table.
* :class:`LiLiDistanceFeaturizer`: a physical descriptor, the number of Li-Li
  pairs in distance shells and the shortest Li-Li distance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from ase import Atoms
from pymatgen.core import Structure
from threadpoolctl import threadpool_limits

from almat.clusters import Orbit, check_cutoffs, cluster_key, cluster_orbits, orbit_name, point_functions
from almat.errors import AlmatError
from almat.orderings import VACANCY, Orderings, disorder_of, element_symbol, translation_index, translations

#: Upper bound on the number of floats one gathered block holds (about 32 MB in float64).
_BLOCK = 4_000_000


class FeaturizerError(AlmatError, ValueError):
    """Input that a featurizer cannot turn into features."""


class IcetMissingError(AlmatError, ImportError):
    """A reference path of a featurizer needs icet (the ``reference`` extra), which is not installed."""


class Featurizer(Protocol):
    """What the campaign needs from a featurizer."""

    feature_names: list[str]

    def transform(self, x: Any) -> np.ndarray: ...


def orderings_of(x: Any) -> Orderings:
    """The :class:`Orderings` table behind ``x`` (an Orderings, or an object with ``.orderings``)."""
    if isinstance(x, Orderings):
        return x
    inner = getattr(x, "orderings", None)
    if isinstance(inner, Orderings):
        return inner
    raise FeaturizerError(
        f"Featurizers take an almat Orderings table or a pool that has one (.orderings); got "
        f"{type(x).__name__}. Build the table with almat.enumeration.enumerate_table(...), or "
        "load the shipped pool with almat.load_pool('li6ps5cl'). A list of pymatgen Structures "
        "cannot be used directly: map it onto a table with almat.orderings.orderings_from_cells."
    )


def _check_same_parent(parent: Structure, orderings: Orderings) -> None:
    other = orderings.parent
    same = (
        len(other) == len(parent)
        and np.allclose(other.lattice.matrix, parent.lattice.matrix, atol=1e-6)
        and np.allclose(other.frac_coords, parent.frac_coords, atol=1e-6)
        and disorder_of(other)[1] == disorder_of(parent)[1]
    )
    if not same:
        raise FeaturizerError(
            f"These orderings derive from {other.composition.reduced_formula} with a {len(other)}-site "
            f"cell, but the featurizer was built for {parent.composition.reduced_formula} with a "
            f"{len(parent)}-site cell (or the lattices, positions or species differ). Build the "
            "featurizer from the same parent the orderings came from, e.g. "
            "ClusterVectorFeaturizer(orderings.parent)."
        )


def parent_atoms(parent: Structure) -> tuple[Atoms, list[list[str]]]:
    """The parent as ase Atoms with its allowed species per site (icet's input).

    Disordered sites carry their first species (e.g. Li); the allowed list of
    such a site holds every species of it, a vacancy as ``"X"``.
    """
    sites, species = disorder_of(parent)
    column = {int(p): j for j, p in enumerate(sites)}
    symbols, allowed = [], []
    for i, site in enumerate(parent):
        if i in column:
            names = [element_symbol(s) for s in species[column[i]]]
        else:
            names = [element_symbol(str(next(iter(site.species))))]
        symbols.append(names[0])
        allowed.append(names)
    atoms = Atoms(symbols, scaled_positions=parent.frac_coords, cell=parent.lattice.matrix, pbc=True)
    return atoms, allowed


def _locate(parent: Structure, sites: np.ndarray, cart: np.ndarray, tol: float = 1e-4
            ) -> tuple[np.ndarray, np.ndarray]:
    """Disordered column ``j`` and lattice offset of Cartesian positions (Å) in the parent."""
    frac = np.asarray(cart, dtype=float).reshape(-1, 3) @ np.linalg.inv(parent.lattice.matrix)
    diff = frac[:, None, :] - parent.frac_coords[sites][None, :, :]
    residual = np.abs(diff - np.rint(diff)).max(axis=2)
    j = residual.argmin(axis=1)
    if residual[np.arange(len(frac)), j].max() > tol:
        raise FeaturizerError("A cluster site of the cluster space matches no disordered site of the parent.")
    return j, np.rint(diff[np.arange(len(frac)), j]).astype(np.int64)


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


class ClusterVectorFeaturizer:
    """Cluster correlations of a cluster expansion: one column per orbit of clusters.

    The clusters are those of the disordered sites of the primitive parent
    (:func:`almat.clusters.cluster_orbits`; Li or vacancy "X" on the Li6PS5Cl
    48h sites). The feature vector of an ordering is its cluster vector: for
    each orbit ``α`` of symmetry-equivalent clusters, the average over all
    clusters of the orbit in the supercell of the product of point functions,
    ``Φ_α = <Π_{i∈cluster} φ(σ_i)>``, with icet's basis (``φ = ±1`` for a
    binary site, :func:`almat.clusters.point_functions`). Columns come in
    icet's order, and equal icet's cluster vector (the ``reference`` extra,
    used by the tests and by ``method="icet"``).

    Cutoffs (Å): ``cutoffs[0]`` bounds pair distances, ``cutoffs[1]`` (if
    given) the largest distance within a triplet, and so on. The Li6PS5Cl 48h
    sublattice has Li-Li distances of 1.81 (the 48h pair), 2.33, 3.59, 4.14
    and 4.75 Å within one Li cage around a 4d anion, and many more between
    cages; 6.0 Å takes 14 pair shells, the default 8.0 Å takes 32 (the point
    and empty-cluster columns, the same for every ordering at a fixed
    Li:vacancy ratio, are left out).

    Why 8 Å and pairs only: relaxed energies depend on Li-Li pairs further
    apart than unrelaxed ones. On the relaxed pool (630 orderings, 10 seeds,
    ``benchmarks/al_benchmark.py``) greedy search needs a median of 65.5
    labels to find the lowest relaxed energy with 8 Å pairs and 112.5 with
    6 Å pairs. Triplets overfit the few tens of labels a campaign has: with
    ``cutoffs=(6.0, 5.0)`` (45 features) greedy search needed about 180.

    Parameters
    ----------
    parent
        The disordered primitive cell, e.g. ``set_occupancy(load_parent(), 0.5)``.
    cutoffs
        Cutoffs in Å per cluster order, starting with pairs (icet's convention).
    fixed_composition
        Leave out the point correlations, which only depend on the composition
        (every enumerated ordering has the parent's Li:vacancy ratio). Set to
        False for tables mixing compositions.

    Attributes
    ----------
    orbits
        The :class:`almat.clusters.Orbit` of each column (sites with two
        species); None for sites with more, whose columns come from icet.
    feature_names
        One name per column: cluster order and its interatomic distances in Å.
    """

    def __init__(self, parent: Structure, cutoffs: Sequence[float] = (8.0,),
                 fixed_composition: bool = True) -> None:
        self.parent = parent
        self.cutoffs = check_cutoffs(cutoffs)
        self.fixed_composition = fixed_composition
        self._sites, self._species = disorder_of(parent)
        if len(self._sites) == 0:
            raise FeaturizerError("The parent has no partially occupied site, so there is nothing to order.")
        self._binary = all(len(s) == 2 for s in self._species)
        self._cluster_space: Any = None
        self._columns: np.ndarray | None = None
        self._tables: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
        self.orbits: list[Orbit] | None = None
        if self._binary:
            self.orbits = cluster_orbits(parent, self.cutoffs, points=not fixed_composition)
            self._phi = point_functions(self._species)
            self.feature_names = _unique_names([o.name for o in self.orbits])
        else:  # three or more species: icet's basis, several columns per orbit
            space = self._reference("Sites with more than two species")
            least = 1 if fixed_composition else 0
            rows = [row for row in space.as_list if row["order"] > least]
            clusters = [space.orbit_list.orbits[row["orbit_index"]].representative_cluster for row in rows]
            self._columns = np.array([row["index"] for row in rows])
            self.feature_names = _unique_names([orbit_name(c.order, c.distances) for c in clusters])

    def __repr__(self) -> str:
        return (f"ClusterVectorFeaturizer({self.parent.composition.reduced_formula}, cutoffs={self.cutoffs}, "
                f"{len(self.feature_names)} features)")

    @property
    def cluster_space(self) -> Any:
        """icet's ``ClusterSpace`` of the parent, the reference (needs the ``reference`` extra)."""
        return self._reference("The icet cluster space")

    def _reference(self, purpose: str) -> Any:
        if self._cluster_space is None:
            try:
                from icet import ClusterSpace
            except ImportError as err:
                raise IcetMissingError(
                    f"{purpose} needs icet, which is not installed: pip install \"almat[reference]\" "
                    "(in a clone: pip install -e \".[reference]\")."
                ) from err
            atoms, allowed = parent_atoms(self.parent)
            self._cluster_space = ClusterSpace(atoms, list(self.cutoffs), allowed)
        return self._cluster_space

    def _reference_columns(self) -> np.ndarray:
        """icet's cluster-vector index of each column, matched by the clusters of its orbit."""
        if self._columns is None:
            space = self._reference("method='icet'")
            owner = {cluster_key(j, n): a for a, o in enumerate(self.orbits)
                     for j, n in zip(o.sites, o.offsets)}
            columns = np.full(len(self.orbits), -1)
            for row in space.as_list:
                if row["order"] < 1:
                    continue
                cluster = space.orbit_list.orbits[row["orbit_index"]].representative_cluster
                j, n = _locate(self.parent, self._sites, np.array(cluster.positions))
                a = owner.get(cluster_key(j, n))
                if a is not None:
                    columns[a] = row["index"]
            if np.any(columns < 0):
                missing = [self.feature_names[a] for a in np.flatnonzero(columns < 0)]
                raise FeaturizerError(f"icet's cluster space of this parent lacks the orbits {missing}; "
                                      "use method='fast'.")
            self._columns = columns
        return self._columns

    def _supercell_tables(self, hnf: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per cluster order: supercell column tuples ``(U, order)`` and their weights ``(k, U)``.

        Every cluster of every orbit is placed at every translation of the
        supercell and its sites mapped to occupation columns; identical column
        tuples are merged. Weight ``[u, a]`` counts how often tuple ``u`` occurs
        in orbit ``a`` (stored transposed); dividing by the orbit's cluster count gives the average.
        """
        key = tuple(int(x) for x in hnf.ravel())
        if key in self._tables:
            return self._tables[key]
        d = len(self._sites)
        shifts = translations(hnf)
        by_order: dict[int, list[tuple[np.ndarray, int]]] = {}
        for a, orbit in enumerate(self.orbits):
            j, offsets = orbit.sites, orbit.offsets
            vectors = shifts[:, None, None, :] + offsets[None]
            t = translation_index(vectors.reshape(-1, 3), hnf).reshape(vectors.shape[:-1])
            cols = np.sort((t * d + j[None]).reshape(-1, j.shape[1]), axis=1)
            by_order.setdefault(j.shape[1], []).append((cols, a))
        tables = []
        for parts in by_order.values():
            stacked = np.concatenate([cols for cols, _ in parts])
            owner = np.concatenate([np.full(len(cols), a) for cols, a in parts])
            unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
            weights = np.zeros((len(unique), len(self.orbits)))
            np.add.at(weights, (inverse.ravel(), owner), 1.0)
            # φ = ±1 makes every product ±1 and every weighted sum an integer, exact in float32.
            tables.append((unique.astype(np.intp), np.ascontiguousarray(weights.T, dtype=np.float32)))
        self._tables[key] = tables
        return tables

    def transform(self, x: Any, method: str = "auto") -> np.ndarray:
        """Cluster vectors of every ordering in ``x``, without the constant columns.

        Parameters
        ----------
        x
            An :class:`Orderings` table or a pool with ``.orderings``.
        method
            ``"fast"``: vectorised NumPy straight from the occupations (binary sites
            only; about 1 s per 100,000 cell-size-2 orderings here).
            ``"icet"``: build each structure and call icet's
            ``get_cluster_vector`` (any number of species, some 100 times
            slower; needs the ``reference`` extra, else
            :class:`IcetMissingError`). ``"auto"`` picks ``"fast"`` when it applies.

        Returns
        -------
        numpy.ndarray
            ``(n, len(feature_names))`` float64.
        """
        orderings = orderings_of(x)
        _check_same_parent(self.parent, orderings)
        if method not in ("auto", "fast", "icet"):
            raise FeaturizerError(f"method must be 'auto', 'fast' or 'icet'; got {method!r}.")
        if method == "fast" and not self._binary:
            raise FeaturizerError(
                "The fast path handles sites with two species (such as Li/vacancy); this parent has "
                "sites with more. Use method='icet' (slower) or method='auto'."
            )
        if method == "icet" or not self._binary:
            return self._transform_icet(orderings)
        return self._transform_fast(orderings)

    def _transform_icet(self, orderings: Orderings) -> np.ndarray:
        columns = self._reference_columns() if self._binary else self._columns
        out = np.empty((len(orderings), len(columns)))
        for i in range(len(orderings)):
            out[i] = self.cluster_space.get_cluster_vector(orderings.atoms(i))[columns]
        return out

    def _transform_fast(self, orderings: Orderings) -> np.ndarray:
        # The products are small (45 x ~1000 by a block of rows): one BLAS thread is as fast,
        # and far faster when the cores are shared with other work.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._correlations(orderings)

    def _correlations(self, orderings: Orderings) -> np.ndarray:
        d = len(self._sites)
        counts = np.array([o.multiplicity for o in self.orbits], dtype=float)
        out = np.empty((len(orderings), len(self.orbits)))
        order = np.argsort(orderings.hnf_index, kind="stable")
        bounds = np.searchsorted(orderings.hnf_index[order], np.arange(len(orderings.hnfs) + 1))
        for h in range(len(orderings.hnfs)):
            rows = order[bounds[h]: bounds[h + 1]]
            if len(rows) == 0:
                continue
            hnf = orderings.hnfs[h]
            n_cells = int(round(abs(np.linalg.det(hnf))))
            width = n_cells * d
            tables = self._supercell_tables(hnf)
            phi = self._phi[np.arange(width) % d].astype(np.float32)
            total = counts * n_cells
            step = max(1, _BLOCK // max(len(cols) for cols, _ in tables))
            for start in range(0, len(rows), step):
                chunk = rows[start: start + step]
                occupations = orderings.occupations[chunk, :width]
                if occupations.min() < 0 or occupations.max() > 1:
                    bad = chunk[np.flatnonzero(((occupations < 0) | (occupations > 1)).any(axis=1))[0]]
                    raise FeaturizerError(
                        f"Ordering {bad} has occupations outside 0/1 in its {width} used columns "
                        f"({orderings.occupations[bad, :width].tolist()}); a table of Li/vacancy orderings "
                        "holds 0 (first species) or 1 (second species, e.g. vacancy) in each used column."
                    )
                spins = np.where(occupations.T == 0, phi[:, :1], phi[:, 1:])  # (width, rows)
                acc = np.zeros((len(self.orbits), len(chunk)))
                for cols, weights in tables:
                    prod = spins[cols[:, 0]]
                    for c in range(1, cols.shape[1]):
                        prod = prod * spins[cols[:, c]]
                    acc += weights @ prod
                out[chunk] = (acc / total[:, None]).T
        return out


class LiLiDistanceFeaturizer:
    """Li-Li pair counts in distance shells, and the shortest Li-Li distance.

    A physical descriptor to set against cluster vectors: Li+ ions repel, so
    orderings that put Li on both ends of the short 1.81 Å 48h pair should be
    high in energy. Computed from the occupation table by placing every Li-Li
    neighbour pair of the parent (within the outer shell edge, periodic
    images included) in each supercell.

    Columns: for each shell ``[r_k, r_{k+1})`` the number of Li-Li pairs per
    formula unit, each pair counted once (a Li and a periodic image of itself
    count as a pair too), then the shortest Li-Li distance in Å (set to the
    outer edge when no pair is that close).

    Parameters
    ----------
    parent
        The disordered primitive cell.
    edges
        Shell edges in Å, increasing; default shells < 2, 2-3, 3-4, 4-5 Å.

    Notes
    -----
    "Li" stands for any non-vacancy species on the disordered sites; formula
    units are counted from the ordered sites (PS5Cl: one per primitive cell).
    """

    def __init__(self, parent: Structure, edges: Sequence[float] = (0.0, 2.0, 3.0, 4.0, 5.0)) -> None:
        edges_arr = np.asarray(edges, dtype=float)
        if edges_arr.ndim != 1 or len(edges_arr) < 2 or np.any(np.diff(edges_arr) <= 0) or edges_arr[0] < 0:
            raise FeaturizerError(
                f"edges must be at least two increasing distances in Å starting at 0 or above; got {list(edges)}."
            )
        self.parent = parent
        self.edges = tuple(float(e) for e in edges_arr)
        self._sites, self._species = disorder_of(parent)
        if len(self._sites) == 0:
            raise FeaturizerError("The parent has no partially occupied site, so there is nothing to order.")
        self._vacancy = np.array([s.index(VACANCY) if VACANCY in s else -1 for s in self._species])
        fixed = [s for s in parent if s.is_ordered]
        self._formula_units = (Structure.from_sites(fixed).composition.get_reduced_formula_and_factor()[1]
                               if fixed else 1)
        sub = Structure.from_sites([parent[int(p)] for p in self._sites])
        centre, neighbour, offsets, dist = sub.get_neighbor_list(self.edges[-1] - 1e-9)
        keep = dist >= self.edges[0]
        by_distance = np.argsort(dist[keep], kind="stable")
        self._pairs = (centre[keep][by_distance], neighbour[keep][by_distance],
                       offsets[keep][by_distance].astype(np.int64), dist[keep][by_distance])
        names = sorted({element_symbol(s) for sp in self._species for s in sp if s != VACANCY})
        pair = "".join(names) * 2 if len(names) == 1 else "occupied"
        self.feature_names = [f"{pair}_pairs_{lo:g}-{hi:g}A_per_fu" for lo, hi in zip(self.edges, self.edges[1:])]
        self.feature_names.append(f"{pair}_min_distance_A")
        self._tables: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"LiLiDistanceFeaturizer({self.parent.composition.reduced_formula}, edges={self.edges})"

    def _supercell_pairs(self, hnf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label-column pairs ``(P, 2)`` in a supercell sorted by distance, their distance (Å), shell starts."""
        key = tuple(int(x) for x in hnf.ravel())
        if key not in self._tables:
            d = len(self._sites)
            centre, neighbour, offsets, dist = self._pairs
            shifts = translations(hnf)
            t_here = np.arange(len(shifts))[:, None].repeat(len(centre), axis=1)
            t_there = translation_index((shifts[:, None, :] + offsets[None]).reshape(-1, 3), hnf)
            cols = np.stack([(t_here * d + centre).ravel(), t_there * d + np.tile(neighbour, len(shifts))], axis=1)
            every = np.tile(dist, len(shifts))
            by_distance = np.argsort(every, kind="stable")
            starts = np.searchsorted(every[by_distance], self.edges[:-1], side="left")
            self._tables[key] = (cols[by_distance], every[by_distance], starts)
        return self._tables[key]

    def transform(self, x: Any) -> np.ndarray:
        """Shell counts per formula unit and shortest distance (Å) for every ordering in ``x``."""
        orderings = orderings_of(x)
        _check_same_parent(self.parent, orderings)
        d = len(self._sites)
        n_shells = len(self.edges) - 1
        out = np.empty((len(orderings), n_shells + 1))
        for h in np.unique(orderings.hnf_index):
            rows = np.flatnonzero(orderings.hnf_index == h)
            hnf = orderings.hnfs[h]
            n_cells = int(round(abs(np.linalg.det(hnf))))
            width = n_cells * d
            cols, dist, starts = self._supercell_pairs(hnf)
            vacancy = self._vacancy[np.arange(width) % d]
            step = max(1, _BLOCK // max(len(cols), 1))
            for start in range(0, len(rows), step):
                chunk = rows[start: start + step]
                occupied = (orderings.occupations[chunk, :width] != vacancy).T  # (width, rows)
                both = occupied[cols[:, 0]] & occupied[cols[:, 1]]  # (pairs, rows)
                # Pairs are sorted by distance, so each shell is a contiguous block of rows.
                padded = np.concatenate([both, np.zeros((1, len(chunk)), dtype=bool)])
                counts = np.add.reduceat(padded.astype(np.int32), starts, axis=0)
                counts[starts == np.append(starts[1:], len(cols))] = 0  # empty shells
                out[chunk, :n_shells] = counts.T / (2 * n_cells * self._formula_units)
                first = both.argmax(axis=0)
                found = both[first, np.arange(len(chunk))]
                out[chunk, n_shells] = np.where(found, dist[first], self.edges[-1])
        return out


class FunctionFeaturizer:
    """A plain function ``f(orderings) -> array`` used as a featurizer.

    Parameters
    ----------
    func
        Called with an :class:`Orderings` table; returns ``(n,)`` or ``(n, k)`` numbers.
    names
        Column names; ``<function name>_<k>`` by default.
    """

    def __init__(self, func: Callable[[Orderings], Any], names: Sequence[str] | None = None) -> None:
        self.func = func
        self.names = None if names is None else list(names)

    def __repr__(self) -> str:
        return f"FunctionFeaturizer({getattr(self.func, '__name__', repr(self.func))})"

    @property
    def feature_names(self) -> list[str]:
        """Names given, or generated from the width of the last result."""
        if self.names is not None:
            return self.names
        if not hasattr(self, "_width"):
            raise FeaturizerError("Call transform once (or pass names=...) before asking for feature_names.")
        stem = getattr(self.func, "__name__", "feature")
        return [f"{stem}_{k}" for k in range(self._width)]

    def transform(self, x: Any) -> np.ndarray:
        """Call the function on the table behind ``x`` and check its result."""
        orderings = orderings_of(x)
        result = np.asarray(self.func(orderings), dtype=float)
        if result.ndim == 1:
            result = result[:, None]
        if result.ndim != 2 or result.shape[0] != len(orderings):
            raise FeaturizerError(
                f"A featurizer function must return one row per ordering: {len(orderings)} rows expected, "
                f"got an array of shape {result.shape}."
            )
        if not np.all(np.isfinite(result)):
            raise FeaturizerError(
                "The featurizer function returned NaN or infinite values; surrogates cannot use them."
            )
        if self.names is not None and len(self.names) != result.shape[1]:
            raise FeaturizerError(f"{len(self.names)} names were given for {result.shape[1]} feature columns.")
        self._width = result.shape[1]
        return result


class FidelityFeaturizer:
    """Cluster vectors plus the cheap energies of each candidate: a multi-fidelity featurizer.

    Cheap fidelities, such as the Ewald energy and the unrelaxed CHGNet energy,
    are known for every candidate before the first expensive label. Appended to
    the cluster vector ``x``, they let a linear surrogate fit

    ``E_relaxed ≈ J_0 + Σ_k J_k x_k + Σ_f a_f E_f``,

    so what the cheap energies already say is learnt from a few coefficients
    ``a_f``, and the cluster terms only learn what relaxation changes.

    Parameters
    ----------
    columns
        Columns of the pool's ``reference`` table to append (eV/atom).
    base
        Featurizer of the structure; pair cluster vectors of the pool's parent by default.
    """

    def __init__(self, columns: Sequence[str] = ("unrelaxed_energy_per_atom", "ewald_energy_per_atom"),
                 base: Featurizer | None = None) -> None:
        self.columns = list(columns)
        self.base = base

    def __repr__(self) -> str:
        return f"FidelityFeaturizer(columns={self.columns!r}, base={self.base!r})"

    @property
    def feature_names(self) -> list[str]:
        """The base featurizer's names, then the fidelity columns."""
        if self.base is None:
            raise FeaturizerError("Call transform once (or pass base=...) before asking for feature_names.")
        return list(self.base.feature_names) + self.columns

    def transform(self, x: Any) -> np.ndarray:
        """Features of every candidate of a pool: ``(n, k + len(columns))``."""
        reference = getattr(x, "reference", None)
        if reference is None:
            raise FeaturizerError(
                "FidelityFeaturizer needs a pool (it reads the cheap energies from pool.reference); "
                f"got {type(x).__name__}."
            )
        missing = [c for c in self.columns if c not in reference.columns]
        if missing:
            raise FeaturizerError(
                f"The pool has no column {', '.join(map(repr, missing))}; its columns are "
                f"{', '.join(reference.columns)}."
            )
        cheap = reference[self.columns].to_numpy(dtype=float)
        if not np.all(np.isfinite(cheap)):
            raise FeaturizerError(f"Some candidates have no finite value in {self.columns}.")
        if self.base is None:
            self.base = ClusterVectorFeaturizer(orderings_of(x).parent)
        return np.hstack([self.base.transform(x), cheap])


def as_featurizer(obj: Any, names: Sequence[str] | None = None) -> Featurizer:
    """Return ``obj`` if it is a featurizer, or wrap a plain function in :class:`FunctionFeaturizer`.

    Parameters
    ----------
    obj
        An object with ``.transform`` and ``.feature_names``, or a callable
        ``f(orderings) -> array``.
    names
        Column names for a wrapped function.
    """
    if callable(getattr(obj, "transform", None)):
        return obj
    if callable(obj):
        return FunctionFeaturizer(obj, names)
    raise FeaturizerError(
        f"Expected a featurizer (an object with .transform(orderings) and .feature_names) or a function "
        f"f(orderings) -> array; got {type(obj).__name__}."
    )
