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
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

#: Structures turned into graphs and predicted at a time; bounds peak memory.
CHUNK_SIZE = 64
#: CHGNet's own batch size within a chunk, energies only.
BATCH_SIZE = 16
#: Batch size with forces or stress: CHGNet keeps the graph of its gradients
#: (``create_graph=True``), so memory grows fast with the batch.
FORCE_BATCH_SIZE = 4


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


def structure_key(structure: Structure) -> str:
    """A hash of lattice, species and fractional coordinates (rounded to 1e-6)."""
    lat = np.round(structure.lattice.matrix, 6)
    frac = np.round(np.mod(structure.frac_coords, 1.0), 6) % 1.0
    text = json.dumps([lat.tolist(), [str(s) for s in structure.species], frac.tolist()])
    return hashlib.sha1(text.encode()).hexdigest()


class ScoreCache:
    """Results of :func:`score_structures`, keyed by structure and model.

    Parameters
    ----------
    path
        Optional JSON Lines file: energies are appended there as they are
        computed and read back on creation, so they survive a kernel restart.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._store: dict[tuple[str, str], dict[str, object]] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self._store[(rec["model"], rec["key"])] = {"e": rec["e"]}

    def __len__(self) -> int:
        return len(self._store)

    def get(self, model: str, key: str, task: str) -> dict | None:
        hit = self._store.get((model, key))
        return hit if hit is not None and all(t in hit for t in task) else None

    def put(self, model: str, key: str, result: dict) -> None:
        self._store.setdefault((model, key), {}).update(result)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(json.dumps({"model": model, "key": key, "e": float(result["e"])}) + "\n")

    def clear(self) -> None:
        self._store.clear()


#: The cache used when ``score_structures(..., cache=True)``.
DEFAULT_CACHE = ScoreCache()


def _task(forces: bool, stress: bool, magmoms: bool) -> str:
    if stress and not forces:
        forces = True  # CHGNet computes stress together with forces
    task = "e" + ("f" if forces else "") + ("s" if stress else "") + ("m" if magmoms else "")
    return {"em": "em", "efm": "efsm", "esm": "efsm"}.get(task, task)


def _model_name(model) -> str:
    return f"chgnet-{getattr(model, 'version', None)}-{id(model)}"


def _progress(total: int, show: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="CHGNet", unit="structure",
                disable=(total < 200) if show is None else not show)


def score_structures(structures: Sequence[Structure], *, forces: bool = False,
                     stress: bool = False, magmoms: bool = False, model=None,
                     chunk_size: int = CHUNK_SIZE, batch_size: int | None = None,
                     cache: ScoreCache | bool | None = True,
                     progress: bool | None = None) -> pd.DataFrame:
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
        ``True`` uses :data:`DEFAULT_CACHE`; a :class:`ScoreCache` uses that;
        ``False``/``None`` always recomputes.
    progress
        Show a progress bar; by default only for 200 structures or more.

    Returns
    -------
    pandas.DataFrame
        One row per structure, in input order: ``formula``, ``n_atoms``,
        ``energy_per_atom`` (eV/atom), ``total_energy`` (eV), and ``forces``,
        ``stress``, ``magmoms`` columns of arrays when asked for.
    """
    import torch

    structures = list(structures)
    for i, s in enumerate(structures):
        if not isinstance(s, Structure):
            raise TypeError(f"Item {i} is a {type(s).__name__}, not a pymatgen Structure.")
        if not s.is_ordered:
            raise ValueError(
                f"Structure {i} ({s.composition}) still has partially occupied sites; CHGNet scores "
                "ordered structures. Enumerate orderings first (almat.enumerate_orderings)."
            )
    model = load_chgnet() if model is None else model
    store = DEFAULT_CACHE if cache is True else (cache if isinstance(cache, ScoreCache) else None)
    task = _task(forces, stress, magmoms)
    if batch_size is None:
        batch_size = FORCE_BATCH_SIZE if "f" in task else BATCH_SIZE
    name = _model_name(model)
    keys = [structure_key(s) for s in structures]
    results: list[dict | None] = [store.get(name, k, task) if store else None for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    with _progress(len(structures), progress) as bar:
        bar.update(len(structures) - len(todo))
        for start in range(0, len(todo), chunk_size):
            idx = todo[start:start + chunk_size]
            graphs = [model.graph_converter(structures[i]) for i in idx]
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
                    store.put(name, keys[i], out)
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
    return pd.DataFrame(rows)
