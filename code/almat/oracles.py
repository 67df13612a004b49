"""Oracles: whoever or whatever answers "what is the energy of this candidate?".

In a real campaign the oracle is an expensive calculation (DFT) or a person.
An oracle (:class:`Oracle`) says what it can do, so that the campaign and the
labeling app never have to guess:

- ``name``: a short string recorded with every label it gives;
- ``action``: what the app's button says, e.g. "Relax with CHGNet";
- ``max_steps``: an oracle that works in steps (a relaxation) calls
  ``on_step(step, fmax)`` after each one, up to this many; ``None``: no progress;
- ``target_fmax``: the largest force (eV/Å) at which such an oracle stops, the
  goal its progress moves towards; ``None``: no force target;
- ``parallel``: whether ``label`` may run in another process (Dask) for a batch;
- ``label(pool, index, on_step=None) -> Label``: the energy per atom (eV/atom)
  of candidate ``index`` of ``pool``.

Your own oracle needs only ``name`` and ``label(pool, index)``:
:func:`as_oracle`, which the campaign calls once, fills in the rest.

An oracle may refuse a candidate, for instance because the calculation did
not converge or the energy is unknown. It then raises :class:`OracleRefusal`
with a reason (or returns a :class:`Label` with ``skipped=True``); the
campaign records the candidate as skipped and moves on. The human oracle is
the labeling widget, which calls :meth:`almat.campaign.Campaign.submit`.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from almat.errors import AlmatError
from almat.relaxation import Relaxation, RelaxationsJournal, RelaxSettings, settings_dict
from almat.scoring import chgnet_version

if TYPE_CHECKING:
    from almat.pool import Pool


@dataclass(frozen=True)
class Label:
    """One answer of an oracle.

    Attributes
    ----------
    energy
        The candidate's energy per atom, in eV/atom; ``None`` when it was skipped.
    source
        Where the energy comes from, e.g. ``"CHGNet 0.3.0"`` or ``"table"``.
    skipped
        True when the oracle refused the candidate.
    reason
        Why it was skipped (empty otherwise).
    """

    energy: float | None
    source: str
    skipped: bool = False
    reason: str = ""


class OracleRefusal(AlmatError):
    """An oracle declines to label a candidate; the campaign records a skip.

    Parameters
    ----------
    reason
        One sentence a learner can read in the campaign history.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TableError(AlmatError, ValueError):
    """A :class:`TableOracle`'s table does not fit the pool (wrong length, or no such column)."""


class OracleError(AlmatError, TypeError):
    """An object given as an oracle lacks what an oracle needs, or declares impossible values."""


#: What every oracle declares besides ``label``; :func:`as_oracle` fills in the missing ones.
DECLARED = ("name", "action", "max_steps", "target_fmax", "parallel")


class Oracle(Protocol):
    """What a campaign and the labeling app need from an oracle.

    Every oracle of almat declares all of these; :func:`as_oracle` makes one
    of any object with a ``name`` and a ``label(pool, index)`` method.
    """

    name: str  # recorded with every label it gives
    action: str  # what the app's button says, e.g. "Look up in table", "Relax with CHGNet"
    max_steps: int | None  # it calls on_step(step, fmax) after each step, up to this many; None: no progress
    target_fmax: float | None  # eV/Å: on_step's fmax falls to this when it is done; None: no force target
    parallel: bool  # label() may run in another process (Dask) for a batch

    def label(self, pool: Pool, index: int,
              on_step: Callable[[int, float], None] | None = None) -> Label: ...


class OwnOracle:
    """Your own oracle, with what it does not declare filled in (see :func:`as_oracle`).

    ``action`` defaults to "Compute with NAME", ``max_steps`` and ``target_fmax``
    to None, ``parallel`` to False (it may hold files, connections or state that
    another process cannot share). An oracle that declares ``max_steps``
    promises that its ``label`` takes ``on_step``; one that does not is called
    as ``label(pool, index)``. A plain number returned by ``label`` becomes a
    :class:`Label` whose source is the oracle's name.

    Parameters
    ----------
    oracle
        Any object with a ``name`` and a ``label(pool, index)`` method.
    """

    def __init__(self, oracle: object):
        self.oracle = oracle
        self.name = str(oracle.name)
        self.action = getattr(oracle, "action", f"Compute with {self.name}")
        self.max_steps = getattr(oracle, "max_steps", None)
        self.target_fmax = getattr(oracle, "target_fmax", None)
        self.parallel = getattr(oracle, "parallel", False)

    def __repr__(self) -> str:
        return f"OwnOracle({self.oracle!r})"

    def label(self, pool: Pool, index: int,
              on_step: Callable[[int, float], None] | None = None) -> Label:
        """The wrapped oracle's answer, as a :class:`Label`."""
        if self.max_steps is None:
            answer = self.oracle.label(pool, index)
        else:
            answer = self.oracle.label(pool, index, on_step=on_step)
        return answer if isinstance(answer, Label) else Label(answer, self.name)


def _declaration_problem(oracle: object) -> str | None:
    """What is wrong with the values an oracle declares (one phrase), or None."""
    action, steps, fmax = oracle.action, oracle.max_steps, oracle.target_fmax
    if not isinstance(action, str) or not action.strip():
        return f"its action must be the button's text; got {action!r}"
    if steps is not None and (not isinstance(steps, numbers.Integral) or isinstance(steps, bool)
                              or steps < 1):
        return f"its max_steps must be a positive whole number or None; got {steps!r}"
    if fmax is not None and (not isinstance(fmax, numbers.Real) or isinstance(fmax, bool)
                             or not math.isfinite(fmax) or fmax <= 0):
        return f"its target_fmax must be a positive force in eV/Å or None; got {fmax!r}"
    if not isinstance(oracle.parallel, (bool, np.bool_)):
        return f"its parallel must be True or False; got {oracle.parallel!r}"
    return None


def as_oracle(oracle: object) -> Oracle:
    """An :class:`Oracle`: ``oracle`` itself if it declares everything, else an :class:`OwnOracle`.

    Raises
    ------
    OracleError
        ``oracle`` has no ``name`` (text) or no ``label`` method, or declares
        an impossible value (an empty action, ``max_steps=0``, a negative force).
    """
    name = getattr(oracle, "name", None)
    if not isinstance(name, str) or not name.strip() or not callable(getattr(oracle, "label", None)):
        raise OracleError(
            f"{oracle!r} is not an oracle: give an object with a name (text) and a method "
            "label(pool, index) that returns the energy per atom (eV/atom) as an almat.Label.")
    adapted = oracle if all(hasattr(oracle, a) for a in DECLARED) else OwnOracle(oracle)
    problem = _declaration_problem(adapted)
    if problem is not None:
        raise OracleError(f"Oracle {name!r} cannot be used: {problem}.")
    return adapted


class CHGNetOracle:
    """CHGNet energy per atom of the candidate's structure: the stand-in for DFT.

    Each call builds the structure of one candidate and scores it with
    :func:`almat.scoring.score_structures` (about 0.1 s on a laptop CPU once
    the model is loaded; loading takes a few seconds the first time).

    Parameters
    ----------
    model
        A loaded CHGNet; the pretrained one (:func:`almat.scoring.load_chgnet`) by default.
    cache
        Passed to ``score_structures``: ``True`` reuses energies computed
        before in this session.
    """

    name = "chgnet"
    action = "Compute with CHGNet"
    max_steps = None
    target_fmax = None
    parallel = True

    def __init__(self, model=None, cache=True):
        self.model = model
        self.cache = cache

    def __repr__(self) -> str:
        return "CHGNetOracle()" if self.model is None else f"CHGNetOracle(model={self.model!r})"

    def label(self, pool: Pool, index: int,
              on_step: Callable[[int, float], None] | None = None) -> Label:
        """Score candidate ``index`` of ``pool`` with CHGNet (eV/atom); one step, no ``on_step``."""
        from almat.scoring import load_chgnet, score_structures

        model = load_chgnet() if self.model is None else self.model
        scores = score_structures([pool.structure(int(index))], model=model, cache=self.cache)
        version = getattr(model, "version", None)
        source = f"CHGNet {version}" if version else "CHGNet"
        return Label(float(scores["energy_per_atom"].iloc[0]), source)


def default_cache_dir() -> Path:
    """Where oracles keep results between sessions: ``$ALMAT_CACHE_DIR`` or ``./.almat-cache``."""
    return Path(os.environ.get("ALMAT_CACHE_DIR", ".almat-cache"))


class RelaxedCHGNetOracle:
    """CHGNet energy per atom after relaxing the candidate: the expensive label.

    Each call relaxes one candidate with :func:`almat.relaxation.relax_structure`
    (5-15 s on a laptop for the lesson's 13- and 26-atom cells) and keeps the
    result, relaxed structure included, in a relaxations file under the
    candidate's :meth:`~almat.orderings.Orderings.key`, so that asking again,
    in this session or after a kernel restart, answers at once with the same
    number. The file is read once, on the first label, and appended to after
    each relaxation; its header names the settings, the CHGNet version and
    the pool's parent structure, and a file made otherwise is refused before
    any relaxation. A relaxation that does not converge within
    ``settings.steps`` is refused, as a DFT run that does not converge would be.

    Parameters
    ----------
    settings
        Force threshold (eV/Å), step limit and cell relaxation.
    cache
        The relaxations file; ``None`` keeps nothing. By default one file per
        settings, CHGNet version and parent structure in :func:`default_cache_dir`
        (see :meth:`cache_path`), so other settings start another file.
    model
        A loaded CHGNet; the pretrained one by default.
    """

    name = "chgnet-relaxed"
    action = "Relax with CHGNet"
    parallel = True

    def __init__(self, settings: RelaxSettings = RelaxSettings(),
                 cache: str | Path | None = "default", model=None):
        self.settings = settings
        self.cache = cache
        self.model = model
        self._opened: dict[tuple[Path, str], tuple[RelaxationsJournal, dict[str, dict]]] = {}

    def __repr__(self) -> str:
        return f"RelaxedCHGNetOracle(settings={self.settings!r}, cache={self.cache!r})"

    @property
    def max_steps(self) -> int:
        """Most optimizer steps one label can take (for progress bars)."""
        return self.settings.steps

    @property
    def target_fmax(self) -> float:
        """The largest force (eV/Å) at which a relaxation has converged."""
        return self.settings.fmax

    def cache_path(self, pool: Pool) -> Path | None:
        """The relaxations file for candidates of ``pool``, or None without a cache.

        The default is ``relaxations-fmax{fmax}-steps{steps}-{cell}-{hash}.jsonl``,
        the hash covering the CHGNet version and the pool's parent structure.
        """
        return self._path(parent_fingerprint(pool))

    def _path(self, parent: str) -> Path | None:
        if self.cache is None:
            return None
        if not (isinstance(self.cache, str) and self.cache == "default"):
            return Path(self.cache)
        s = self.settings
        identity = json.dumps([settings_dict(s), chgnet_version(), parent])
        digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
        cell = "cell" if s.relax_cell else "fixedcell"
        return default_cache_dir() / f"relaxations-fmax{s.fmax:g}-steps{s.steps}-{cell}-{digest}.jsonl"

    def _cache(self, pool: Pool) -> tuple[RelaxationsJournal, dict[str, dict]] | None:
        """The cache's journal and its records, read on first use; refuses a file it cannot use."""
        if self.cache is None:
            return None
        parent = parent_fingerprint(pool)
        path = self._path(parent)
        if (path, parent) not in self._opened:
            journal = RelaxationsJournal(path, self.settings, parent)
            self._opened[path, parent] = (journal, {r["key"]: r for r in journal.read()})
        return self._opened[path, parent]

    def relaxation(self, pool: Pool, index: int,
                   on_step: Callable[[int, float], None] | None = None) -> Relaxation:
        """The full :class:`~almat.relaxation.Relaxation` of candidate ``index``, cached.

        Raises
        ------
        almat.journal.JournalError
            Before relaxing, if the cache cannot be used: a folder, a place
            that cannot be written, a file of other settings, or a damaged line.
        """
        from almat.relaxation import relax_structure

        cache = self._cache(pool)
        key = pool.orderings.key(int(index))
        if cache is None or key not in cache[1]:
            result = relax_structure(pool.structure(int(index)), self.model, self.settings, on_step=on_step)
            if cache is None:
                return result
            journal, records = cache
            for record in journal.append([{"key": key, **result.to_record()}]):
                records.setdefault(record["key"], record)
        return Relaxation.from_record(cache[1][key])

    def label(self, pool: Pool, index: int,
              on_step: Callable[[int, float], None] | None = None) -> Label:
        """Relaxed CHGNet energy of candidate ``index`` (eV/atom).

        ``on_step(step, fmax)`` is called after every FIRE step, fmax in eV/Å.
        """
        result = self.relaxation(pool, index, on_step)
        if not result.converged:
            raise OracleRefusal(
                f"the relaxation did not reach fmax {self.settings.fmax} eV/Å in "
                f"{self.settings.steps} steps")
        return Label(result.energy_per_atom, f"CHGNet {chgnet_version()} relaxed")


def parent_fingerprint(pool: Pool) -> str:
    """A hash of the parent structure and its disordered sites: what makes candidate keys comparable.

    :meth:`~almat.orderings.Orderings.key` names an ordering by its supercell
    and labels, which mean the same candidate only on the same parent.
    """
    o = pool.orderings
    parent = o.parent
    text = json.dumps([np.round(parent.lattice.matrix, 6).tolist(),
                       [site.species_string for site in parent],
                       (np.round(np.mod(parent.frac_coords, 1.0), 6) % 1.0).tolist(),
                       np.asarray(o.sites).tolist(), [list(s) for s in o.species]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TableOracle:
    """Energies looked up in a table, e.g. the pool's precomputed CHGNet reference.

    Looking up is instant, which makes benchmarks of many campaigns cheap;
    the answers are the same as :class:`CHGNetOracle` would give for the
    shipped pool. Candidates without a finite value are refused.

    Parameters
    ----------
    values
        ``None``: the pool's ``reference["energy_per_atom"]``. A string: that
        column of ``pool.reference``. A :class:`pandas.Series`: values indexed
        by candidate id. Anything else: an array with one value per candidate,
        in pool order (eV/atom).
    name
        Recorded as ``labelled_by`` in the campaign history.
    """

    action = "Look up in table"
    max_steps = None
    target_fmax = None
    parallel = True

    def __init__(self, values: str | pd.Series | np.ndarray | list[float] | None = None,
                 name: str = "table"):
        self.values = values
        self.name = name

    def __repr__(self) -> str:
        return f"TableOracle(name={self.name!r})"

    def _lookup(self, pool: Pool, index: int) -> float:
        values = self.values
        if values is None or isinstance(values, str):
            column = "energy_per_atom" if values is None else values
            if column not in pool.reference.columns:
                raise TableError(
                    f"TableOracle: pool {pool.name!r} has no reference column {column!r}; "
                    f"its columns are {', '.join(pool.reference.columns)}."
                )
            return float(pool.reference[column].iloc[index])
        if isinstance(values, pd.Series):
            key = pool.ids[index]
            if key not in values.index:
                raise OracleRefusal(f"the table has no value for candidate {key}")
            return float(values.loc[key])
        array = np.asarray(values, dtype=float)
        if array.shape != (len(pool),):
            raise TableError(
                f"TableOracle: got {array.shape[0] if array.ndim else 0} values for a pool of "
                f"{len(pool)} candidates. Pass one value per candidate in pool order, or a "
                "pandas Series indexed by candidate id."
            )
        return float(array[index])

    def label(self, pool: Pool, index: int,
              on_step: Callable[[int, float], None] | None = None) -> Label:
        """The table's value for candidate ``index``; refuses NaN and infinite entries."""
        value = self._lookup(pool, int(index))
        if not np.isfinite(value):
            raise OracleRefusal(f"the table has no finite energy for candidate {pool.ids[index]}")
        return Label(value, self.name)
