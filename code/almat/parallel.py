"""Relax many candidates on a Dask cluster, writing each result to disk as it arrives.

Relaxing the 630 allowed orderings of the lesson's pool takes about an hour
of two laptop cores; a real campaign with DFT takes far longer. The work is
handed to ``dask.distributed``: a ``LocalCluster`` on this machine by default,
or any running Dask cluster given by its scheduler address (one started by
``dask-jobqueue`` on an HPC batch queue, or in the cloud).

Every finished relaxation is appended to a relaxations file (a shared
:class:`~almat.relaxation.RelaxationsJournal`) and fsync'ed before the next
one is taken, so

- a killed build resumes where it stopped: finished keys are never redone;
- a killed worker costs only the task it was running (Dask reschedules it);
- a lost scheduler ends the build with one line saying how many relaxations
  are kept and that the same command resumes;
- the file's header records the settings and the CHGNet version, and a file
  made otherwise is refused instead of mixed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from pymatgen.core import Structure

from almat.errors import AlmatError
from almat.relaxation import (
    Relaxation,
    RelaxationsJournal,
    RelaxSettings,
    relax_structure,
    settings_dict,
)

#: Seconds a Dask scheduler has to answer (connect and handshake) before it is given up on.
CONNECT_TIMEOUT = 10.0
#: What ``future.result()`` raises when the Dask scheduler is lost (the results that came are kept).
SCHEDULER_LOST = (concurrent.futures.CancelledError, OSError, asyncio.TimeoutError)


class SchedulerError(AlmatError, ValueError):
    """A scheduler address is malformed, or no Dask scheduler answers at it."""


class RelaxationsInterrupted(AlmatError, RuntimeError):
    """The Dask scheduler was lost mid-build; the finished relaxations are kept in the file."""


def read_relaxations(path: str | Path, settings: RelaxSettings | None = None) -> dict[str, dict]:
    """Finished records of a relaxations file, by key (nothing for a missing file).

    A last line cut short by a crash is dropped (it is redone on resume).
    Raises :class:`~almat.relaxation.RelaxationsFileError` if the file was made
    with other ``settings`` or another CHGNet (checked only when ``settings``
    is given), is not a relaxations file, or has a damaged line.
    """
    return {r["key"]: r for r in RelaxationsJournal(path, settings).read(create=False)}


def _relax_task(key: str, structure: dict, settings: dict, torch_threads: int) -> dict:
    """What a Dask worker runs: one relaxation, returned as a record."""
    import torch

    torch.set_num_threads(torch_threads)
    result = relax_structure(Structure.from_dict(structure), settings=RelaxSettings(**settings))
    return {"key": key, **result.to_record()}


def local_cluster(n_workers: int | None = None):
    """A ``LocalCluster`` of ``n_workers`` processes on 127.0.0.1, one task at a time each.

    By default one worker per core, each relaxation on one torch thread:
    on a 2-core machine shared with other work, ``benchmarks/relaxation.py``
    measured 12.3 candidates per minute for 2 workers x 1 thread, 9.6 for
    1 worker x 2 threads and 7.9 for CHGNet's StructOptimizer in a loop. Two
    torch threads also slowed down by up to 5x whenever another process took
    a core, while single-thread workers only shared it.
    """
    n_workers = n_workers or os.cpu_count() or 1
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=":0", silence_logs=40)


def check_scheduler(address: str, connect: bool = True) -> None:
    """Refuse a malformed scheduler address, or (``connect``) one where no Dask scheduler answers in time.

    The address is ``tcp://HOST:PORT`` (or ``HOST:PORT``), or ``tls://HOST:PORT``
    with the cluster's certificates in the Dask configuration. A service
    that is not a Dask scheduler, or none at all, is given up on after
    :data:`CONNECT_TIMEOUT` seconds: Dask's own client would wait forever on
    one that accepts the connection and never answers.
    """
    import dask

    example = "tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786 (the address `dask scheduler` prints)"
    if not isinstance(address, str) or not address.strip():
        raise SchedulerError(f"The scheduler address {address!r} is empty; give {example}.")
    scheme, sep, location = address.partition("://")
    scheme, location = (scheme, location) if sep else ("tcp", address)
    if scheme not in ("tcp", "tls"):
        raise SchedulerError(f"The scheduler address {address!r} is not a Dask address: almat "
                             f"connects over tcp:// (or tls://), not {scheme}://. Give {example}.")
    host, colon, port = location.rpartition(":")
    if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
        raise SchedulerError(f"The scheduler address {address!r} has no host and port number "
                             f"(1 to 65535); give {example}.")
    if scheme == "tls" and not dask.config.get("distributed.comm.tls.ca-file", None):
        raise SchedulerError(f"{address} is a TLS address, and the Dask configuration holds no "
                             "certificates (distributed.comm.tls); add the cluster's certificates "
                             "there, or give its tcp:// address.")
    failure = _handshake(f"{scheme}://{location}") if connect else None
    if failure is not None:
        raise SchedulerError(
            f"No Dask scheduler answered at {address} within {CONNECT_TIMEOUT:g} s ({failure}). "
            "Start one (`dask scheduler`) and give the address it prints, or give no scheduler to "
            "relax on this machine.")


def _handshake(address: str) -> str | None:
    """Connect to ``address`` and exchange Dask's handshake, in bounded time; what failed, or None."""
    from distributed.comm import connect
    from distributed.security import Security

    outcome: list[str | None] = []

    async def attempt() -> None:
        args = Security().get_connection_args("client")
        comm = await asyncio.wait_for(connect(address, timeout=CONNECT_TIMEOUT, **args), CONNECT_TIMEOUT)
        await comm.close()

    def run() -> None:  # in its own thread: a notebook's kernel already runs an event loop
        try:
            asyncio.run(attempt())
            outcome.append(None)
        except asyncio.TimeoutError:
            outcome.append("no answer")
        except OSError as err:
            outcome.append(str(err).splitlines()[0][:120])
        except Exception:  # noqa: BLE001 - Dask's reader fails in many ways on another protocol
            outcome.append("the service there does not speak Dask's protocol")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT + 5)
    return outcome[0] if outcome else "no answer"


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None) -> Iterator:
    """A Dask ``Client`` for the length of a ``with`` block, closed (with its cluster) at the end.

    ``scheduler`` is the address of a running Dask scheduler, checked first
    (:func:`check_scheduler`); ``None`` starts a :func:`local_cluster` of
    ``n_workers`` processes on this machine, closed again at the end.
    """
    from dask.distributed import Client

    if scheduler:
        check_scheduler(scheduler)
    cluster = None if scheduler else local_cluster(n_workers)
    try:
        client = Client(scheduler if scheduler else cluster, timeout=CONNECT_TIMEOUT)
        try:
            yield client
        finally:
            with suppress(OSError, asyncio.TimeoutError, RuntimeError):  # its scheduler may be gone
                client.close(timeout=CONNECT_TIMEOUT)
    finally:
        if cluster is not None:
            cluster.close()


def relax_many(structures: Mapping[str, Structure], path: str | Path,
               settings: RelaxSettings = RelaxSettings(), scheduler: str | None = None,
               n_workers: int | None = None, torch_threads: int = 1,
               progress: bool = True) -> dict[str, Relaxation]:
    """Relax every structure on a Dask cluster; results go to ``path`` as they finish.

    Parameters
    ----------
    structures
        Candidates by key (a key is any string without newlines, e.g. the pool id).
    path
        Relaxations file; keys already in it are not relaxed again.
    settings
        Relaxation settings; a file made with other settings, or by another
        CHGNet version, is refused.
    scheduler
        Address of a running Dask scheduler (``"tcp://host:8786"``), checked
        first (:func:`check_scheduler`); ``None`` starts a ``LocalCluster`` of
        ``n_workers`` processes.
    n_workers
        Worker processes of the local cluster; one per core by default (see :func:`local_cluster`).
    torch_threads
        Torch threads per relaxation.
    progress
        Show a progress bar.

    Returns
    -------
    dict
        Every key of ``structures`` with its :class:`~almat.relaxation.Relaxation`.

    Raises
    ------
    SchedulerError
        A malformed ``scheduler`` address, or no Dask scheduler answering there.
    RelaxationsInterrupted
        The scheduler was lost mid-build; what finished is kept, and the same call resumes.
    """
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    if scheduler:
        check_scheduler(scheduler, connect=False)  # a typo costs nothing, not even a file
    journal = RelaxationsJournal(path, settings)
    done = {r["key"]: r for r in journal.read()}
    todo = [k for k in structures if k not in done]
    if todo:
        with dask_client(scheduler, n_workers) as client:
            futures = [client.submit(_relax_task, k, structures[k].as_dict(),
                                     settings_dict(settings), torch_threads, key=f"relax-{k}",
                                     pure=False)
                       for k in todo]
            bar = tqdm(total=len(structures), initial=len(structures) - len(todo),
                       desc="relaxing", unit="candidate", disable=not progress)
            for future in as_completed(futures):
                try:
                    record = future.result()
                except SCHEDULER_LOST as err:
                    raise RelaxationsInterrupted(
                        f"The Dask scheduler was lost ({type(err).__name__}). {len(done)} finished "
                        f"relaxations are kept in {journal.path}; run the same command to resume."
                    ) from None
                for r in journal.append([record]):
                    done.setdefault(r["key"], r)
                bar.update()
            bar.close()
    return {k: Relaxation.from_record(done[k]) for k in structures}
