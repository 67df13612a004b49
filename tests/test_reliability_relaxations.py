"""Probes of the relaxations file and the relaxed oracle's cache (issue 18), without relaxing.

Relaxations are replaced by a stand-in that returns at once (the cache and
its file are under test, not CHGNet); the shipped relaxations file is real.
"""

import errno
import json
import os
import re
import socket
import threading
import time
import warnings

import numpy as np
import pytest

import almat.parallel
import almat.relaxation
from almat.enumeration import enumerate_table
from almat.journal import CutLineWarning, JournalError, JournalWriteError
from almat.oracles import RelaxedCHGNetOracle, parent_fingerprint
from almat.parallel import SchedulerError, read_relaxations, relax_many
from almat.pool import POOL_DIR, load_pool
from almat.pool_build import make_pool
from almat.relaxation import (
    Relaxation,
    RelaxationsFileError,
    RelaxationsJournal,
    RelaxSettings,
    upgrade_relaxations,
)
from almat.scoring import chgnet_version
from reliability_helpers import fill_disk

SHIPPED = POOL_DIR / "li6ps5cl.relaxations.jsonl"


def fake_relax(structure, model=None, settings=RelaxSettings(), on_step=None):
    """A relaxation stand-in: an energy that depends on the structure, at once."""
    energy = -4.3 - 1e-3 * float(np.mod(structure.frac_coords, 1.0).sum() % 10)
    return Relaxation(energy, energy + 0.02, 3, True, structure, 0.001)


def refuse_to_relax(*args, **kwargs):
    raise AssertionError("relaxed although the cache cannot be used")


@pytest.fixture(scope="module")
def pool(half):
    return make_pool(enumerate_table(half, max_cell_size=1), name="size1")


@pytest.fixture
def relaxing(monkeypatch):
    monkeypatch.setattr(almat.relaxation, "relax_structure", fake_relax)


# ------------------------------------------------------------------ the shipped file
def test_the_shipped_relaxations_file_is_intact_and_holds_the_pools_energies():
    records = RelaxationsJournal(SHIPPED, RelaxSettings()).read(create=False)  # every checksum
    pool = load_pool("li6ps5cl")
    by_key = {r["key"]: r for r in records}
    keys = [pool.orderings.key(i) for i in range(len(pool))]
    assert len(records) == len(pool) == 630 and set(keys) == set(by_key)
    for column, field in [("energy_per_atom", "energy_per_atom"),
                          ("unrelaxed_energy_per_atom", "unrelaxed_energy_per_atom"),
                          ("relax_steps", "steps"), ("converged", "converged")]:
        from_file = np.array([by_key[k][field] for k in keys])
        csv = pool.reference[column].to_numpy()
        assert np.array_equal(np.round(from_file, 8) if from_file.dtype == float else from_file, csv), column


def test_a_file_of_almat_before_journals_is_refused_until_upgraded_and_upgrading_keeps_every_digit(tmp_path):
    lines = SHIPPED.read_text().splitlines()
    header = json.loads(lines[0])
    old = [json.dumps({"kind": "almat-relaxations", "settings": header["settings"], "chgnet": header["chgnet"]})]
    for line in lines[1:]:
        record = json.loads(line)
        del record["check"]
        old.append(json.dumps(record))
    path = tmp_path / "li6ps5cl.relaxations.jsonl"
    path.write_text("\n".join(old) + "\n")
    with pytest.raises(RelaxationsFileError, match="earlier almat, without checksums.*upgrade_relaxations"):
        read_relaxations(path)
    assert upgrade_relaxations(path) == 630
    assert path.read_bytes() == SHIPPED.read_bytes()  # the shipped file was upgraded by this function


# ------------------------------------------------------------------ hand-edited records
def _edited(tmp_path, edit, line=3):
    """A copy of the first records of the shipped file with record ``line`` edited."""
    lines = SHIPPED.read_text().splitlines()[:6]
    record = json.loads(lines[line - 1])
    lines[line - 1] = edit(record) if callable(edit) else edit
    path = tmp_path / "relax.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("edit,words", [
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "key"}), "no key naming the candidate"),
    (lambda r: json.dumps(dict(r, energy_per_atom="-4.4")), "energy_per_atom '-4.4' is not a finite number"),
    (lambda r: json.dumps(dict(r, energy_per_atom=[-4.4])), r"energy_per_atom \[-4.4\] is not a finite"),
    (lambda r: json.dumps(dict(r, energy_per_atom=float("nan"))), "energy_per_atom nan is not a finite"),
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "lattice"}), "lattice is not 3 rows"),
    (lambda r: json.dumps(dict(r, frac_coords=r["frac_coords"][:-1])), "frac_coords is not 13 rows"),
    (lambda r: json.dumps(dict(r, converged="yes")), "converged 'yes' is not true or false"),
    (lambda r: json.dumps(dict(r, energy_per_atom=-99.0)), "changed after almat wrote it"),
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "check"}), "no checksum"),
    (lambda r: json.dumps(r)[:-1] + ', "extra": 1}', "changed after almat wrote it"),
    ("[1, 2, 3]", "is not a record"),
    ("{not json", "not valid JSON"),
])
def test_hand_edited_records_are_refused_by_file_and_line_and_never_enter_a_pool(tmp_path, edit, words):
    path = _edited(tmp_path, edit)
    content = path.read_bytes()
    with pytest.raises(RelaxationsFileError, match=f"Line 3 of {re.escape(str(path))}.*{words}") as err:
        read_relaxations(path, RelaxSettings())
    assert "\n" not in str(err.value) and "delete that line" in str(err.value)
    with pytest.raises(RelaxationsFileError):  # a build resuming from it stops before any work
        relax_many({"x": None}, path, progress=False)
    assert path.read_bytes() == content


def test_relaxations_of_another_chgnet_version_or_settings_are_refused(tmp_path):
    lines = SHIPPED.read_text().splitlines()[:3]
    path = tmp_path / "relax.jsonl"
    path.write_text("\n".join([json.dumps(dict(json.loads(lines[0]), chgnet="0.0.1"))] + lines[1:]) + "\n")
    with pytest.raises(RelaxationsFileError, match=f"CHGNet 0.0.1; this is CHGNet {chgnet_version()}"):
        relax_many({"x": None}, path, progress=False)
    with pytest.raises(RelaxationsFileError, match="fmax"):
        read_relaxations(SHIPPED, RelaxSettings(fmax=0.1))
    assert len(read_relaxations(path)) == 2  # without settings: read, whatever made it


def test_a_full_disk_names_the_file_and_keeps_it_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "relax.jsonl"
    path.write_text("\n".join(SHIPPED.read_text().splitlines()[:3]) + "\n")
    journal = RelaxationsJournal(path, RelaxSettings())
    record = journal.read()[0]
    content = path.read_bytes()
    fill_disk(monkeypatch, room=100)
    with pytest.raises(JournalWriteError, match=f"Could not save to {path} .*(No space left|only 100 of)"):
        journal.append([dict(record, key="new")])
    monkeypatch.undo()
    assert path.read_bytes() == content


# ------------------------------------------------------------------ schedulers
@pytest.mark.parametrize("address,words", [
    ("notaurl", "no host and port"), ("tcp://127.0.0.1:abc", "no host and port"),
    ("http://", "not http://"), ("http://127.0.0.1:8786", "not http://"),
    ("tls://127.0.0.1:8786", "holds no certificates"), ("tcp://:8786", "no host and port"),
    ("tcp://127.0.0.1:99999", "no host and port"), ("  ", "is empty"),
])
def test_malformed_scheduler_addresses_are_refused_in_one_line(tmp_path, pool, address, words):
    with pytest.raises(SchedulerError, match=words) as err:
        relax_many({pool.orderings.key(0): pool.structure(0)}, tmp_path / "r.jsonl", scheduler=address,
                   progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "r.jsonl").exists()


def test_build_pool_with_a_malformed_scheduler_ends_in_one_line_and_status_2(tmp_path, capsys):
    from almat.cli import main

    status = main(["build-pool", "--cell-sizes", "1", "--min-distance", "1.0", "--no-screen", "--steps",
                   "20", "--workers", "1", "--scheduler", "tcp://127.0.0.1:abc", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "'tcp://127.0.0.1:abc' has no host and port" in err


def _server(answer: bytes | None):
    """A TCP service on 127.0.0.1 that is not Dask: silent, or answering ``answer`` and hanging up."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.sendall(answer)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener


@pytest.mark.parametrize("answer", [None, b"HTTP/1.1 400 Bad Request\r\n\r\n", b"SSH-2.0-OpenSSH_9.2\r\n"],
                         ids=["silent", "http", "ssh"])
def test_a_service_that_is_not_a_dask_scheduler_is_refused_in_bounded_time(tmp_path, pool, monkeypatch,
                                                                           answer):
    monkeypatch.setattr(almat.parallel, "CONNECT_TIMEOUT", 2.0)
    listener = _server(answer)
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(SchedulerError, match=f"No Dask scheduler answered at {address} within 2 s"):
            relax_many({pool.orderings.key(0): pool.structure(0)}, tmp_path / "r.jsonl",
                       scheduler=address, progress=False)
    finally:
        listener.close()
    assert time.monotonic() - start < 2.0 + 6.0


def test_a_closed_port_is_refused_in_bounded_time(monkeypatch):
    monkeypatch.setattr(almat.parallel, "CONNECT_TIMEOUT", 1.0)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed
    start = time.monotonic()
    with pytest.raises(SchedulerError, match="No Dask scheduler answered"):
        almat.parallel.check_scheduler(f"127.0.0.1:{port}")
    assert time.monotonic() - start < 1.0 + 6.0


# ------------------------------------------------------------------ the relaxed oracle's cache
def test_the_cache_is_keyed_by_candidate_and_read_once_per_session(tmp_path, pool, relaxing, monkeypatch):
    reads = []
    real_read = RelaxationsJournal.read
    monkeypatch.setattr(RelaxationsJournal, "read", lambda self, *a, **k: reads.append(1) or real_read(self, *a, **k))
    oracle = RelaxedCHGNetOracle(cache=tmp_path / "cache.jsonl")
    values = [oracle.label(pool, i).energy for i in (3, 5, 3, 7)]
    assert len(reads) == 1 and values[0] == values[2]
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    assert [json.loads(line)["key"] for line in lines[1:]] == [pool.orderings.key(i) for i in (3, 5, 7)]
    assert header["parent"] == parent_fingerprint(pool) and header["chgnet"] == chgnet_version()
    monkeypatch.setattr(almat.relaxation, "relax_structure", refuse_to_relax)
    again = RelaxedCHGNetOracle(cache=tmp_path / "cache.jsonl")  # a restarted kernel
    assert again.label(pool, 5).energy == values[1]


def test_other_settings_in_the_same_folder_get_their_own_file(tmp_path, pool, relaxing, monkeypatch):
    monkeypatch.setenv("ALMAT_CACHE_DIR", str(tmp_path))
    first, other = RelaxedCHGNetOracle(), RelaxedCHGNetOracle(RelaxSettings(fmax=0.1))
    first.label(pool, 1)
    other.label(pool, 1)
    paths = [first.cache_path(pool), other.cache_path(pool)]
    assert paths[0] != paths[1] and all(p.parent == tmp_path and p.exists() for p in paths)
    assert "fmax0.05-steps500-cell" in paths[0].name and "fmax0.1-steps500-cell" in paths[1].name
    with pytest.raises(RelaxationsFileError, match="fmax"):  # the same file, given by hand: refused
        RelaxedCHGNetOracle(RelaxSettings(fmax=0.1), cache=paths[0]).label(pool, 1)


def test_another_pools_parent_is_refused_in_a_cache_given_by_hand(tmp_path, pool, relaxing, half):
    cache = tmp_path / "cache.jsonl"
    RelaxedCHGNetOracle(cache=cache).label(pool, 1)
    strained = half.copy()
    strained.scale_lattice(half.volume * 1.03)  # the same keys name other structures
    other = make_pool(enumerate_table(strained, max_cell_size=1), name="strained")
    assert other.orderings.key(1) == pool.orderings.key(1)
    with pytest.raises(RelaxationsFileError, match="another parent structure"):
        RelaxedCHGNetOracle(cache=cache).label(other, 1)


def test_a_cache_that_cannot_be_used_fails_before_any_relaxation(tmp_path, pool, monkeypatch):
    monkeypatch.setattr(almat.relaxation, "relax_structure", refuse_to_relax)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(JournalWriteError, match=f"{folder} is a folder, not a file") as err:
        RelaxedCHGNetOracle(cache=folder).label(pool, 0)
    assert "\n" not in str(err.value)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(JournalWriteError, match="Cannot create the folder of"):
        RelaxedCHGNetOracle(cache=blocker / "cache.jsonl").label(pool, 0)
    real_open = os.open
    readonly = tmp_path / "ro" / "cache.jsonl"

    def read_only_file_system(file, flags, *args, **kwargs):
        if os.fspath(file) == os.fspath(readonly) and flags & os.O_RDWR:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_file_system)
    with pytest.raises(JournalWriteError, match=f"Cannot open {readonly} .*Read-only file system"):
        RelaxedCHGNetOracle(cache=readonly).label(pool, 0)


def test_a_nan_in_the_cache_is_a_damaged_line_not_a_label(tmp_path, pool, relaxing):
    from almat.campaign import Campaign

    cache = tmp_path / "cache.jsonl"
    RelaxedCHGNetOracle(cache=cache).label(pool, 2)
    lines = cache.read_text().splitlines()
    lines[1] = lines[1].replace('"energy_per_atom": -', '"energy_per_atom": NaN, "was": -', 1)
    cache.write_text("\n".join(lines) + "\n")
    campaign = Campaign(pool, RelaxedCHGNetOracle(cache=cache), features=np.ones((len(pool), 1)))
    with pytest.raises(RelaxationsFileError, match=f"Line 2 of {cache}: energy_per_atom nan is not a finite"):
        campaign.step()
    assert campaign.history.empty  # nothing recorded: not a skip, not a label


def test_a_cut_line_in_the_cache_is_dropped_and_the_next_label_is_kept(tmp_path, pool, relaxing):
    cache = tmp_path / "cache.jsonl"
    oracle = RelaxedCHGNetOracle(cache=cache)
    oracle.label(pool, 1)
    with cache.open("a") as fh:
        fh.write('{"key": "1:1,0,0,0,1,0,0,0,1:0101", "energy_per_a')  # another kernel died mid-write
    with pytest.warns(CutLineWarning, match="cut short"):
        oracle.label(pool, 2)  # this session's journal takes the cut line away before appending
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keys = list(read_relaxations(cache, RelaxSettings()))
    assert keys == [pool.orderings.key(1), pool.orderings.key(2)]
    oracle_after_restart = RelaxedCHGNetOracle(cache=cache)
    oracle_after_restart.label(pool, 3)
    assert len(read_relaxations(cache)) == 3


def test_record_errors_are_almat_errors():
    assert issubclass(RelaxationsFileError, JournalError) and issubclass(SchedulerError, ValueError)
    with pytest.raises(RelaxationsFileError, match="Not a relaxation record: steps -1"):
        Relaxation.from_record(dict(json.loads(SHIPPED.read_text().splitlines()[1]), steps=-1))
