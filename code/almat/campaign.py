"""An active-learning campaign: fit, query, label, record, repeat.

A :class:`Campaign` holds a pool of candidates, an oracle, a surrogate model
and a query strategy. Each round it fits the surrogate on the labels so far,
predicts the energy ``mu`` and its uncertainty ``sigma`` of every candidate,
asks the strategy which unlabelled candidate to label next, and records the
answer in its :class:`~almat.ledger.Ledger`.

The first ``n_initial`` labels come before any fit. When the pool carries a
cheap energy of every candidate (a column of :data:`HEAD_START_COLUMNS`),
they are its lowest ones: the cheap physics gives the campaign a head start,
and the surrogate then corrects it, picking greedily. Without cheap energies
they are picked at random and LCB takes over. ``benchmarks/al_benchmark.py``
measures both.

With ``ledger_path`` every event is saved in a labels file the moment it
happens (see :mod:`almat.ledger`). Creating the campaign again with the same
file replays the events and carries on exactly where it stopped: the random
numbers of each round are drawn from ``numpy.random.default_rng([seed,
number of events so far])``, so they depend on the record, not on what the
Python process did before. How well a campaign does is measured by
:mod:`almat.evaluation`.

:meth:`Campaign.run_batch` labels ``k`` candidates per round, in parallel on
a Dask cluster when the oracle can run there (see :mod:`almat.batches`). The
picks of a round are saved before any is labelled, and each label as it
arrives; a campaign created again from the file first finishes the round's
pending picks, so a killed round costs only the labels that were running.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from almat.acquisition import STRATEGIES, Strategy, as_strategy
from almat.batches import BatchMixin, ask
from almat.features import ClusterVectorFeaturizer, as_featurizer
from almat.labels import HISTORY_COLUMNS
from almat.ledger import CampaignError, Ledger, Query
from almat.oracles import CHGNetOracle, Label, Oracle, as_oracle
from almat.pool import Pool
from almat.surrogates import BayesianClusterExpansion

#: Fewest labels a surrogate is fitted to; before that candidates are picked without a model.
MIN_LABELS_TO_FIT = 2
#: Cheap energies (columns of ``pool.reference``, eV/atom) that give a new campaign its head
#: start, in order of preference: the first one the pool has for every candidate is used.
HEAD_START_COLUMNS = ("unrelaxed_energy_per_atom", "ewald_energy_per_atom")
#: Initial labels of a new campaign when ``n_initial`` is not given, by how they are picked.
DEFAULT_N_INITIAL = {"cheap ranking": 2, "random": 10}
#: Strategy of a new campaign when none is given, by how its initial labels are picked.
DEFAULT_STRATEGY = {"cheap ranking": "greedy", "random": "lcb"}
#: Names of the cheap energies in the explanation of a pick.
_CHEAP_NAMES = {"unrelaxed_energy_per_atom": "unrelaxed CHGNet energy",
                "ewald_energy_per_atom": "Ewald energy"}


def _cheap_energies(pool: Pool, column: str) -> np.ndarray:
    """A column of ``pool.reference`` as floats, NaN where it holds no number."""
    return pd.to_numeric(pool.reference[column], errors="coerce").to_numpy(dtype=float)


def _head_start(pool: Pool, initial: str | None) -> str:
    """The column whose lowest values are labelled first, or ``"random"``.

    ``None`` chooses the first of :data:`HEAD_START_COLUMNS` with a finite
    value for every candidate, or ``"random"`` when there is none.
    """
    reference = pool.reference
    if initial is None:
        for column in HEAD_START_COLUMNS:
            if column in reference.columns and np.isfinite(_cheap_energies(pool, column)).all():
                return column
        return "random"
    if initial == "random":
        return initial
    if not isinstance(initial, str) or initial not in reference.columns:
        raise CampaignError(
            f"initial={initial!r} is neither 'random' nor a column of the pool's reference table "
            f"({', '.join(map(str, reference.columns))}).")
    missing = int((~np.isfinite(_cheap_energies(pool, initial))).sum())
    if missing:
        raise CampaignError(
            f"initial={initial!r}: {missing} candidates have no finite value in that column; "
            "give a cheap energy known for every candidate, or 'random'.")
    return initial


def _strategy_to_resume(recorded: str | None, given: Strategy | None, default: str,
                        path: str | os.PathLike | None) -> tuple[Strategy, str]:
    """The strategy a campaign goes on with, and a note when it is not the one given.

    The strategy is the one its labels file recorded last, if it can be
    rebuilt from its name. ``given`` is the one passed to the campaign,
    ``default`` the name used when neither is known; ``recorded`` is None for a
    file from before strategies were recorded. The note names the file by its
    name only: the folder is the learner's own choice, often a long one.
    """
    if recorded is None or (given is not None and given.name == recorded):
        return given or as_strategy(default), ""
    where = f"{Path(path or 'the labels file').name} was last labelled with strategy {recorded!r}"
    if recorded in STRATEGIES:
        note = "" if given is None else (f"{where}; the campaign goes on with it, not {given.name!r}. "
                                         f"Call campaign.set_strategy({given.name!r}) to change.")
        return as_strategy(recorded), note
    if given is None:
        raise CampaignError(f"{where}, your own function or options: pass it again as strategy=.")
    return given, f"{where}, which cannot be rebuilt from its name; the campaign uses {given.name!r} from now on."


class Campaign(BatchMixin):
    """Active learning on a pool of candidates, with every event saved as it happens.

    Parameters
    ----------
    pool
        The candidates and, where known, their reference energies.
    oracle
        Labels a candidate when :meth:`step` asks; :class:`~almat.oracles.CHGNetOracle`
        by default. Any object with a ``name`` and ``label(pool, index)`` will
        do: :func:`~almat.oracles.as_oracle` fills in what it does not declare.
        People label through :meth:`submit` instead.
    strategy
        A name from :data:`almat.acquisition.STRATEGIES` (``"random"``,
        ``"uncertainty"``, ``"greedy"``, ``"lcb"``, ``"ei"``), a function
        ``f(mu, sigma, *, best, rng) -> scores`` or an
        :class:`~almat.acquisition.Strategy`; the highest score is labelled next.
        It is recorded in the labels file, and so is every change of it: a
        resumed campaign goes on with the strategy recorded last (:attr:`note`
        says so, and it is printed, if it differs from this one). ``None`` for a new campaign:
        :data:`DEFAULT_STRATEGY`, greedy after a head start from a cheap
        ranking, LCB after random initial picks.
    seed
        Seed of the random initial picks and of random strategies.
    ledger_path
        JSON Lines labels file that records every event; an existing file is
        replayed and the campaign resumes from it.
    features
        The pool's feature matrix ``(n_candidates, n_features)``, computed
        beforehand; give this or ``featurizer``, not both.
    featurizer
        Turns the pool into a feature matrix: an object with ``.transform(pool)``
        or a function of the pool's :class:`~almat.orderings.Orderings` (see
        :func:`almat.features.as_featurizer`). Cluster vectors
        (:class:`~almat.features.ClusterVectorFeaturizer`) by default. It is
        applied once, on first use; the matrix is kept in :attr:`features`.
    surrogate
        Estimator with ``fit(X, y)`` and ``predict(X, return_std=True)``; a
        clone (:func:`sklearn.base.clone`) is fitted after every label.
        :class:`~almat.surrogates.BayesianClusterExpansion` by default.
    n_initial
        Number of labels picked as ``initial`` says before the strategy takes
        over (at least :data:`MIN_LABELS_TO_FIT`, as a surrogate needs two
        points); :data:`DEFAULT_N_INITIAL` when ``None``: 2 from a cheap
        ranking, 10 at random.
    initial
        How those first labels are picked: ``"random"``, or the name of a
        column of ``pool.reference`` with a cheap energy (eV/atom) of every
        candidate, whose lowest unlabelled candidate is picked each time (the
        strategy says ``"cheap ranking"``). ``None``: the first of
        :data:`HEAD_START_COLUMNS` the pool has for every candidate, else
        ``"random"``. The resolved choice is kept in :attr:`initial`.
    budget
        Largest number of labels, a whole number from 1; ``None`` for no limit.
        The campaign is its one owner: the labeling app shows it and sets it here.

    Attributes
    ----------
    note
        What resuming from the labels file changed, in one line (a strategy
        other than the one given); empty otherwise. It is printed when the
        campaign is created, and the labeling app shows it too.
    """

    def __init__(self, pool: Pool, oracle: Oracle | None = None,
                 strategy: str | Callable | Strategy | None = None, seed: int = 0,
                 ledger_path: str | os.PathLike | None = None, *, features: Any = None,
                 featurizer: Any = None, surrogate: Any = None, n_initial: int | None = None,
                 initial: str | None = None, budget: int | None = None):
        if not isinstance(seed, numbers.Integral) or seed < 0:
            raise CampaignError(f"seed must be a non-negative integer; got {seed!r}.")
        if n_initial is not None and (not isinstance(n_initial, numbers.Integral) or n_initial < 0):
            raise CampaignError(f"n_initial must be a non-negative integer or None; got {n_initial!r}.")
        if features is not None and featurizer is not None:
            raise CampaignError("Give the feature matrix (features=) or a featurizer, not both.")
        self.pool = pool
        self.oracle = CHGNetOracle() if oracle is None else oracle
        self.seed = int(seed)
        self.initial = _head_start(pool, initial)
        start = "random" if self.initial == "random" else "cheap ranking"
        self.n_initial = DEFAULT_N_INITIAL[start] if n_initial is None else int(n_initial)
        self.budget = budget
        self._featurizer = featurizer
        self._surrogate = BayesianClusterExpansion() if surrogate is None else surrogate
        self._features = None if features is None else self._checked(features)
        self._fit: tuple[int, object, np.ndarray, np.ndarray] | None = None
        self._query: tuple[int, Query] | None = None  # (number of events then, suggestion)
        given = None if strategy is None else as_strategy(strategy)
        default = DEFAULT_STRATEGY[start]
        self.ledger = Ledger(pool, ledger_path, seed=self.seed, strategy=(given or as_strategy(default)).name)
        strategy, self.note = _strategy_to_resume(self.ledger.strategy, given, default, ledger_path)
        self.set_strategy(strategy)
        if self.note:
            print(self.note)

    # ----------------------------------------------------------------- state
    def __repr__(self) -> str:
        best = self.best()
        found = "" if best is None else f", best {best['energy']:.4f} eV/atom ({best['id']})"
        return (f"<Campaign on {self.pool.name!r}: {self.n_labels} labels, {self.ledger.n_skipped} "
                f"skipped, strategy {self.strategy!r}{found}>")

    @property
    def oracle(self) -> Oracle:
        """Labels a candidate when :meth:`step` asks; set it to any oracle, e.g. in a new cell."""
        return self._oracle

    @oracle.setter
    def oracle(self, oracle: object) -> None:
        self._oracle = as_oracle(oracle)

    @property
    def budget(self) -> int | None:
        """Largest number of labels (None: no limit); raise it to go on after it is spent."""
        return self._budget

    @budget.setter
    def budget(self, value: int | None) -> None:
        if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                                  or value < 1):
            raise CampaignError(f"budget must be a whole number of labels, 1 or more, or None for no "
                                f"limit; got {value!r}.")
        self._budget = None if value is None else int(value)

    @property
    def ledger_path(self) -> Path | None:
        """The labels file that records every event, or None (in memory only)."""
        return self.ledger.path

    @property
    def n_labels(self) -> int:
        """Number of labels that count (undone ones excluded)."""
        return self.ledger.n_labels

    @property
    def done(self) -> bool:
        """True when the budget is spent or no candidate is left to label."""
        spent = self.budget is not None and self.n_labels >= self.budget
        return spent or bool(self.ledger.taken().all())

    @property
    def strategy(self) -> str:
        """Name of the query strategy (see :attr:`almat.acquisition.Strategy.name`)."""
        return self._strategy.name

    def set_strategy(self, strategy: str | Callable | Strategy) -> None:
        """Use another query strategy from the next pick on (a name, a function or a Strategy).

        The change is recorded in the labels file, so that a resumed campaign goes on with it.
        """
        chosen = as_strategy(strategy)
        self.ledger.record_strategy(chosen.name)
        self._strategy = chosen
        self._query = None

    def _checked(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] != len(self.pool):
            raise CampaignError(
                f"The feature matrix has shape {X.shape} for a pool of {len(self.pool)} "
                "candidates; it must have one row per candidate."
            )
        return X

    @property
    def features(self) -> np.ndarray:
        """Feature matrix of the whole pool, computed on first use and kept."""
        if self._features is None:
            fz = self._featurizer or ClusterVectorFeaturizer(self.pool.orderings.parent)
            self._features = self._checked(as_featurizer(fz).transform(self.pool))
        return self._features

    # ------------------------------------------------------------- learning
    def _fitted(self) -> tuple[object | None, np.ndarray, np.ndarray]:
        """The surrogate fitted to the current labels and its prediction for every candidate."""
        n_events = len(self.ledger.events)
        if self._fit is None or self._fit[0] != n_events:
            n = len(self.pool)
            if self.n_labels < MIN_LABELS_TO_FIT:
                model, mu, sigma = None, np.full(n, np.nan), np.full(n, np.nan)
            else:
                model, mu, sigma = self._fit_predict(*self.ledger.labels_in_pick_order())
            self._fit = (n_events, model, mu, sigma)
        return self._fit[1:]

    def _fit_predict(self, idx: np.ndarray, y: np.ndarray) -> tuple[object, np.ndarray, np.ndarray]:
        """A clone of the surrogate fitted to energies ``y`` of candidates ``idx``, and its prediction."""
        # Matrices of tens of rows: BLAS threads cost more than they save (4x here).
        with threadpool_limits(limits=1, user_api="blas"):
            model = clone(self._surrogate).fit(self.features[idx], y)
            mu, sigma = model.predict(self.features, return_std=True)
        return model, np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)

    @property
    def model(self):
        """The surrogate fitted to the current labels (None before two labels)."""
        return self._fitted()[0]

    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted energy ``mu`` and standard deviation ``sigma`` (eV/atom) of every candidate."""
        _, mu, sigma = self._fitted()
        return mu.copy(), sigma.copy()

    def _candidate(self, index: int, strategy: str, reason: str, n_events: int | None = None) -> Query:
        _, mu, sigma = self._fitted()
        return Query(int(index), self.pool.ids[index], int(self.pool.reference["cell_size"].iloc[index]),
                     float(mu[index]), float(sigma[index]), strategy, reason, n_events)

    def suggest(self) -> Query:
        """The candidate to label next, without labelling it.

        The answer stays the same until a label, skip or undo is recorded or
        the strategy changes, so it can be shown before it is labelled. While
        a batch is open (see :meth:`~almat.batches.BatchMixin.run_batch`), it is the batch's next pending pick.
        """
        pending = self.ledger.pending()
        if pending:
            return pending[0]
        n_events = len(self.ledger.events)
        if self._query is None or self._query[0] != n_events:
            self._check_budget()
            available = np.flatnonzero(~self.ledger.taken())
            if not available.size:
                raise CampaignError("Every candidate of the pool is labelled or skipped; nothing is left.")
            rng = np.random.default_rng([self.seed, n_events])
            if self._in_head_start(self.n_labels + 1):
                query = self._initial_pick(available, rng, self.n_labels + 1, n_events)
            else:
                _, mu, sigma = self._fitted()
                best = float(self.ledger.labelled_energies().min())
                scores = self._strategy(mu[available], sigma[available], best=best, rng=rng)
                i = int(available[np.argmax(scores)])
                query = self._candidate(i, self.strategy, self._strategy.explain(mu[i], sigma[i], best),
                                        n_events)
            self._query = (n_events, query)
        return self._query[1]

    def _in_head_start(self, number: int) -> bool:
        """Whether label ``number`` (1, 2, ...) is an initial pick, made without the surrogate."""
        return number <= max(self.n_initial, MIN_LABELS_TO_FIT)

    def _initial_pick(self, available: np.ndarray, rng: np.random.Generator, number: int,
                      n_events: int) -> Query:
        """Initial label ``number`` (1, 2, ...): the next cheapest candidate, or a random one."""
        n_first = max(self.n_initial, MIN_LABELS_TO_FIT)
        which = (f"label {number} of {n_first}" if number <= n_first else
                 f"label {number}, as the surrogate needs {MIN_LABELS_TO_FIT} labels before it is fitted")
        if self.initial == "random":
            return self._candidate(int(rng.choice(available)), "initial",
                                   f"Random pick for initial {which} (seed {self.seed}).", n_events)
        cheap = _cheap_energies(self.pool, self.initial)
        i = int(available[np.argmin(cheap[available])])
        name = _CHEAP_NAMES.get(self.initial, self.initial)
        return self._candidate(i, "cheap ranking",
                               f"Cheap ranking: the lowest {name} of the unlabelled candidates "
                               f"({cheap[i]:.4f} eV/atom), head-start {which}.", n_events)

    def _check_budget(self) -> None:
        if self.budget is not None and self.n_labels >= self.budget:
            raise CampaignError(
                f"The budget of {self.budget} labels is spent. Set campaign.budget higher to go on."
            )

    # ------------------------------------------------------------ labelling
    def step(self, on_step: Callable[[int, float], None] | None = None,
             query: Query | None = None) -> pd.Series:
        """Label the suggested candidate with the oracle; a refusal is recorded as a skip.

        Parameters
        ----------
        on_step
            Passed on to the oracle, which calls ``on_step(step, fmax)`` after
            each step if it works in steps (see :attr:`almat.oracles.Oracle.max_steps`).
        query
            The suggestion this step is meant for, e.g. the one an app shows;
            the current one by default. If anything was recorded since it was
            suggested, :class:`~almat.ledger.StaleQueryError` is raised before
            the oracle is asked, and nothing is recorded.

        Returns
        -------
        pandas.Series
            The new row of :attr:`history`.
        """
        query = self._target(None, query)
        return self._record(query, ask(self.oracle, self.pool, query.index, on_step))

    def _record(self, query: Query, answer: Label) -> pd.Series:
        """Record the oracle's answer for a pick: a label, or a skip with its reason."""
        name = self.oracle.name
        if answer.skipped:
            return self.ledger.add("skip", query, by=name, source=answer.source, reason=answer.reason)
        return self.ledger.add("label", query, by=name, source=answer.source, energy=answer.energy)

    def run(self, n: int) -> pd.DataFrame:
        """Do up to ``n`` steps, fewer if the budget or the pool runs out; returns their history rows."""
        rows = []
        for _ in range(int(n)):
            if self.done:
                break
            rows.append(self.step())
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS).reset_index(drop=True)

    def submit(self, value: Any, source: str = "human", index: int | None = None,
               query: Query | None = None) -> pd.Series:
        """Record a label typed by a person (or given by any outside source).

        Parameters
        ----------
        value
            Energy per atom in eV/atom, as a number or text.
        source
            Who labelled it; recorded as ``labelled_by``.
        index
            Candidate to label, chosen by hand; the current suggestion by default.
        query
            The suggestion the label is meant for, e.g. the one an app shows
            (give ``index`` or ``query``, not both).

        Raises
        ------
        LabelError
            The value is not a finite number, lies far outside the plausible
            range (see :func:`almat.labels.label_range`), or the
            candidate is labelled already (undo that label first). Nothing is recorded.
        StaleQueryError
            ``query`` was suggested before the latest event. Nothing is recorded.
        """
        return self.ledger.add("label", self._target(index, query), by=str(source), source=str(source),
                               energy=value)

    def skip(self, reason: str, index: int | None = None, source: str = "human",
             query: Query | None = None) -> pd.Series:
        """Record that a candidate will not be labelled, and why; it is not suggested again.

        ``index`` and ``query`` choose the candidate as in :meth:`submit`.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise CampaignError("Give a reason for skipping, e.g. 'calculation did not converge'.")
        return self.ledger.add("skip", self._target(index, query), by=str(source), source=str(source),
                               reason=reason.strip())

    def undo(self, source: str = "human", n_events: int | None = None) -> pd.Series:
        """Take back the most recent label or skip that still counts.

        The undo is a new event that names the step it undoes; the original
        line stays in the file. The candidate can then be labelled again.
        ``source`` records who undid it. With ``n_events``, the number of events
        the caller has seen (an app passes ``query.n_events`` of what it shows),
        an undo after events it has not seen is refused
        (:class:`~almat.ledger.StaleQueryError`): it would take back another's label.
        """
        return self.ledger.undo(source, n_events)

    def _target(self, index: int | None, query: Query | None = None) -> Query:
        """The candidate an action is for: ``query`` if still current, ``index``, or the suggestion."""
        if query is not None:
            if index is not None:
                raise CampaignError("Give the candidate as index= or as query=, not both.")
            if not isinstance(query, Query):
                raise CampaignError(f"query must be a Query from campaign.suggest(); got {query!r}.")
            if not 0 <= query.index < len(self.pool) or self.pool.ids[query.index] != query.id:
                raise CampaignError(f"Candidate {query.id} at index {query.index} is not in pool "
                                    f"{self.pool.name!r}; pass a query of this campaign's suggest().")
            self._check_budget()
            self.ledger.check_query(query, f"this action on {query.id}")
            return query
        if index is None:
            return self.suggest()
        if not isinstance(index, numbers.Integral) or not 0 <= index < len(self.pool):
            raise CampaignError(f"index must be an integer from 0 to {len(self.pool) - 1}; got {index!r}.")
        self._check_budget()
        if self._query is not None and self._query[0] == len(self.ledger.events) \
                and self._query[1].index == index:
            return self._query[1]
        return self._candidate(int(index), "manual", "chosen by hand")

    # -------------------------------------------------------------- records
    @property
    def history(self) -> pd.DataFrame:
        """Every event in order (see :attr:`almat.ledger.Ledger.history`)."""
        return self.ledger.history

    @property
    def labelled(self) -> pd.DataFrame:
        """The labels that count now, in the order they were given (see :attr:`almat.ledger.Ledger.labelled`)."""
        return self.ledger.labelled

    @property
    def skipped(self) -> pd.DataFrame:
        """Candidates skipped now, with the reasons."""
        return self.ledger.skipped

    def best(self) -> pd.Series | None:
        """The labelled candidate with the lowest energy (a row of :attr:`labelled`), or None."""
        return self.ledger.best()

    def best_so_far(self) -> pd.DataFrame:
        """Lowest label found against the number of labels (see :meth:`almat.ledger.Ledger.best_so_far`)."""
        return self.ledger.best_so_far()
