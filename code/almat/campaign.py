"""An active-learning campaign: fit, query, label, record, repeat.

A :class:`Campaign` holds a pool of candidates, an oracle, a surrogate model
and a query strategy. Each round it fits the surrogate on the labels so far,
predicts the energy ``mu`` and its uncertainty ``sigma`` of every candidate,
asks the strategy which unlabelled candidate to label next, and records the
answer. The first ``n_initial`` labels are picked at random.

Labels file
-----------
With ``labels_path`` every event is appended to a JSON Lines file the moment
it happens, so that nothing is lost when the kernel dies. The first line is
a header naming the pool and its fingerprint; each further line is one event:

``label``
    a candidate got an energy (eV/atom) from an oracle or a person;
``skip``
    the oracle refused the candidate, with a reason;
``undo``
    the label or skip of an earlier step (``undoes``) no longer counts.

Nothing is ever rewritten: a wrong label is undone by a new line, not
erased. Creating the campaign again with the same file replays the events
and carries on exactly where it stopped: the random numbers of each round are
drawn from ``numpy.random.default_rng([seed, number of events so far])``, so
they depend on the record, not on what the Python process did before.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from almat.acquisition import STRATEGIES, explain, get_strategy
from almat.features import ClusterVectorFeaturizer, as_featurizer
from almat.oracles import CHGNetOracle, Oracle, OracleRefusal, TableOracle
from almat.pool import Pool
from almat.surrogates import BayesianClusterExpansion

#: Version of the labels file layout, written in its header.
FILE_FORMAT = 1
#: How far (eV/atom) a submitted label may lie outside the pool's reference range.
REFERENCE_MARGIN = 1.0
#: Half-width (eV/atom) of the window around the median label when the pool has no reference.
LABEL_WINDOW = 5.0
#: Fewest labels a surrogate is fitted to; before that candidates are picked at random.
MIN_LABELS_TO_FIT = 2

#: Columns of :attr:`Campaign.history`.
HISTORY_COLUMNS = ["step", "event", "index", "id", "cell_size", "strategy", "mu", "sigma",
                   "label", "labelled_by", "source", "reason", "undoes", "time"]


class CampaignError(ValueError):
    """A campaign cannot do what was asked in its current state."""


class LabelError(CampaignError):
    """A label was refused (not a number, outside the plausible range, or a duplicate).

    Nothing is recorded when this is raised.
    """


class LabelsFileError(CampaignError):
    """A labels file does not belong to the pool, or cannot be read as a labels file."""


class TruncatedLabelsWarning(UserWarning):
    """The last line of a labels file was cut short (e.g. a crash mid-write) and was dropped."""


@dataclass(frozen=True)
class Query:
    """The candidate a campaign proposes to label next.

    Attributes
    ----------
    index, id, cell_size
        Position in the pool, identifier and supercell size of the candidate.
    mu, sigma
        Surrogate prediction and its standard deviation (eV/atom) when it was
        picked; NaN before the surrogate has been fitted.
    strategy
        The strategy that picked it (``"initial"`` for the random start,
        ``"manual"`` for a candidate chosen by hand).
    reason
        One sentence saying why it was picked.
    """

    index: int
    id: str
    cell_size: int
    mu: float
    sigma: float
    strategy: str
    reason: str


def parse_energy(value) -> float:
    """Read an energy per atom (eV/atom) typed by a person or returned by an oracle.

    Accepts numbers and strings such as ``"-4.25"`` (a Unicode minus sign
    is read as ``-``). Raises :class:`LabelError` for anything that is not a
    finite number.
    """
    if isinstance(value, str):
        text = value.strip().replace("\u2212", "-")
        if not text:
            raise LabelError("No value was given. Type the energy per atom in eV, for example -4.25.")
        try:
            number = float(text)
        except ValueError:
            raise LabelError(
                f"{value!r} is not a number. Type the energy per atom in eV with a decimal point, "
                "for example -4.25."
            ) from None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        raise LabelError(
            f"A label must be a number (energy per atom in eV), not {type(value).__name__} {value!r}."
        )
    if not math.isfinite(number):
        raise LabelError(
            f"{value!r} is not a finite number. A label is an energy per atom in eV, for example "
            "-4.25; NaN and infinity cannot be learned from."
        )
    return number


def strategy_name(strategy: str | Callable) -> str:
    """A readable name of a strategy: its key in ``STRATEGIES``, or the function's name and keywords."""
    func = get_strategy(strategy)
    for key, known in STRATEGIES.items():
        if func is known:
            return key
    if isinstance(func, functools.partial):
        args = ", ".join(f"{k}={v!r}" for k, v in func.keywords.items())
        return f"{strategy_name(func.func)}({args})"
    return getattr(func, "__name__", type(func).__name__)


def _frame(events: list[dict]) -> pd.DataFrame:
    """History table of events (the file's ``type`` becomes the ``event`` column)."""
    rows = [{("event" if k == "type" else k): v for k, v in e.items()} for e in events]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS, index=[e["step"] - 1 for e in events])
    for col in ("mu", "sigma", "label"):
        frame[col] = pd.to_numeric(frame[col])
    frame["undoes"] = frame["undoes"].astype("Int64")
    return frame


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_float(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class Campaign:
    """Active learning on a pool of candidates, with every event saved as it happens.

    Parameters
    ----------
    pool
        The candidates and, where known, their reference energies.
    oracle
        Labels a candidate when :meth:`step` asks; :class:`~almat.oracles.CHGNetOracle`
        by default. People label through :meth:`submit` instead.
    strategy
        A name from :data:`almat.acquisition.STRATEGIES` (``"random"``,
        ``"uncertainty"``, ``"greedy"``, ``"lcb"``, ``"ei"``) or a function
        ``f(mu, sigma, *, best, rng) -> scores``; the highest score is labelled next.
    seed
        Seed of the random initial picks and of random strategies.
    labels_path
        JSON Lines file that records every event; an existing file is
        replayed and the campaign resumes from it.
    featurizer
        Turns the pool into a feature matrix ``(n_candidates, n_features)``:
        an object with ``.transform(pool)`` or a function of the pool's
        :class:`~almat.orderings.Orderings` (see :func:`almat.features.as_featurizer`). Cluster
        vectors (:class:`~almat.features.ClusterVectorFeaturizer`) by default.
        It is applied once; the matrix is kept in :attr:`features`.
    surrogate
        Estimator with ``fit(X, y)`` and ``predict(X, return_std=True)``; a
        copy is refitted after every label.
        :class:`~almat.surrogates.BayesianClusterExpansion` by default.
    n_initial
        Number of labels picked at random before the strategy takes over
        (at least :data:`MIN_LABELS_TO_FIT`, as a surrogate needs two points).
    budget
        Largest number of labels; ``None`` for no limit.
    """

    def __init__(self, pool: Pool, oracle: Oracle | None = None, strategy: str | Callable = "lcb",
                 seed: int = 0, labels_path: str | os.PathLike | None = None, featurizer=None,
                 surrogate=None, n_initial: int = 10, budget: int | None = None):
        if not isinstance(seed, numbers.Integral) or seed < 0:
            raise CampaignError(f"seed must be a non-negative integer; got {seed!r}.")
        if not isinstance(n_initial, numbers.Integral) or n_initial < 0:
            raise CampaignError(f"n_initial must be a non-negative integer; got {n_initial!r}.")
        self.pool = pool
        self.oracle = CHGNetOracle() if oracle is None else oracle
        self.seed = int(seed)
        self.n_initial = int(n_initial)
        self.budget = budget
        self.labels_path = None if labels_path is None else Path(labels_path)
        self._featurizer = featurizer
        self._surrogate = BayesianClusterExpansion() if surrogate is None else surrogate
        self._features: np.ndarray | None = None
        self._events: list[dict] = []
        self._labels: dict[int, int] = {}  # candidate index -> step of its label event
        self._skipped: dict[int, int] = {}  # candidate index -> step of its skip event
        self._fit: tuple[int, object, np.ndarray, np.ndarray] | None = None
        self._query: Query | None = None
        self._file_size: int | None = None
        self.set_strategy(strategy)
        if self.labels_path is not None:
            self._open()

    # ----------------------------------------------------------------- state
    def __repr__(self) -> str:
        best = self.best()
        found = "" if best is None else f", best {best['label']:.4f} eV/atom ({best['id']})"
        return (f"<Campaign on {self.pool.name!r}: {self.n_labels} labels, {len(self._skipped)} "
                f"skipped, strategy {self.strategy!r}{found}>")

    @property
    def n_labels(self) -> int:
        """Number of labels that count (undone ones excluded)."""
        return len(self._labels)

    @property
    def done(self) -> bool:
        """True when the budget is spent or no candidate is left to label."""
        spent = self.budget is not None and self.n_labels >= self.budget
        return spent or len(self._labels) + len(self._skipped) >= len(self.pool)

    def set_strategy(self, strategy: str | Callable) -> None:
        """Use another query strategy from the next pick on (a name or a function)."""
        self._score = get_strategy(strategy)
        self.strategy = strategy_name(strategy)
        self._query = None

    @property
    def features(self) -> np.ndarray:
        """Feature matrix of the whole pool, computed on first use and kept."""
        if self._features is None:
            fz = self._featurizer or ClusterVectorFeaturizer(self.pool.orderings.parent)
            X = np.asarray(as_featurizer(fz).transform(self.pool), dtype=float)
            if X.ndim != 2 or X.shape[0] != len(self.pool):
                raise CampaignError(
                    f"The featurizer returned an array of shape {X.shape} for a pool of "
                    f"{len(self.pool)} candidates; it must return one row per candidate."
                )
            self._features = X
        return self._features

    def _fitted(self) -> tuple[object | None, np.ndarray, np.ndarray]:
        """The surrogate fitted to the current labels and its prediction for every candidate."""
        if self._fit is None or self._fit[0] != len(self._events):
            n = len(self.pool)
            if self.n_labels < MIN_LABELS_TO_FIT:
                model, mu, sigma = None, np.full(n, np.nan), np.full(n, np.nan)
            else:
                idx = np.fromiter(self._labels, dtype=int)
                y = np.array([self._events[s - 1]["label"] for s in self._labels.values()])
                # Matrices of tens of rows: BLAS threads cost more than they save (4x here).
                with threadpool_limits(limits=1, user_api="blas"):
                    model = copy.deepcopy(self._surrogate).fit(self.features[idx], y)
                    mu, sigma = model.predict(self.features, return_std=True)
                mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
            self._fit = (len(self._events), model, mu, sigma)
        return self._fit[1:]

    @property
    def model(self):
        """The surrogate fitted to the current labels (None before two labels)."""
        return self._fitted()[0]

    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted energy ``mu`` and standard deviation ``sigma`` (eV/atom) of every candidate."""
        _, mu, sigma = self._fitted()
        return mu.copy(), sigma.copy()

    def _available(self) -> np.ndarray:
        taken = np.zeros(len(self.pool), dtype=bool)
        taken[list(self._labels)] = True
        taken[list(self._skipped)] = True
        return np.flatnonzero(~taken)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, len(self._events)])

    def _best_label(self) -> float:
        return min(self._events[s - 1]["label"] for s in self._labels.values())

    def _candidate(self, index: int, strategy: str, reason: str) -> Query:
        _, mu, sigma = self._fitted()
        return Query(int(index), self.pool.ids[index], int(self.pool.reference["cell_size"].iloc[index]),
                     float(mu[index]), float(sigma[index]), strategy, reason)

    # --------------------------------------------------------------- picking
    def suggest(self) -> Query:
        """The candidate to label next, without labelling it.

        The answer stays the same until a label, skip or undo is recorded or
        the strategy changes, so it can be shown before it is labelled.
        """
        if self._query is None:
            self._check_open()
            available = self._available()
            n, n_random = self.n_labels, max(self.n_initial, MIN_LABELS_TO_FIT)
            if n < n_random:
                i = int(self._rng().choice(available))
                self._query = self._candidate(
                    i, "initial", f"Random pick for initial label {n + 1} of {n_random} (seed {self.seed}).")
            else:
                _, mu, sigma = self._fitted()
                best = self._best_label()
                scores = np.asarray(self._score(mu[available], sigma[available], best=best,
                                                rng=self._rng()), dtype=float)
                if scores.shape != available.shape or not np.isfinite(scores).all():
                    raise CampaignError(
                        f"Strategy {self.strategy!r} must return one finite score per candidate "
                        f"({len(available)}); it returned shape {scores.shape} with "
                        f"{int((~np.isfinite(scores)).sum())} non-finite values."
                    )
                i = int(available[np.argmax(scores)])
                self._query = self._candidate(i, self.strategy, self._explain(mu[i], sigma[i], best))
        return self._query

    def _explain(self, mu: float, sigma: float, best: float) -> str:
        func, options = self._score, {}
        if isinstance(func, functools.partial):
            func, options = func.func, func.keywords
        return explain(func, mu, sigma, best=best, **options)

    def _check_budget(self) -> None:
        if self.budget is not None and self.n_labels >= self.budget:
            raise CampaignError(
                f"The budget of {self.budget} labels is spent. Set campaign.budget higher to go on."
            )

    def _check_open(self) -> None:
        self._check_budget()
        if not self._available().size:
            raise CampaignError("Every candidate of the pool is labelled or skipped; nothing is left.")

    # ------------------------------------------------------------- labelling
    def step(self) -> pd.Series:
        """Label the suggested candidate with the oracle; a refusal is recorded as a skip.

        Returns
        -------
        pandas.Series
            The new row of :attr:`history`.
        """
        query = self.suggest()
        name = getattr(self.oracle, "name", type(self.oracle).__name__)
        try:
            answer = self.oracle.label(self.pool, query.index)
        except OracleRefusal as refusal:
            return self._record("skip", query, by=name, source=name, reason=refusal.reason)
        if answer.skipped:
            return self._record("skip", query, by=name, source=answer.source, reason=answer.reason)
        value = self._check_value(answer.value)
        return self._record("label", query, by=name, source=answer.source, label=value)

    def run(self, n: int) -> pd.DataFrame:
        """Do up to ``n`` steps, fewer if the budget or the pool runs out; returns their history rows."""
        rows = []
        for _ in range(int(n)):
            if self.done:
                break
            rows.append(self.step())
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS).reset_index(drop=True)

    def submit(self, value, source: str = "human", index: int | None = None) -> pd.Series:
        """Record a label typed by a person (or given by any outside source).

        Parameters
        ----------
        value
            Energy per atom in eV/atom, as a number or text.
        source
            Who labelled it; recorded as ``labelled_by``.
        index
            Candidate to label; the current suggestion by default.

        Raises
        ------
        LabelError
            The value is not a finite number, lies far outside the plausible
            range (see :meth:`label_range`), or the candidate is labelled
            already (undo that label first). Nothing is recorded.
        """
        value = parse_energy(value)
        query = self._target(index)
        if query.index in self._labels:
            step = self._labels[query.index]
            raise LabelError(
                f"Candidate {query.id} already has the label {self._events[step - 1]['label']} "
                f"eV/atom (step {step}). Labels are never overwritten: undo it first if it was wrong."
            )
        value = self._check_value(value)
        return self._record("label", query, by=str(source), source=str(source), label=value)

    def skip(self, reason: str, index: int | None = None, source: str = "human") -> pd.Series:
        """Record that a candidate will not be labelled, and why; it is not suggested again."""
        if not isinstance(reason, str) or not reason.strip():
            raise CampaignError("Give a reason for skipping, e.g. 'calculation did not converge'.")
        query = self._target(index)
        if query.index in self._labels:
            raise CampaignError(f"Candidate {query.id} is labelled; undo the label before skipping it.")
        if query.index in self._skipped:
            raise CampaignError(f"Candidate {query.id} is skipped already.")
        return self._record("skip", query, by=str(source), source=str(source), reason=reason.strip())

    def undo(self, source: str = "human") -> pd.Series:
        """Take back the most recent label or skip that still counts.

        The undo is a new event that names the step it undoes; the original
        line stays in the file. The candidate can then be labelled again.
        ``source`` records who undid it.
        """
        for event in reversed(self._events):
            if event["type"] in ("label", "skip") and self._counts(event):
                break
        else:
            raise CampaignError("There is nothing to undo.")
        record = {k: event[k] for k in ("index", "id", "cell_size")}
        record.update(type="undo", strategy=None, mu=None, sigma=None, label=None,
                      labelled_by=str(source), source=str(source), reason=f"undo of step {event['step']}",
                      undoes=event["step"])
        return self._write(record)

    def _counts(self, event: dict) -> bool:
        book = self._labels if event["type"] == "label" else self._skipped
        return book.get(event["index"]) == event["step"]

    def _target(self, index: int | None) -> Query:
        if index is None:
            return self.suggest()
        if not isinstance(index, numbers.Integral) or not 0 <= index < len(self.pool):
            raise CampaignError(f"index must be an integer from 0 to {len(self.pool) - 1}; got {index!r}.")
        self._check_budget()
        if self._query is not None and self._query.index == index:
            return self._query
        return self._candidate(int(index), "manual", "chosen by hand")

    def label_range(self) -> tuple[float, float]:
        """Plausible range (eV/atom) of a label; values outside it are refused.

        The pool's reference energies widened by :data:`REFERENCE_MARGIN` on
        each side; without a reference, :data:`LABEL_WINDOW` around the median
        label; with neither, any finite number.
        """
        ref = self.pool.reference["energy_per_atom"].to_numpy(dtype=float)
        ref = ref[np.isfinite(ref)]
        if ref.size:
            return float(ref.min() - REFERENCE_MARGIN), float(ref.max() + REFERENCE_MARGIN)
        if self._labels:
            median = float(np.median([self._events[s - 1]["label"] for s in self._labels.values()]))
            return median - LABEL_WINDOW, median + LABEL_WINDOW
        return -math.inf, math.inf

    def _check_value(self, value) -> float:
        value = parse_energy(value)
        low, high = self.label_range()
        if not low <= value <= high:
            raise LabelError(
                f"{value:g} eV/atom is far outside the plausible range {low:.2f} to {high:.2f} "
                "eV/atom for this pool. Check the sign and the units: a label is the energy per "
                "atom in eV, not the total energy and not meV."
            )
        return value

    def _record(self, kind: str, query: Query, *, by: str, source: str, label: float | None = None,
                reason: str = "") -> pd.Series:
        record = {"type": kind, "index": query.index, "id": query.id, "cell_size": query.cell_size,
                  "strategy": query.strategy, "mu": _json_float(query.mu),
                  "sigma": _json_float(query.sigma), "label": label, "labelled_by": by,
                  "source": source, "reason": reason if kind == "skip" else query.reason,
                  "undoes": None}
        return self._write(record)

    def _write(self, record: dict) -> pd.Series:
        """Append an event: to the file first (flushed to disk), then to memory."""
        event = {"type": record.pop("type"), "step": len(self._events) + 1, **record, "time": _now()}
        if self.labels_path is not None:
            self._append_line(event)
        self._apply(event)
        return _frame([event]).iloc[0]

    def _apply(self, event: dict) -> None:
        index, step = event["index"], event["step"]
        if event["type"] == "label":
            self._skipped.pop(index, None)
            self._labels[index] = step
        elif event["type"] == "skip":
            self._skipped[index] = step
        else:
            undone = self._events[event["undoes"] - 1]
            book = self._labels if undone["type"] == "label" else self._skipped
            del book[undone["index"]]
        self._events.append(event)
        self._query = None

    # ------------------------------------------------------------ the file
    def _header(self) -> dict:
        from almat import __version__

        return {"type": "header", "format": FILE_FORMAT, "pool": self.pool.name,
                "fingerprint": self.pool.fingerprint, "n_candidates": len(self.pool),
                "created": _now(), "almat": __version__, "seed": self.seed}

    def _append_line(self, record: dict) -> None:
        """Append one JSON line with a single ``write`` call, then fsync.

        A reader sees either the whole line or, after a crash mid-write, a cut
        line at the end, which :meth:`_open` drops with a warning.
        """
        data = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        fd = os.open(self.labels_path, flags, 0o644)
        try:
            size = os.fstat(fd).st_size
            if self._file_size is not None and size != self._file_size:
                raise LabelsFileError(
                    f"{self.labels_path} changed since this campaign last wrote to it (is another "
                    "Campaign object using the same file?). Nothing was recorded. Create the "
                    "campaign again from the file to continue from what it holds."
                )
            written = os.write(fd, data)
            if written != len(data):
                os.ftruncate(fd, size)
                raise OSError(f"Only {written} of {len(data)} bytes reached {self.labels_path}.")
            os.fsync(fd)
        finally:
            os.close(fd)
        self._file_size = size + written

    def _open(self) -> None:
        """Create the labels file, or replay the one that exists."""
        path = self.labels_path
        if not path.exists() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file_size = path.stat().st_size if path.exists() else None
            self._append_line(self._header())
            return
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        end = len(raw)
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except ValueError:
                if any(rest.strip() for rest in lines[number:]):
                    raise LabelsFileError(
                        f"Line {number} of {path} is not valid JSON: {line[:80]!r}. The file was "
                        "edited by hand or damaged; fix or remove that line."
                    ) from None
                end = len(raw) - len(b"\n".join(lines[number - 1:]))
                break
        if not records:
            raise LabelsFileError(
                f"{path} holds no complete line, so it is not a labels file or it was cut short "
                "while its header was written. Delete it to start afresh, or choose another labels_path."
            )
        self._check_header(records[0][1])
        for number, event in records[1:]:
            self._replay(number, event)
        # Only a file that has proved to be this pool's labels file is touched.
        if end < len(raw) or not raw.endswith(b"\n"):
            with path.open("r+b") as fh:
                if end < len(raw):
                    warnings.warn(
                        f"The last line of {path} was cut short, probably by a crash while it was "
                        f"written, and is dropped: {raw[end:end + 80]!r}. Every earlier line is kept.",
                        TruncatedLabelsWarning, stacklevel=3)
                    fh.truncate(end)
                else:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
                    end += 1
                fh.flush()
                os.fsync(fh.fileno())
        self._file_size = end

    def _check_header(self, header: dict) -> None:
        path = self.labels_path
        if not isinstance(header, dict) or header.get("type") != "header":
            raise LabelsFileError(
                f"{path} does not start with a labels-file header; it is not a campaign's labels "
                "file. Choose another labels_path."
            )
        if header.get("fingerprint") != self.pool.fingerprint:
            other = path.with_name(f"{path.stem}-{self.pool.name}-{self.pool.fingerprint[:8]}"
                                   f"{path.suffix}")
            raise LabelsFileError(
                f"{path} holds labels for pool {header.get('pool')!r} (fingerprint "
                f"{header.get('fingerprint')}), but this campaign's pool is {self.pool.name!r} "
                f"(fingerprint {self.pool.fingerprint}). Labels of one pool mean nothing for another. "
                f"Use a new file for this pool, e.g. labels_path={str(other)!r}, or load the pool "
                "the file was made for."
            )
        if header.get("seed") != self.seed:
            warnings.warn(f"{path} was started with seed {header.get('seed')}; this campaign uses "
                          f"seed {self.seed} from now on.", stacklevel=4)

    def _replay(self, number: int, event: dict) -> None:
        def bad(why: str) -> LabelsFileError:
            return LabelsFileError(f"Line {number} of {self.labels_path}: {why}. The file was "
                                   "edited by hand or damaged; fix or remove that line.")

        if not isinstance(event, dict) or event.get("type") not in ("label", "skip", "undo"):
            raise bad("not a label, skip or undo event")
        if event.get("step") != len(self._events) + 1:
            raise bad(f"step {event.get('step')} where {len(self._events) + 1} was expected")
        index = event.get("index")
        if not isinstance(index, int) or not 0 <= index < len(self.pool) \
                or self.pool.ids[index] != event.get("id"):
            raise bad(f"candidate {event.get('id')!r} at index {index!r} is not in this pool")
        if event["type"] == "label":
            try:
                parse_energy(event.get("label"))
            except LabelError as err:
                raise bad(str(err)) from None
            if index in self._labels:
                raise bad(f"candidate {event['id']} is labelled twice without an undo")
        if event["type"] == "undo":
            target = event.get("undoes")
            if not isinstance(target, int) or not 1 <= target <= len(self._events) \
                    or self._events[target - 1]["type"] == "undo" \
                    or not self._counts(self._events[target - 1]):
                raise bad(f"undoes step {target!r}, which is not a label or skip that still counts")
        self._apply(event)

    # ------------------------------------------------------------- records
    @property
    def history(self) -> pd.DataFrame:
        """Every event in order: what was picked, by which strategy, mu and sigma then, the label, who, when.

        Columns are :data:`HISTORY_COLUMNS`; ``event`` is ``"label"``, ``"skip"``
        or ``"undo"``; ``mu``, ``sigma`` and ``label`` are in eV/atom; ``time``
        is ISO 8601 UTC.
        """
        return _frame(self._events)

    @property
    def labels(self) -> pd.DataFrame:
        """The labels that count now, in the order they were given."""
        rows = []
        for index, step in sorted(self._labels.items(), key=lambda kv: kv[1]):
            e = self._events[step - 1]
            rows.append({"index": index, "id": e["id"], "cell_size": e["cell_size"],
                         "label": e["label"], "labelled_by": e["labelled_by"], "step": step})
        return pd.DataFrame(rows, columns=["index", "id", "cell_size", "label", "labelled_by", "step"])

    @property
    def skipped(self) -> pd.DataFrame:
        """Candidates skipped now, with the reasons."""
        rows = [{"index": i, "id": self._events[s - 1]["id"], "reason": self._events[s - 1]["reason"],
                 "step": s} for i, s in sorted(self._skipped.items(), key=lambda kv: kv[1])]
        return pd.DataFrame(rows, columns=["index", "id", "reason", "step"])

    def best(self) -> pd.Series | None:
        """The labelled candidate with the lowest energy (a row of :attr:`labels`), or None."""
        labels = self.labels
        return None if labels.empty else labels.loc[labels["label"].idxmin()]

    # ------------------------------------------------------------- metrics
    def _reference(self, reference) -> np.ndarray:
        if reference is None:
            return self.pool.energies
        if isinstance(reference, pd.Series):
            return reference.reindex(self.pool.ids).to_numpy(dtype=float)
        ref = np.asarray(reference, dtype=float)
        if ref.shape != (len(self.pool),):
            raise CampaignError(
                f"reference must hold one energy per candidate ({len(self.pool)}), or be a Series "
                f"indexed by candidate id; got shape {ref.shape}."
            )
        return ref

    def best_so_far(self) -> pd.DataFrame:
        """Lowest label found against the number of labels (eV/atom).

        Columns ``n_labels``, ``id``, ``label`` and ``best``, the running minimum.
        """
        labels = self.labels
        return pd.DataFrame({"n_labels": np.arange(1, len(labels) + 1), "id": labels["id"],
                             "label": labels["label"], "best": labels["label"].cummin()})

    def parity(self, reference: Sequence[float] | pd.Series | None = None) -> pd.DataFrame:
        """Reference against predicted energy (eV/atom) of every candidate with a known reference.

        Columns ``reference``, ``predicted``, ``std`` and ``labelled``, indexed by id.
        """
        ref = self._reference(reference)
        mu, sigma = self.predict()
        labelled = np.zeros(len(self.pool), dtype=bool)
        labelled[list(self._labels)] = True
        known = np.isfinite(ref)
        return pd.DataFrame({"reference": ref[known], "predicted": mu[known], "std": sigma[known],
                             "labelled": labelled[known]},
                            index=pd.Index(np.asarray(self.pool.ids)[known], name="id"))

    def mae(self, reference: Sequence[float] | pd.Series | None = None) -> float:
        r"""Mean absolute error (eV/atom) of the surrogate over the candidates with a reference.

        :math:`\mathrm{MAE} = \frac{1}{n}\sum_i |\mu_i - E_i|` over every such
        candidate, labelled or not; NaN before the surrogate is fitted.
        ``reference`` defaults to the pool's reference energies.
        """
        ref = self._reference(reference)
        known = np.isfinite(ref)
        mu, _ = self.predict()
        return float(np.mean(np.abs(mu[known] - ref[known]))) if known.any() else math.nan

    def regret(self, reference: Sequence[float] | pd.Series | None = None) -> float:
        """Reference energy of the best candidate labelled so far minus the pool's lowest (eV/atom).

        Zero once the pool minimum has been labelled; NaN before any label.
        With labels from the reference itself this is the best label minus the minimum.
        """
        ref = self._reference(reference)
        found = ref[list(self._labels)]
        found = found[np.isfinite(found)]
        return float(found.min() - np.nanmin(ref)) if found.size else math.nan

    def labels_to_minimum(self, reference: Sequence[float] | pd.Series | None = None) -> int | None:
        """Number of labels it took to label the pool's lowest-energy candidate; None if not yet."""
        ref = self._reference(reference)
        lowest = np.flatnonzero(ref == np.nanmin(ref))
        for n, index in enumerate(self.labels["index"], start=1):
            if index in lowest:
                return n
        return None


#: Environment variable naming the folder that :func:`labels_file` uses.
LABELS_DIR_VARIABLE = "ALMAT_LABELS_DIR"


def labels_file(name: str, directory: str | Path | None = None) -> Path:
    """Where a named campaign keeps its labels: ``labels/NAME.jsonl`` next to the notebook.

    Parameters
    ----------
    name
        A short name such as ``"06-labeling-loop"``.
    directory
        The folder; by default ``$ALMAT_LABELS_DIR`` if set (the tests point it
        at a fresh temporary folder), else ``labels``.
    """
    folder = Path(directory or os.environ.get(LABELS_DIR_VARIABLE) or "labels")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.jsonl"


def compare_strategies(pool: Pool, strategies: Sequence[str | Callable] = tuple(STRATEGIES),
                       seeds: int = 3, n_labels: int = 40, *, oracle: Oracle | None = None,
                       featurizer=None, n_initial: int = 10, mae: bool = False) -> pd.DataFrame:
    """Run one campaign per strategy and seed on a pool with known energies; one row per label.

    The features are computed once and shared by every campaign.

    Parameters
    ----------
    pool
        Candidates with reference energies (``pool.energies``).
    strategies
        Names or functions; all of :data:`~almat.acquisition.STRATEGIES` by default.
    seeds
        Campaigns per strategy, with seeds ``0 .. seeds - 1``.
    n_labels
        Labels per campaign (the budget), the random initial ones included.
    oracle
        The labeller; a :class:`~almat.oracles.TableOracle` of the pool's energies by default.
    featurizer
        Cluster vectors of the pool's parent by default.
    n_initial
        Random labels before the strategy takes over.
    mae
        Also record the surrogate's MAE over the pool after every label (slower).

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy``, ``seed``, ``n_labels``, ``best`` (lowest label so far,
        eV/atom), ``regret`` (``best`` minus the pool's lowest energy, meV/atom) and,
        with ``mae=True``, ``mae`` (meV/atom).
    """
    features = as_featurizer(featurizer or ClusterVectorFeaturizer(pool.orderings.parent)).transform(pool)
    oracle = TableOracle() if oracle is None else oracle
    lowest = float(np.nanmin(pool.energies))
    curves = []
    for strategy in strategies:
        for seed in range(seeds):
            campaign = Campaign(pool, oracle, strategy=strategy, seed=seed, n_initial=n_initial,
                                budget=n_labels, featurizer=lambda orderings: features)
            errors = {}
            while not campaign.done:
                campaign.step()
                if mae:
                    errors[campaign.n_labels] = 1000 * campaign.mae()
            curve = campaign.best_so_far()[["n_labels", "best"]]
            curve.insert(0, "seed", seed)
            curve.insert(0, "strategy", campaign.strategy)
            curve["regret"] = 1000 * (curve["best"] - lowest)
            if mae:
                curve["mae"] = curve["n_labels"].map(errors)
            curves.append(curve)
    return pd.concat(curves, ignore_index=True)
