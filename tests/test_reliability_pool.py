"""Probes of pool files: a tampered, damaged or mixed pool is refused at load_pool, saving never
leaves a mixed pool, and labels files of one pool are refused on any other."""

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from reliability_helpers import fill_disk

from almat.files import OutputError
from almat.labels import LabelsFileError
from almat.ledger import Ledger
from almat.orderings import Orderings
from almat.pool import EARLIER_FINGERPRINTS, POOL_DIR, Pool, PoolError, load_pool, save_pool

NAME = "li6ps5cl"


@pytest.fixture(scope="module")
def shipped():
    return load_pool(NAME)


@pytest.fixture
def copy(tmp_path):
    """A copy of the shipped pool's files to damage."""
    for suffix in (".npz", ".csv", ".json"):
        shutil.copy(POOL_DIR / f"{NAME}{suffix}", tmp_path)
    return tmp_path


def refused(copy, *words):
    with pytest.raises(PoolError) as info:
        load_pool(NAME, copy)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("name", [NAME, "li6ps5cl-size3"])
def test_fingerprint_is_the_one_recorded_when_the_pool_was_built(name):
    recorded = json.loads((POOL_DIR / f"{name}.json").read_text())
    assert recorded["fingerprint"] == load_pool(name).fingerprint


@pytest.mark.parametrize("name", [NAME, "li6ps5cl-size3"])
def test_earlier_fingerprints_are_those_of_the_shipped_tables(name):
    """The fingerprint labels files recorded before, computed as almat computed it then: the table only."""
    pool = load_pool(name)
    o = pool.orderings
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(o.hnfs[o.hnf_index]).astype(np.int64).tobytes())
    h.update(np.ascontiguousarray(o.occupations).astype(np.int8).tobytes())
    assert EARLIER_FINGERPRINTS[pool.fingerprint] == (h.hexdigest()[:16],)
    assert pool.accepted_fingerprints == (pool.fingerprint, h.hexdigest()[:16])
    assert pool.subset(range(10)).accepted_fingerprints == (pool.subset(range(10)).fingerprint,)


def test_round_trip_keeps_the_fingerprint_and_the_bytes(shipped, tmp_path):
    small = shipped.subset(range(0, len(shipped), 20), name="small")
    save_pool(small, tmp_path / "a")
    again = load_pool("small", tmp_path / "a")
    assert again.fingerprint == small.fingerprint
    assert np.array_equal(again.energies, small.energies)
    save_pool(again, tmp_path / "b")
    for suffix in (".npz", ".csv", ".json"):  # no clock time in any file
        assert (tmp_path / "a" / f"small{suffix}").read_bytes() == (tmp_path / "b" / f"small{suffix}").read_bytes()


def _changed(pool: Pool, part: str) -> Pool:
    """``pool`` with one part of its definition changed, everything else as it was."""
    o, ref = pool.orderings, pool.reference.copy()
    parent, sites, species, hnfs, index, occupations = o.parent, o.sites, o.species, o.hnfs, o.hnf_index, o.occupations
    if part == "parent":
        parent = parent.copy()
        parent.translate_sites([0], [1e-3, 0, 0])
    elif part == "species":
        species = tuple(tuple(reversed(s)) for s in species)
    elif part == "sites":
        sites = sites[::-1].copy()
    elif part == "hnfs":
        hnfs = np.concatenate([hnfs, hnfs[:1]])  # one more HNF, used by no row
    elif part == "hnf_index":  # two cell-size-2 rows swap supercells, their occupations stay
        index = index.copy()
        two = np.flatnonzero(index != index[-1])[-1]
        index[[two, -1]] = index[[-1, two]]
        ref["cell_size"] = Orderings(parent, sites, species, hnfs, index, occupations).cell_sizes
    elif part == "occupations":
        occupations = occupations.copy()
        occupations[[-1, -2]] = occupations[[-2, -1]]
    elif part == "ids":
        ref.index = pd.Index([f"x{i}" for i in range(len(ref))], name="id")
    elif part == "energy order":
        ref["energy_per_atom"] = ref["energy_per_atom"].to_numpy()[::-1]
    elif part == "one energy":
        ref.iloc[0, ref.columns.get_loc("energy_per_atom")] += 1e-7
    elif part == "column order":
        ref = ref[list(reversed(ref.columns))]
    elif part == "extra column":
        ref["note"] = 0
    return Pool(pool.name, Orderings(parent, sites, species, hnfs, index, occupations), ref)


@pytest.mark.parametrize("part", ["parent", "species", "sites", "hnfs", "hnf_index", "occupations", "ids",
                                  "energy order", "one energy", "column order", "extra column"])
def test_the_fingerprint_covers_every_part_of_the_pool(shipped, part):
    small = shipped.subset(np.r_[0:4, 100:110], name="small")
    assert _changed(small, part).fingerprint != small.fingerprint
    assert _changed(small, "none").fingerprint == small.fingerprint


@pytest.mark.parametrize("json_text", [None, "[]", "{}", '{"name": "li6ps5cl"}'])
@pytest.mark.parametrize("reorder", [False, True])
def test_a_pool_without_its_fingerprint_is_refused(copy, json_text, reorder):
    """Today's probe: with its JSON removed or reduced to [], a re-ordered pool loaded as if intact."""
    meta = copy / f"{NAME}.json"
    if json_text is None:
        meta.unlink()
    else:
        meta.write_text(json_text)
    if reorder:
        csv = copy / f"{NAME}.csv"
        ref = pd.read_csv(csv, dtype=str)
        ref["energy_per_atom"] = ref["energy_per_atom"].to_numpy()[::-1]
        ref.to_csv(csv, index=False)
    refused(copy, NAME, "fingerprint")


def test_an_energy_column_reordered_alone_is_refused(copy):
    csv = copy / f"{NAME}.csv"
    ref = pd.read_csv(csv, dtype=str)
    ref["energy_per_atom"] = ref["energy_per_atom"].to_numpy()[::-1]  # ids and cell sizes still line up
    ref.to_csv(csv, index=False)
    refused(copy, "re-sorted or edited", "wrong structures")


@pytest.mark.parametrize("shuffle", ["by energy", "within cell size 2"])
def test_resorted_rows_are_refused(copy, shuffle):
    csv = copy / f"{NAME}.csv"
    ref = pd.read_csv(csv, dtype=str)
    if shuffle == "by energy":
        ref = ref.sort_values("energy_per_atom")
    else:  # cell sizes still line up with the table, only the fingerprint sees it
        ref = pd.concat([ref.iloc[:48], ref.iloc[48:].sort_values("energy_per_atom")])
    ref.to_csv(csv, index=False)
    refused(copy, "re-sorted")


def test_one_edited_energy_is_refused(copy):
    csv = copy / f"{NAME}.csv"
    text = csv.read_text()
    first = text.splitlines()[1].split(",")[2]  # the first candidate's energy, as stored
    csv.write_text(text.replace(first, first[:-3] + ("000" if first[-3:] != "000" else "111"), 1))
    refused(copy, "edited")


def test_a_text_energy_is_refused_by_name(copy):
    csv = copy / f"{NAME}.csv"
    ref = pd.read_csv(csv, dtype=str)
    ref.loc[3, "energy_per_atom"] = "-4.4O"  # a letter O for a zero
    ref.to_csv(csv, index=False)
    refused(copy, "energy_per_atom", "'-4.4O'", ref.loc[3, "id"], "not numbers")


@pytest.mark.parametrize("column", ["energy_per_atom", "min_li_li", "cell_size"])
def test_a_missing_column_is_refused_by_name(copy, column):
    csv = copy / f"{NAME}.csv"
    pd.read_csv(csv, dtype=str).drop(columns=column).to_csv(csv, index=False)
    refused(copy, f"no column {column}")


@pytest.mark.parametrize("bad", [99, -1])
def test_a_bad_hnf_index_is_refused(copy, shipped, bad):
    npz = copy / f"{NAME}.npz"
    with np.load(npz) as z:
        arrays = dict(z)
    arrays["hnf_index"][5] = bad
    np.savez_compressed(npz, **arrays)
    refused(copy, "hnf_index", str(bad), "names no supercell")


def test_a_pool_in_memory_is_checked_too(shipped):
    with pytest.raises(PoolError, match="energy_per_atom holds .* values \\('x' for c1-000000\\), not numbers"):
        Pool("p", shipped.orderings, shipped.reference.assign(energy_per_atom="x"))
    with pytest.raises(PoolError, match="no column min_li_li"):
        Pool("p", shipped.orderings, shipped.reference.drop(columns="min_li_li"))
    with pytest.raises(PoolError, match="id 'c1-000000' twice"):
        Pool("p", shipped.orderings, shipped.reference.rename(index={"c1-000001": "c1-000000"}))


def test_an_unfinished_build_says_how_to_finish_it(copy):
    (copy / f"{NAME}.json").write_text(json.dumps({"build": {"cell_sizes": [1]}}))
    (copy / f"{NAME}.csv").unlink()
    refused(copy, "not finished", "same `almat build-pool` command")


def _labels_file(pool, path, fingerprint=None):
    Ledger(pool, path, seed=1)
    if fingerprint is not None:  # as an earlier almat wrote it
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        header["fingerprint"] = fingerprint
        path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return path


def test_labels_files_of_the_shipped_pool_are_refused_on_a_tampered_pool(shipped, tmp_path):
    reordered = _changed(shipped, "energy order")  # built in memory, as no file would load
    for name, fingerprint in [("now", None), ("earlier", EARLIER_FINGERPRINTS[shipped.fingerprint][0])]:
        path = _labels_file(shipped, tmp_path / f"{name}.jsonl", fingerprint)
        Ledger(shipped, path, seed=1)  # the untouched shipped pool accepts both
        with pytest.raises(LabelsFileError, match="mean nothing for another"):
            Ledger(reordered, path, seed=1)


def test_crlf_line_ends_are_not_damage(copy, shipped):
    csv = copy / f"{NAME}.csv"
    csv.write_bytes(csv.read_bytes().replace(b"\n", b"\r\n"))  # a Windows checkout
    assert load_pool(NAME, copy).fingerprint == shipped.fingerprint


@pytest.mark.parametrize("suffix,cut", [(".npz", 0.5), (".npz", 0.0), (".csv", 0.0), (".json", 0.5)])
def test_truncated_files_are_refused_with_what_to_do(copy, suffix, cut):
    path = copy / f"{NAME}{suffix}"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    refused(copy, "damaged or cut short", path.name, "build-pool")


def test_full_disk_while_saving_never_gives_a_mixed_pool(shipped, tmp_path, tmp_path_factory, monkeypatch):
    old = shipped.subset(range(100), name="p")
    save_pool(old, tmp_path)
    new = shipped.subset(range(50, 150), name="p")
    npz_size = save_pool(new, tmp_path_factory.mktemp("measure")).stat().st_size
    fill_disk(monkeypatch, room=npz_size + 500)  # the table fits, the CSV is cut
    with pytest.raises(OutputError, match="disk is full"):
        save_pool(new, tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json", "p.npz"]  # no temp file
    with pytest.raises(PoolError, match="mixed"):
        load_pool("p", tmp_path)
