"""Labelling in batches: k picks per round, recorded first, labelled in parallel on a Dask cluster.

A campaign that labels one candidate per round keeps one expensive
calculation running at a time. A batch campaign picks ``k`` candidates per
round (:meth:`BatchMixin.suggest_batch`), records the picks as a ``batch``
event (:class:`~almat.batch_book.BatchBook`, kept by the ledger), and hands
them to :func:`label_batch`:

- an oracle that declares ``parallel`` labels the picks as tasks on
  ``dask.distributed`` (a ``LocalCluster`` on this machine, or a running
  scheduler: :func:`almat.parallel.dask_client`), and each label comes back
  as soon as it is ready, in whatever order;
- any other oracle (a person, a notebook's own function) labels them one by
  one in this process.

How the picks after the first are chosen (:data:`BATCH_METHODS`):

``believer``
    kriging believer: the surrogate is refitted as if each earlier pick of the
    batch had its predicted energy ``μ``, and the strategy picks again. For a
    Bayesian linear model with fixed precisions the fantasy leaves ``μ`` as it
    was and shrinks ``σ`` around the pick.
``liar``
    constant liar: as ``believer``, with the highest label so far as every
    fantasy energy, which pushes the next picks away from the earlier ones.
``thompson``
    Thompson sampling: each further pick is the lowest energy of one draw
    from the surrogate's posterior (``sample_y``).

In every method the first pick is the sequential campaign's, so a batch of 1 is
exactly the sequential campaign.
"""

from __future__ import annotations

import numbers
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from almat.errors import AlmatError
from almat.labels import HISTORY_COLUMNS
from almat.ledger import Query
from almat.oracles import Label, Oracle, OracleRefusal
from almat.parallel import SCHEDULER_LOST, check_scheduler, dask_client

if TYPE_CHECKING:
    from almat.pool import Pool

#: How the picks after the first one of a batch are chosen (see the module's description).
BATCH_METHODS = ("believer", "liar", "thompson")
#: The method of :meth:`~almat.campaign.Campaign.run_batch` when none is given. Chosen by
#: ``benchmarks/batch_benchmark.py``: on 20 perturbed problems (80 % subsets of the lesson's
#: pool) the constant liar needed the fewest labels to the minimum for k = 2, 4 and 8 (median
#: 44, 44, 48 against 46, 52, 56 for the believer and 61, 64, 64 for Thompson sampling).
DEFAULT_BATCH_METHOD = "liar"


class BatchError(AlmatError, ValueError):
    """A batch size or method that cannot be used."""


class LabellingInterrupted(AlmatError, RuntimeError):
    """The Dask scheduler was lost while a batch was labelled; the labels that arrived are saved."""


def check_batch(k: Any, method: Any) -> tuple[int, str]:
    """The batch size and method, or a :class:`BatchError` naming what to give instead."""
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise BatchError(f"The batch size k must be a positive integer; got {k!r}.")
    if method not in BATCH_METHODS:
        raise BatchError(f"Unknown batch method {method!r}; choose one of {', '.join(BATCH_METHODS)}.")
    return int(k), method


def ask(oracle: Oracle, pool: Pool, index: int,
        on_step: Callable[[int, float], None] | None = None) -> Label:
    """The oracle's answer for candidate ``index``; a refusal becomes a skipped :class:`Label`.

    ``on_step`` is passed on to the oracle, which reports progress with it if it works in steps.
    """
    try:
        return oracle.label(pool, index, on_step=on_step)
    except OracleRefusal as refusal:
        return Label(None, oracle.name, skipped=True, reason=refusal.reason)


def label_batch(oracle: Oracle, pool: Pool, picks: Sequence[Query], client: Any = None, *,
                progress: bool = True, desc: str = "labelling") -> Iterator[tuple[Query, Label]]:
    """Label the picks; yields each pick with its answer as soon as that answer is ready.

    Parameters
    ----------
    oracle
        Labels a candidate (see :class:`almat.oracles.Oracle`).
    pool
        The candidates.
    picks
        The candidates to label, the picks of an open batch.
    client
        A Dask ``Client``: each pick is a task on its cluster (the oracle and
        the pool are sent with it), and answers come in the order they finish.
        ``None``: the picks are labelled one by one, here, in order.
    progress, desc
        Show a progress bar with this description.

    Raises
    ------
    LabellingInterrupted
        The scheduler was lost; the answers yielded before are all there is.
    Exception
        The first error an oracle raised on a worker, once every other pick's
        answer has been yielded.
    """
    from tqdm.auto import tqdm

    with tqdm(total=len(picks), desc=desc, unit="label", disable=not progress) as bar:
        if client is None:
            for query in picks:
                yield query, ask(oracle, pool, query.index)
                bar.update()
            return
        from dask.distributed import as_completed
        from distributed.scheduler import KilledWorker

        token = uuid.uuid4().hex[:8]
        futures = {client.submit(ask, oracle, pool, query.index, key=f"label-{query.id}-{token}",
                                 pure=False): query for query in picks}
        failures = []
        for future in as_completed(futures):
            try:
                answer = future.result()
            except SCHEDULER_LOST as err:
                raise LabellingInterrupted(
                    f"The Dask scheduler was lost ({type(err).__name__}) while a batch was labelled; "
                    "every label that arrived is saved and the others stay pending: run the batch "
                    "again to label them.") from None
            except KilledWorker:
                query = futures[future]
                failures.append(LabellingInterrupted(
                    f"Every Dask worker that labelled candidate {query.id} died (out of memory?); it "
                    f"stays pending: run the batch again to retry it, or skip it with "
                    f"campaign.skip(reason, index={query.index})."))
                continue
            except Exception as err:  # noqa: BLE001 - the oracle's own error, raised once the rest is in
                failures.append(err)
                continue
            yield futures[future], answer
            bar.update()
        if failures:
            raise failures[0]


class BatchMixin:
    """The batch methods of :class:`~almat.campaign.Campaign`: k picks per round, labelled in parallel.

    They use the campaign's surrogate, strategy, head start and ledger; see the
    module's description for how the picks after the first are chosen.
    """

    def suggest_batch(self, k: int, method: str = DEFAULT_BATCH_METHOD) -> list[Query]:
        """The next ``k`` candidates to label as one batch, without labelling them.

        The first is :meth:`~almat.campaign.Campaign.suggest`'s pick, so a batch of 1
        is the sequential campaign's. The others are picked as ``method``
        (``"believer"``, ``"liar"`` or ``"thompson"``) says; during the head start,
        and until the surrogate has its first labels, they are the next initial
        picks (the next cheapest). Fewer than ``k`` when the budget or the pool
        runs out. Each pick's ``mu`` and ``sigma`` are those of the surrogate
        fitted to the labels; its ``reason`` gives the numbers the method saw.
        While a batch is open (recorded, not all labelled), its pending picks
        are returned instead.
        """
        k, method = check_batch(k, method)
        pending = self.ledger.pending()
        if pending:
            return pending
        picks = [self.suggest()]  # refuses a spent budget or an empty pool
        n, n_events = self.n_labels, len(self.ledger.events)
        taken = self.ledger.taken()
        taken[picks[0].index] = True
        k = min(k, 1 + int((~taken).sum()), k if self.budget is None else self.budget - n)
        model, mu, sigma = self._fitted()
        idx, y = self.ledger.labels_in_pick_order()
        fantasise = method != "thompson" and model is not None
        lie = float(y.max()) if fantasise and method == "liar" else None
        fitted = True  # mu and sigma are those of the model fitted to y, fantasies included
        for j in range(1, k):
            if fantasise:  # the previous pick counts as labelled, with its fantasy energy
                if not fitted:
                    _, mu, sigma = self._fit_predict(idx, y)
                i = picks[-1].index
                idx, y = np.append(idx, i), np.append(y, mu[i] if lie is None else lie)
                fitted = False
            available = np.flatnonzero(~taken)
            rng = np.random.default_rng([self.seed, n_events, j])
            where = f"batch pick {j + 1} of {k}"
            if model is None or self._in_head_start(n + j + 1):
                query = self._initial_pick(available, rng, n + j + 1, n_events)
            elif method == "thompson":
                if not hasattr(model, "sample_y"):
                    raise BatchError(
                        f"method='thompson' needs a surrogate with sample_y(X, n_samples, random_state); "
                        f"{type(model).__name__} has none. Use method='liar' or 'believer'.")
                draw = model.sample_y(self.features, 1, random_state=rng)[:, 0]
                i = int(available[np.argmin(draw[available])])
                query = self._candidate(i, "thompson",
                                        f"Thompson sampling: the lowest energy in a draw from the "
                                        f"surrogate's posterior ({draw[i]:.4f} eV/atom; μ = {mu[i]:.4f} "
                                        f"eV/atom, σ = {sigma[i] * 1000:.1f} meV/atom), {where}.", n_events)
            else:
                if not fitted:
                    _, mu, sigma = self._fit_predict(idx, y)
                    fitted = True
                best = float(y.min())
                scores = self._strategy(mu[available], sigma[available], best=best, rng=rng)
                i = int(available[np.argmax(scores)])
                fantasy = ("its predicted energy (kriging believer)" if lie is None else
                           f"the highest label, {lie:.4f} eV/atom (constant liar)")
                query = self._candidate(i, self.strategy,
                                        f"{self._strategy.explain(mu[i], sigma[i], best)} In this {where}, "
                                        f"each earlier pick counts as labelled with {fantasy}.", n_events)
            picks.append(query)
            taken[query.index] = True
        return picks

    def run_batch(self, k: int, rounds: int = 1, *, method: str = DEFAULT_BATCH_METHOD,
                  scheduler: str | None = None, n_workers: int | None = None, in_process: bool = False,
                  progress: bool = True) -> pd.DataFrame:
        """Label up to ``rounds`` batches of ``k`` candidates; returns the history rows of the labels.

        Each round picks ``k`` candidates (:meth:`suggest_batch`), saves the
        picks in the labels file, then has the oracle label them; every label
        is saved as it arrives. An oracle that declares ``parallel`` labels on
        ``dask.distributed``, one task per pick; any other labels the picks one
        by one here. A batch left open (the kernel died mid-round) is finished
        first, as the first round, without picking it again. Stops early when
        the budget or the pool is spent.

        Parameters
        ----------
        k
            Candidates per round.
        rounds
            Number of rounds.
        method
            How the picks after the first are chosen: ``"believer"``,
            ``"liar"`` or ``"thompson"`` (see :mod:`almat.batches`).
        scheduler
            Address of a running Dask scheduler (``"tcp://host:8786"``); ``None``
            starts a ``LocalCluster`` on this machine for the length of the call,
            as ``almat build-pool`` does (:func:`almat.parallel.local_cluster`).
        n_workers
            Worker processes of that ``LocalCluster``; one per core by default.
        in_process
            Label here, one by one, even with an oracle that could run on Dask.
        progress
            Show a progress bar for each round.

        Raises
        ------
        SchedulerError
            A malformed ``scheduler`` address or none answering there; nothing is recorded.
        LabellingInterrupted
            The scheduler was lost mid-round; the labels that arrived are saved.
        """
        k, method = check_batch(k, method)
        if not isinstance(rounds, numbers.Integral) or isinstance(rounds, bool) or rounds < 0:
            raise BatchError(f"rounds must be a whole number, 0 or more; got {rounds!r}.")
        parallel = bool(self.oracle.parallel) and not in_process
        if parallel and scheduler:
            check_scheduler(scheduler, connect=False)  # a typo costs nothing, not even a cluster
        rows = []
        work = (not self.done or self.ledger.pending()) and rounds
        with dask_client(scheduler, n_workers) if parallel and work else nullcontext() as client:
            for _ in range(int(rounds)):
                picks = self.ledger.pending()
                if not picks:
                    if self.done:
                        break
                    picks = self.ledger.record_batch(self.suggest_batch(k, method), method)
                desc = f"batch {self.ledger.batch_book.events[-1]['batch']}"
                for query, answer in label_batch(self.oracle, self.pool, picks, client,
                                                 progress=progress, desc=desc):
                    rows.append(self._record(query, answer))
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS).reset_index(drop=True)

    def best_by_batch(self) -> pd.DataFrame:
        """Lowest label found by the end of each batch (see :meth:`almat.batch_book.BatchBook.best_by_batch`)."""
        return self.ledger.batch_book.best_by_batch(self.ledger.labelled, len(self.ledger.events))
