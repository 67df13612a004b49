"""Probes of pool files: damaged or re-sorted files are refused, saving never leaves a mixed pool."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from reliability_helpers import fill_disk

from almat.files import OutputError
from almat.pool import POOL_DIR, PoolError, load_pool, save_pool

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


def test_fingerprints_are_the_ones_recorded_when_the_pool_was_built(shipped):
    recorded = json.loads((POOL_DIR / f"{NAME}.json").read_text())
    assert recorded["fingerprint"] == shipped.fingerprint
    assert recorded["reference_fingerprint"] == shipped.reference_fingerprint


def test_round_trip_keeps_both_fingerprints(shipped, tmp_path):
    small = shipped.subset(range(0, len(shipped), 20), name="small")
    save_pool(small, tmp_path)
    again = load_pool("small", tmp_path)
    assert (again.fingerprint, again.reference_fingerprint) == (small.fingerprint, small.reference_fingerprint)
    assert np.array_equal(again.energies, small.energies)


@pytest.mark.parametrize("shuffle", ["by energy", "within cell size 2"])
def test_resorted_rows_are_refused(copy, shuffle):
    csv = copy / f"{NAME}.csv"
    ref = pd.read_csv(csv, dtype=str)
    if shuffle == "by energy":
        ref = ref.sort_values("energy_per_atom")
    else:  # cell sizes still line up with the table, only the checksum sees it
        ref = pd.concat([ref.iloc[:48], ref.iloc[48:].sort_values("energy_per_atom")])
    ref.to_csv(csv, index=False)
    with pytest.raises(PoolError, match="re-sorted"):
        load_pool(NAME, copy)


def test_one_edited_energy_is_refused(copy):
    csv = copy / f"{NAME}.csv"
    text = csv.read_text()
    first = text.splitlines()[1].split(",")[2]  # the first candidate's energy, as stored
    csv.write_text(text.replace(first, first[:-3] + ("000" if first[-3:] != "000" else "111"), 1))
    with pytest.raises(PoolError, match="edited"):
        load_pool(NAME, copy)


def test_crlf_line_ends_are_not_damage(copy, shipped):
    csv = copy / f"{NAME}.csv"
    csv.write_bytes(csv.read_bytes().replace(b"\n", b"\r\n"))  # a Windows checkout
    assert load_pool(NAME, copy).reference_fingerprint == shipped.reference_fingerprint


@pytest.mark.parametrize("suffix,cut", [(".npz", 0.5), (".npz", 0.0), (".csv", 0.0), (".json", 0.5)])
def test_truncated_files_are_refused_with_what_to_do(copy, suffix, cut):
    path = copy / f"{NAME}{suffix}"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(PoolError, match="damaged or cut short") as info:
        load_pool(NAME, copy)
    assert path.name in str(info.value) and "build-pool" in str(info.value)


def test_a_csv_without_the_energies_is_refused(copy):
    csv = copy / f"{NAME}.csv"
    pd.read_csv(csv).drop(columns="energy_per_atom").to_csv(csv, index=False)
    with pytest.raises(PoolError, match="energy_per_atom"):
        load_pool(NAME, copy)


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
    with pytest.raises(PoolError, match="is not the one"):
        load_pool("p", tmp_path)
