"""Relax many candidates on a Dask cluster, writing each result to disk as it arrives.

Relaxing the 630 allowed orderings of the lesson's pool takes about an hour
of two laptop cores; a real campaign with DFT takes far longer. The work is
handed to ``dask.distributed``: a ``LocalCluster`` on this machine by default,
or any running Dask cluster given by its scheduler address (one started by
``dask-jobqueue`` on an HPC batch queue, or in the cloud).

Every finished relaxation is appended to a JSON Lines file and flushed to disk
before the next one is taken, so

- a killed build resumes where it stopped: finished keys are never redone;
- a killed worker costs only the task it was running (Dask reschedules it);
- the file's first line records the settings, and a file made with other
  settings is refused instead of mixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pymatgen.core import Structure

from almat.errors import AlmatError
from almat.relaxation import Relaxation, RelaxSettings, relax_structure, settings_dict

#: Kind tag of the first line of a relaxations file.
HEADER_KIND = "almat-relaxations"


class RelaxationsFileError(AlmatError, ValueError):
    """A relaxations file belongs to other settings or is not one."""


def _header(settings: RelaxSettings) -> dict:
    import chgnet

    return {"kind": HEADER_KIND, "settings": settings_dict(settings),
            "chgnet": chgnet.__version__}


def read_relaxations(path: str | Path, settings: RelaxSettings | None = None) -> dict[str, dict]:
    """Finished records of a relaxations file, by key.

    A last line cut short by a crash is ignored (it is redone on resume).
    Raises :class:`RelaxationsFileError` if the file was made with other
    ``settings`` or is not a relaxations file.
    """
    path = Path(path)
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    if not lines:
        return {}
    try:
        head = json.loads(lines[0])
    except json.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or head.get("kind") != HEADER_KIND:
        raise RelaxationsFileError(f"{path} is not an almat relaxations file (first line: "
                                   f"{lines[0][:60]!r}). Give another path.")
    if settings is not None and head.get("settings") != settings_dict(settings):
        raise RelaxationsFileError(
            f"{path} holds relaxations made with {head.get('settings')}, not "
            f"{settings_dict(settings)}. Use the same settings to resume, or another file.")
    records: dict[str, dict] = {}
    for n, line in enumerate(lines[1:], start=2):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break  # cut short while being written; redone on resume
            raise RelaxationsFileError(f"{path}, line {n}: not JSON; the file is damaged.")
        records[rec["key"]] = rec
    return records


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line and flush it to disk before returning."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def start_file(path: Path, settings: RelaxSettings) -> None:
    """Create a relaxations file with its header line, unless it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        f = open(path, "x", encoding="utf-8")
    except FileExistsError:
        if path.stat().st_size:
            return
        f = open(path, "a", encoding="utf-8")
    with f:
        f.write(json.dumps(_header(settings)) + "\n")
        f.flush()
        os.fsync(f.fileno())


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
        JSON Lines file; keys already in it are not relaxed again.
    settings
        Relaxation settings; a file made with other settings is refused.
    scheduler
        Address of a running Dask scheduler (``"tcp://host:8786"``); ``None``
        starts a ``LocalCluster`` of ``n_workers`` processes.
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
    """
    from dask.distributed import Client, as_completed
    from tqdm.auto import tqdm

    path = Path(path)
    done = read_relaxations(path, settings)
    start_file(path, settings)
    todo = [k for k in structures if k not in done]
    if todo:
        cluster = None if scheduler else local_cluster(n_workers)
        client = Client(scheduler if scheduler else cluster)
        try:
            futures = [client.submit(_relax_task, k, structures[k].as_dict(),
                                     settings_dict(settings), torch_threads, key=f"relax-{k}",
                                     pure=False)
                       for k in todo]
            bar = tqdm(total=len(structures), initial=len(structures) - len(todo),
                       desc="relaxing", unit="candidate", disable=not progress)
            for future in as_completed(futures):
                record = future.result()
                append_record(path, record)
                done[record["key"]] = record
                bar.update()
            bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return {k: Relaxation.from_record(done[k]) for k in structures}
