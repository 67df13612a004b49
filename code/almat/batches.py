"""Labelling in batches: k picks per round, labelled in parallel on a Dask cluster.

A campaign that labels one candidate per round keeps one expensive
calculation running at a time. A batch campaign picks ``k`` candidates per
round (:meth:`almat.campaign.Campaign.suggest_batch`), records the picks
(:meth:`almat.ledger.Ledger.record_batch`), and hands them to :func:`label_batch`:

- an oracle whose ``parallel`` attribute is true labels the picks as tasks
  on ``dask.distributed`` (a ``LocalCluster`` on this machine, or a running
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

import asyncio
import concurrent.futures
import numbers
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from almat.errors import AlmatError
from almat.oracles import Label, OracleRefusal

if TYPE_CHECKING:
    from almat.ledger import Query
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


def ask(oracle: Any, pool: Pool, index: int, on_step=None) -> Label:
    """The oracle's answer for candidate ``index``; a refusal becomes a skipped :class:`Label`.

    ``on_step`` is passed on to an oracle that reports progress.
    """
    try:
        return oracle.label(pool, index) if on_step is None else oracle.label(pool, index, on_step=on_step)
    except OracleRefusal as refusal:
        return Label(None, oracle_name(oracle), skipped=True, reason=refusal.reason)


def oracle_name(oracle: Any) -> str:
    """What the history records as ``labelled_by``: the oracle's ``name``, else its class name."""
    return getattr(oracle, "name", type(oracle).__name__)


def label_batch(oracle: Any, pool: Pool, picks: Sequence[Query], client: Any = None, *,
                progress: bool = True, desc: str = "labelling") -> Iterator[tuple[Query, Label]]:
    """Label the picks; yields each pick with its answer as soon as that answer is ready.

    Parameters
    ----------
    oracle
        Labels a candidate (``oracle.label(pool, index)``).
    pool
        The candidates.
    picks
        The candidates to label.
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
            except (concurrent.futures.CancelledError, OSError, asyncio.TimeoutError) as err:
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
