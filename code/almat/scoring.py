"""Scoring structures with the pretrained universal potential CHGNet.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031, 2023) predicts the energy
(eV/atom), forces (eV/Å), stress (GPa) and magnetic moments (μB) of a
structure. Its pretrained weights ship inside the ``chgnet`` wheel, so no
network is needed. ``CHGNet.predict_structure`` returns a dict with the keys
``e``, ``f``, ``s`` and ``m``; :func:`score_structures` turns a list of
structures into a tidy DataFrame instead.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import DummySpecies, Structure

from almat.errors import AlmatError
from almat.journal import Journal, JournalError, JournalWriteError
from almat.structures import StructureError, check_structure, warn_if_crowded

#: Structures turned into graphs and predicted at a time; bounds peak memory.
CHUNK_SIZE = 64
#: CHGNet's own batch size within a chunk, energies only.
BATCH_SIZE = 16
#: Batch size with forces or stress: CHGNet keeps the graph of its gradients
#: (``create_graph=True``), so memory grows fast with the batch.
FORCE_BATCH_SIZE = 4
#: Structures whose results :data:`DEFAULT_CACHE` holds; the least recently used go first.
#: An energy-only entry takes about 0.2 kB, one with forces of a 39-atom cell about 1.5 kB.
DEFAULT_CACHE_SIZE = 10_000


@lru_cache(maxsize=2)
def load_chgnet(device: str = "cpu"):
    """Load the pretrained CHGNet once per process (offline: the weights are in the wheel).

    Parameters
    ----------
    device
        ``"cpu"`` by default, so that results are the same on every laptop.
    """
    import contextlib
    import io

    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its banner regardless of verbose
        return CHGNet.load(use_device=device, verbose=False)


def chgnet_version() -> str:
    """The installed CHGNet's version, recorded with every result it computed."""
    import chgnet

    return chgnet.__version__


@contextmanager
def isolated_atom_response(model, response: str = "error") -> Iterator[None]:
    """Let ``model`` treat isolated atoms with ``response`` inside the block, then restore the caller's.

    CHGNet keeps this setting on the model's graph converter, which is shared:
    ``"error"`` refuses a structure with an atom that has no neighbour within
    the cutoff, ``"warn"`` and ``"ignore"`` let it through.
    """
    converter = model.graph_converter
    before = converter.on_isolated_atoms
    converter.set_isolated_atom_response(response)
    try:
        yield
    finally:
        converter.set_isolated_atom_response(before)


def structure_key(structure: Structure) -> str:
    """A hash of lattice, species and fractional coordinates (rounded to 1e-6)."""
    lat = np.round(structure.lattice.matrix, 6)
    frac = np.round(np.mod(structure.frac_coords, 1.0), 6) % 1.0
    text = json.dumps([lat.tolist(), [str(s) for s in structure.species], frac.tolist()])
    return hashlib.sha1(text.encode()).hexdigest()


class ScoreCacheWarning(UserWarning):
    """A score-cache file cannot be opened or appended to; results are still returned."""


class ScoreCacheError(JournalError):
    """A score-cache file is not one, was written by another CHGNet, or has a damaged line."""


class ScoringError(AlmatError, ValueError):
    """A structure cannot be scored by CHGNet (an element it does not know, an isolated atom...)."""


class NotAStructureError(ScoringError, TypeError):
    """Something that is not a pymatgen ``Structure`` was given to score."""


def _copy(result: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in result.items()}


class ScoreJournal(Journal):
    """A score-cache file: energies (eV/atom) by model and structure, for one CHGNet version."""

    kind, what, error = "almat-scores", "score cache", ScoreCacheError
    repair = ("The file was edited by hand or damaged; delete that line, or the whole file: it only "
              "holds results that are computed again when missing.")

    def __init__(self, path: str | Path):
        super().__init__(path, {"chgnet": chgnet_version()}, identity=["chgnet"])

    def mismatch(self, name: str, found, expected) -> str:
        return (f"{self.path} holds energies of CHGNet {found}; this is CHGNet {expected}. Give "
                "another file, or delete this one to compute them again with this version.")

    def key(self, record: dict) -> tuple:
        return record["model"], record["key"]

    def check_record(self, record: dict) -> str | None:
        if not (isinstance(record.get("model"), str) and isinstance(record.get("key"), str)):
            return "no model and structure key"
        e = record.get("e")
        if not isinstance(e, (int, float)) or isinstance(e, bool) or not np.isfinite(e):
            return f"the energy {e!r} is not a finite number"
        return None


class ScoreCache:
    """Results of :func:`score_structures`, keyed by model weights and structure.

    The model part of the key is :func:`model_fingerprint`, a hash of the
    weights, so a cache file is valid in any later process and a retrained or
    fine-tuned model never gets the energies of another. Results are handed
    out and stored as copies: changing a returned forces array changes nothing
    here. Each holds what was computed: energies, and forces, stress or
    moments only when they were asked for.

    Parameters
    ----------
    path
        Optional JSON Lines file (a shared :class:`~almat.journal.Journal`):
        energies are appended there as they are computed, and read back on
        creation, so they survive a kernel restart. A file of another CHGNet
        version or with a damaged line is refused (:class:`ScoreCacheError`);
        one that cannot be written gives a :class:`ScoreCacheWarning`.
    max_size
        Most structures held in memory, the least recently used dropped
        first; ``None`` keeps all.
    """

    def __init__(self, path: str | Path | None = None, max_size: int | None = None):
        self.path = Path(path) if path is not None else None
        self.max_size = max_size
        self._store: OrderedDict[tuple[str, str], dict[str, object]] = OrderedDict()
        self._journal = None if path is None else ScoreJournal(path)
        if self._journal is not None:
            try:
                self._keep(self._journal.read(create=False))
            except JournalWriteError as exc:
                self._warn(f"{exc} The score cache is not used: results are computed again and not saved.")
                self._journal = None

    def __len__(self) -> int:
        return len(self._store)

    def get(self, model: str, key: str, task: str) -> dict | None:
        """A copy of the stored result with every quantity of ``task``, or ``None``."""
        hit = self._store.get((model, key))
        if hit is None or not all(t in hit for t in task):
            return None
        self._store.move_to_end((model, key))
        return _copy(hit)

    def put(self, model: str, key: str, result: dict) -> None:
        """Store a copy of ``result`` (see :meth:`put_many`)."""
        self.put_many(model, {key: result})

    def put_many(self, model: str, results: dict[str, dict]) -> None:
        """Store copies of results by structure key, and append their energies to the file, if any.

        The energies go to the file in one write and one fsync. A file that
        cannot be written (full disk, no permission) gives a
        :class:`ScoreCacheWarning` and no error: the results are still returned.
        """
        for key, result in results.items():
            self._set((model, key), _copy(result))
        if self._journal is None:
            return
        try:
            self._keep(self._journal.append(
                [{"model": model, "key": k, "e": float(r["e"])} for k, r in results.items()]))
        except JournalError as exc:
            self._warn(f"Cannot append to the score cache: {exc} Results are still returned but "
                       "will be computed again next time.")

    def _keep(self, records: list[dict]) -> None:
        for r in records:
            if (r["model"], r["key"]) not in self._store:
                self._set((r["model"], r["key"]), {"e": float(r["e"])})

    def _set(self, key: tuple[str, str], result: dict) -> None:
        self._store.setdefault(key, {}).update(result)
        self._store.move_to_end(key)
        if self.max_size is not None:
            while len(self._store) > self.max_size:
                self._store.popitem(last=False)

    @staticmethod
    def _warn(message: str) -> None:
        warnings.warn(message, ScoreCacheWarning, stacklevel=4)

    def clear(self) -> None:
        """Forget the results held in memory (the file, if any, is kept)."""
        self._store.clear()


#: The cache used when ``score_structures(..., cache=True)``: in memory only, at most
#: :data:`DEFAULT_CACHE_SIZE` structures. It is the module's only state besides the loaded model.
DEFAULT_CACHE = ScoreCache(max_size=DEFAULT_CACHE_SIZE)


def _task(forces: bool, stress: bool, magmoms: bool) -> str:
    if stress and not forces:
        forces = True  # CHGNet computes stress together with forces
    task = "e" + ("f" if forces else "") + ("s" if stress else "") + ("m" if magmoms else "")
    return {"em": "em", "efm": "efsm", "esm": "efsm"}.get(task, task)


def model_fingerprint(model) -> str:
    """Name a model by its version and a hash of its weights (``state_dict``).

    Two loads of the same weights, in any process, get the same name; any
    change of a weight gives another. Hashing CHGNet's 400,000 weights takes
    a few milliseconds.
    """
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"chgnet-{getattr(model, 'version', None)}-{h.hexdigest()[:16]}"


def _known_elements(model) -> int:
    """Largest atomic number the model has an embedding for (94 for CHGNet 0.3.0)."""
    return int(model.atom_embedding.embedding.num_embeddings)


def _check_scorable(structure: Structure, name: str, max_z: int) -> Structure:
    """Refuse what CHGNet cannot score and return the structure to predict (wrapped into its cell)."""
    if not structure.is_ordered:
        raise StructureError(
            f"{name} ({structure.composition}) still has partially occupied sites; CHGNet scores "
            "ordered structures. Enumerate orderings first (almat.enumerate_orderings)."
        )
    check_structure(structure, name)
    for site in structure:
        z = 0 if isinstance(site.specie, DummySpecies) else int(site.specie.Z)
        if not 1 <= z <= max_z:
            what = f"{site.specie} (Z = {z})" if z else f"the dummy species {site.specie}, not an element"
            raise ScoringError(
                f"{name} contains {what}; CHGNet was trained on elements H to Pu "
                f"(Z = 1 to {max_z}) only, so it cannot score it. Remove or replace that species "
                "(a vacancy or dummy species 'X' must be removed before scoring)."
            )
    warn_if_crowded(structure, name)
    frac = structure.frac_coords
    if ((frac < 0) | (frac >= 1)).any():
        return Structure(structure.lattice, structure.species, np.mod(frac, 1.0),
                         site_properties=structure.site_properties)
    return structure


def _graph(model, structure: Structure, name: str):
    """CHGNet's graph of a structure; the model must refuse isolated atoms (:func:`isolated_atom_response`)."""
    try:
        return model.graph_converter(structure)
    except ValueError as exc:
        if "isolated atom" not in str(exc):
            raise
        raise ScoringError(
            f"{name} has an atom with no neighbour within CHGNet's {model.graph_converter.atom_graph_cutoff:g} Å "
            "cutoff, so CHGNet cannot score it. A gas-phase atom or a cell far too large for its "
            "atoms gives this; check the lattice parameters."
        ) from None


def _progress(total: int, show: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="CHGNet", unit="structure",
                disable=(total < 200) if show is None else not show)


def _columns(forces: bool, stress: bool, magmoms: bool) -> list[str]:
    return (["formula", "n_atoms", "energy_per_atom", "total_energy"]
            + ["forces"] * (forces or stress) + ["stress"] * stress + ["magmoms"] * magmoms)


def score_structures(structures: Sequence[Structure], *, forces: bool = False,
                     stress: bool = False, magmoms: bool = False, model=None,
                     chunk_size: int = CHUNK_SIZE, batch_size: int | None = None,
                     cache: ScoreCache | bool | None = True,
                     progress: bool | None = None,
                     names: Sequence[str] | None = None) -> pd.DataFrame:
    """Predict CHGNet energies (and optionally forces, stress, moments) of many structures.

    Parameters
    ----------
    structures
        Ordered structures (no partial occupancies).
    forces, stress, magmoms
        Also return forces (eV/Å, ``n_atoms x 3``), stress (GPa, 3x3) and
        magnetic moments (μB per site). Energies alone are about twice as fast.
    model
        A loaded CHGNet; the pretrained one by default.
    chunk_size
        Structures converted to graphs and predicted at a time. Peak memory
        grows with it, not with ``len(structures)``.
    batch_size
        CHGNet's batch size inside a chunk; :data:`BATCH_SIZE` for energies,
        :data:`FORCE_BATCH_SIZE` with forces or stress.
    cache
        ``True`` uses :data:`DEFAULT_CACHE` (in memory, bounded); a
        :class:`ScoreCache` uses that; ``False``/``None`` always recomputes.
    progress
        Show a progress bar; by default only for 200 structures or more.
    names
        What error messages and warnings call each structure (e.g. its file
        name); ``"structure 0"``, ``"structure 1"``, ... by default.

    Returns
    -------
    pandas.DataFrame
        One row per structure, in input order: ``formula``, ``n_atoms``,
        ``energy_per_atom`` (eV/atom), ``total_energy`` (eV), and ``forces``,
        ``stress``, ``magmoms`` columns of arrays when asked for. No
        structures give no rows and the same columns.

    Raises
    ------
    StructureError
        Before any prediction, if a structure is disordered or fails
        :func:`almat.structures.check_structure` (no atoms, NaN, atoms closer
        than 0.5 Å, ...).
    ScoringError
        If a structure holds an element CHGNet does not know, or an atom with
        no neighbour within CHGNet's 6 Å cutoff.

    Warns
    -----
    CrowdedStructureWarning
        For structures with atoms closer than half their covalent bond length.
    """
    import torch

    structures = list(structures)
    names = [f"structure {i}" for i in range(len(structures))] if names is None else list(names)
    if len(names) != len(structures):
        raise ScoringError(f"{len(names)} names were given for {len(structures)} structures; give one "
                           "name per structure, or none.")
    if not structures:
        dtypes = {"n_atoms": "int64", "energy_per_atom": "float64", "total_energy": "float64"}
        return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, object))
                             for c in _columns(forces, stress, magmoms)})
    for i, s in enumerate(structures):
        if not isinstance(s, Structure):
            raise NotAStructureError(f"Item {i} is a {type(s).__name__}, not a pymatgen Structure. "
                                     "Read files with almat.read_structure first.")
    model = load_chgnet() if model is None else model
    max_z = _known_elements(model)
    scored = [_check_scorable(s, n, max_z) for s, n in zip(structures, names)]
    store = DEFAULT_CACHE if cache is True else (cache if isinstance(cache, ScoreCache) else None)
    task = _task(forces, stress, magmoms)
    if batch_size is None:
        batch_size = FORCE_BATCH_SIZE if "f" in task else BATCH_SIZE
    name = model_fingerprint(model) if store is not None else ""
    keys = [structure_key(s) for s in structures]
    results: list[dict | None] = [store.get(name, k, task) if store else None for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    with _progress(len(structures), progress) as bar:
        bar.update(len(structures) - len(todo))
        for start in range(0, len(todo), chunk_size):
            idx = todo[start:start + chunk_size]
            with isolated_atom_response(model, "error"):  # the caller's setting is restored after
                graphs = [_graph(model, scored[i], names[i]) for i in idx]
            with warnings.catch_warnings(), torch.set_grad_enabled("f" in task):
                # CHGNet converts a grad-tracking volume to a float internally; harmless here.
                warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
                preds = model.predict_graph(graphs, task=task, batch_size=batch_size)
            preds = [preds] if isinstance(preds, dict) else preds
            for i, p in zip(idx, preds):
                out = {k: np.asarray(v) for k, v in p.items()}
                out["e"] = float(out["e"])
                results[i] = out
            if store is not None:
                store.put_many(name, {keys[i]: results[i] for i in idx})
            del graphs, preds
            bar.update(len(idx))
    rows = []
    for s, r in zip(structures, results):
        row = {"formula": s.composition.reduced_formula, "n_atoms": len(s),
               "energy_per_atom": r["e"], "total_energy": r["e"] * len(s)}
        if forces or stress:
            row["forces"] = r["f"]
        if stress:
            row["stress"] = r["s"]
        if magmoms:
            row["magmoms"] = r["m"]
        rows.append(row)
    return pd.DataFrame(rows, columns=_columns(forces, stress, magmoms))
