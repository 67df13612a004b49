"""Oracles: whoever or whatever answers "what is the energy of this candidate?".

In a real campaign the oracle is an expensive calculation (DFT) or a person.
An oracle here is any object with

- ``name``: a short string recorded with every label it gives, and
- ``label(pool, index) -> Label``: the energy per atom (eV/atom) of candidate
  ``index`` of ``pool``.

An oracle may refuse a candidate, for instance because the calculation did
not converge or the energy is unknown. It then raises :class:`OracleRefusal`
with a reason (or returns a :class:`Label` with ``skipped=True``); the
campaign records the candidate as skipped and moves on. The human oracle is
the labeling widget, which calls :meth:`almat.campaign.Campaign.submit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from almat.errors import AlmatError

if TYPE_CHECKING:
    from almat.pool import Pool


@dataclass(frozen=True)
class Label:
    """One answer of an oracle.

    Attributes
    ----------
    value
        Energy per atom in eV/atom; ``None`` when the candidate was skipped.
    source
        Where the value comes from, e.g. ``"CHGNet 0.3.0"`` or ``"table"``.
    skipped
        True when the oracle refused the candidate.
    reason
        Why it was skipped (empty otherwise).
    """

    value: float | None
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


class Oracle(Protocol):
    """What a campaign needs from an oracle (any object with these two members)."""

    name: str

    def label(self, pool: Pool, index: int) -> Label: ...


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

    def __init__(self, model=None, cache=True):
        self.model = model
        self.cache = cache

    def __repr__(self) -> str:
        return "CHGNetOracle()" if self.model is None else f"CHGNetOracle(model={self.model!r})"

    def label(self, pool: Pool, index: int) -> Label:
        """Score candidate ``index`` of ``pool`` with CHGNet (eV/atom)."""
        from almat.scoring import load_chgnet, score_structures

        model = load_chgnet() if self.model is None else self.model
        scores = score_structures([pool.structure(int(index))], model=model, cache=self.cache)
        version = getattr(model, "version", None)
        source = f"CHGNet {version}" if version else "CHGNet"
        return Label(float(scores["energy_per_atom"].iloc[0]), source)


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
                raise ValueError(
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
            raise ValueError(
                f"TableOracle: got {array.shape[0] if array.ndim else 0} values for a pool of "
                f"{len(pool)} candidates. Pass one value per candidate in pool order, or a "
                "pandas Series indexed by candidate id."
            )
        return float(array[index])

    def label(self, pool: Pool, index: int) -> Label:
        """The table's value for candidate ``index``; refuses NaN and infinite entries."""
        value = self._lookup(pool, int(index))
        if not np.isfinite(value):
            raise OracleRefusal(f"the table has no finite energy for candidate {pool.ids[index]}")
        return Label(value, self.name)
