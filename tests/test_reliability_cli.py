"""Probes of the ``almat`` command: nothing silently wrong, nothing lost, one clear line per refusal.

Refusals must come before any long work, so most tests replace
``score_structures`` by a stand-in that fails if it is called, or that returns
made-up numbers: what is under test is the command's handling of files.
"""

import errno
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from reliability_helpers import files_in, fill_disk, read_only_folder

import almat.scoring
from almat.cli import main
from almat.structures import PARENT_CIF, build_parent, set_occupancy

SHIPPED = PARENT_CIF.read_text().splitlines(keepends=True)


def cut_cif(tmp_path, keep_last: str, drop_formula: bool = False):
    """The shipped CIF cut after the atom-site line that starts with ``keep_last``."""
    end = next(i for i, line in enumerate(SHIPPED) if line.strip().startswith(keep_last))
    lines = [line for line in SHIPPED[:end + 1] if not (drop_formula and "_chemical_formula" in line)]
    path = tmp_path / "cut.cif"
    path.write_text("".join(lines))
    return path


@pytest.fixture
def no_chgnet(monkeypatch):
    """Fail the test if the command gets as far as scoring."""
    def refuse(*args, **kwargs):
        raise AssertionError("score_structures ran although the command should have refused first")
    monkeypatch.setattr(almat.scoring, "score_structures", refuse)


@pytest.fixture
def fake_scores(monkeypatch):
    """A stand-in for CHGNet: energy -4 eV/atom, forces 0.1 eV/Å, for as many structures as given."""
    def score(structures, forces=False, stress=False, **kwargs):
        rows = [{"formula": s.composition.reduced_formula, "n_atoms": len(s), "energy_per_atom": -4.0,
                 "total_energy": -4.0 * len(s)} for s in structures]
        for row in rows:
            if forces or stress:
                row["forces"] = np.full((row["n_atoms"], 3), 0.1)
            if stress:
                row["stress"] = np.zeros((3, 3))
        return pd.DataFrame(rows)
    monkeypatch.setattr(almat.scoring, "score_structures", score)


@pytest.fixture(scope="module")
def orderings(tmp_path_factory):
    out = tmp_path_factory.mktemp("orderings")
    assert main(["enumerate", "--out", str(out)]) == 0
    return sorted(out.glob("*.cif"))


def refused(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


# ---------------------------------------------------------------- enumerate: inputs
def test_cif_cut_in_its_atom_loop_is_refused(tmp_path, capsys):
    # Cut after the S 16e line: Li, P and S remain, S 4d and Cl are gone (was: 48 orderings of Li6PS4, exit 0).
    path = cut_cif(tmp_path, "S2-  S2")
    assert main(["enumerate", "--cif", str(path), "--occupancy", "0.5", "--out", str(tmp_path / "o")]) == 2
    refused(capsys, "cut.cif", "cut short")
    assert not (tmp_path / "o").exists()


def test_cut_cif_without_a_formula_is_refused_by_its_charge(tmp_path, capsys):
    # Li6PS4 at occupancy 1/2: 6 x (+1) + 5 + 4 x (-2) = +3 per primitive cell.
    path = cut_cif(tmp_path, "S2-  S2", drop_formula=True)
    assert main(["enumerate", "--cif", str(path), "--occupancy", "0.5", "--out", str(tmp_path / "o")]) == 2
    refused(capsys, "cut.cif", "+3", "not a neutral compound", "complete")


@pytest.mark.parametrize("occupancy,what", [("1e-9", "no atom"), ("0.9999999", "every site filled"),
                                            ("0", "(0, 1]"), ("nan", "(0, 1]")])
def test_occupancies_that_give_no_or_all_atoms_are_refused(tmp_path, capsys, occupancy, what):
    assert main(["enumerate", "--occupancy", occupancy, "--out", str(tmp_path / "o")]) == 2
    refused(capsys, what)
    assert not (tmp_path / "o").exists()


def test_cif_keeps_its_own_occupancy(tmp_path):
    # A CIF without oxidation states and Li 48h at 1/4: 48 x 1/4 / 4 formula units = 3 Li.
    quarter = set_occupancy(build_parent(), 0.25)
    quarter.remove_oxidation_states()
    cif = tmp_path / "quarter.cif"
    CifWriter(quarter, symprec=1e-3).write_file(cif)
    assert main(["enumerate", "--cif", str(cif), "--out", str(tmp_path / "kept")]) == 0
    assert set(pd.read_csv(tmp_path / "kept" / "index.csv")["formula"]) == {"Li3PS5Cl"}
    assert main(["enumerate", "--cif", str(cif), "--occupancy", "0.5", "--out", str(tmp_path / "half")]) == 0
    assert set(pd.read_csv(tmp_path / "half" / "index.csv")["formula"]) == {"Li6PS5Cl"}


def test_shipped_cif_given_explicitly_needs_an_occupancy(tmp_path, capsys):
    # Its refined occupancy 0.56 puts 6.72 Li+ in a cell that holds 6 for neutrality: refused, 0.5 suggested.
    assert main(["enumerate", "--cif", str(PARENT_CIF), "--out", str(tmp_path / "o")]) == 2
    refused(capsys, "Li6.72", "neutral", "0.5")


# ---------------------------------------------------------------- enumerate: the output folder
def test_rerun_replaces_only_its_own_files(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["enumerate", "--out", str(out)]) == 0
    assert main(["enumerate", "--format", "json", "--out", str(out)]) == 0
    assert "replaced the 48 files" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["index.csv"] + [f"ordering-{i:05d}.json" for i in range(48)]


def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["enumerate", "--out", str(out)]) == 0
    (out / "mine.cif").write_text("not almat's")
    before = files_in(out)
    assert main(["enumerate", "--out", str(out)]) == 2
    refused(capsys, "mine.cif", "not empty")
    assert files_in(out) == before


def test_a_folder_without_an_index_is_refused(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "ordering-00000.cif").write_text("stale")
    assert main(["enumerate", "--out", str(out)]) == 2
    refused(capsys, "no index.csv")


@pytest.mark.parametrize("make", ["file", "under a file"])
def test_out_that_cannot_be_a_folder(tmp_path, capsys, make):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if make == "file" else blocker / "sub" / "o"
    assert main(["enumerate", "--out", str(out)]) == 2
    refused(capsys, "is a file")


def test_read_only_out(tmp_path, capsys):
    folder = read_only_folder(tmp_path)
    assert main(["enumerate", "--out", str(folder / "o")]) == 2
    refused(capsys, "Cannot write into")


def test_full_disk_leaves_the_earlier_run_intact(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    assert main(["enumerate", "--out", str(out)]) == 0
    before = files_in(out)
    fill_disk(monkeypatch, room=20_000)  # a few CIFs fit, then the disk is full
    assert main(["enumerate", "--format", "json", "--out", str(out)]) == 2
    refused(capsys, "disk is full", "untouched")
    assert files_in(out) == before  # no staging folder, no half-written file, old results whole


@pytest.mark.parametrize("argv,words", [
    (["enumerate", "--occupancy", "1e-9"], ["no atom"]),
    (["enumerate", "--min-distance", "nan"], ["min_distance", "nan"]),
    (["enumerate", "--max-cell-size", "0"], ["Cell sizes", "0"]),
    (["build-pool", "--workers", "0"], ["--workers", "not 0"]),
    (["build-pool", "--fmax", "-1"], ["fmax", "-1"]),
    (["export-dft", "--top", "0"], ["positive", "0"]),
])
def test_no_traceback_from_the_real_command(tmp_path, argv, words):
    # The installed entry point, in its own process: a refusal is one line on stderr, exit status 2.
    run = subprocess.run([sys.executable, "-m", "almat.cli", *argv, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"almat {argv[0]}: "), run.stderr
    assert all(word in run.stderr for word in words), run.stderr
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- score
def test_forces_never_overwrite_the_energies(tmp_path, capsys, no_chgnet, orderings):
    out = tmp_path / "s.json"
    assert main(["score", str(orderings[0]), "--forces", "--out", str(out)]) == 2
    refused(capsys, "s.json", ".csv")
    assert not out.exists()


def test_forces_and_energies_go_to_two_files(tmp_path, capsys, fake_scores, orderings):
    out = tmp_path / "s.csv"
    assert main(["score", *map(str, orderings[:2]), "--forces", "--out", str(out)]) == 0
    assert "s.csv and" in capsys.readouterr().out
    assert pd.read_csv(out)["energy_per_atom"].tolist() == [-4.0, -4.0]
    forces = json.loads(out.with_suffix(".json").read_text())
    assert np.asarray(forces[str(orderings[1])]["forces"]).shape == (13, 3)


@pytest.mark.parametrize("where,words", [
    ("folder", ["is a folder"]),
    ("missing parent", ["does not exist"]),
    ("under a file", ["is a file"]),
    ("an input", ["also an input"]),
])
def test_bad_out_is_refused_before_scoring(tmp_path, capsys, no_chgnet, orderings, where, words):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = {"folder": tmp_path, "missing parent": tmp_path / "nope" / "s.csv",
           "under a file": blocker / "s.csv", "an input": orderings[0]}[where]
    before = orderings[0].read_bytes()
    assert main(["score", str(orderings[0]), "--out", str(out)]) == 2
    refused(capsys, *words)
    assert orderings[0].read_bytes() == before


def test_read_only_out_is_refused_before_scoring(tmp_path, capsys, no_chgnet, orderings):
    folder = read_only_folder(tmp_path)
    assert main(["score", str(orderings[0]), "--out", str(folder / "s.csv")]) == 2
    refused(capsys, "Cannot write into")


def test_forces_file_that_is_an_input_is_refused(tmp_path, capsys, no_chgnet):
    structure = Structure(Lattice.cubic(3.5), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    source = tmp_path / "li.json"
    source.write_text(structure.to_json())
    assert main(["score", str(source), "--forces", "--out", str(tmp_path / "li.csv")]) == 2
    refused(capsys, "also an input")


def test_same_file_twice_is_refused(capsys, no_chgnet, orderings):
    assert main(["score", str(orderings[0]), str(orderings[0])]) == 2
    refused(capsys, "given twice")


def test_full_disk_keeps_the_earlier_scores(tmp_path, capsys, fake_scores, orderings, monkeypatch):
    out = tmp_path / "s.csv"
    out.write_text("earlier results\n")
    fill_disk(monkeypatch, room=10)
    assert main(["score", str(orderings[0]), "--out", str(out)]) == 2
    refused(capsys, "disk is full")
    assert out.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


@pytest.mark.parametrize("name,structure,words", [
    ("close.cif", Structure(Lattice.cubic(5), ["Li", "Li"], [[0, 0, 0], [0.02, 0, 0]]), ["0.100 Å apart"]),
    ("am.json", Structure(Lattice.cubic(4), ["Am"], [[0, 0, 0]]), ["Am (Z = 95)", "H to Pu"]),
    ("empty.json", Structure(Lattice.cubic(4), [], []), ["at least 1 site"]),
])
def test_structures_chgnet_cannot_score_are_refused_by_name(tmp_path, capsys, name, structure, words):
    path = tmp_path / name
    path.write_text(structure.to_json()) if name.endswith(".json") else structure.to(filename=str(path))
    assert main(["score", str(path), "--out", str(tmp_path / "s.csv")]) == 2
    refused(capsys, name, *words)
    assert not (tmp_path / "s.csv").exists()


def test_a_cut_ordering_is_refused_by_its_charge(tmp_path, capsys, no_chgnet, orderings):
    text = orderings[0].read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.cif"
    cut.write_text("".join(line for line in text if not line.lstrip().startswith("Cl")
                           and "_chemical_formula" not in line))
    assert main(["score", str(cut), "--out", str(tmp_path / "s.csv")]) == 2
    refused(capsys, "cut.cif", "+1", "not a neutral compound")


def test_os_errors_are_one_line(tmp_path, capsys, monkeypatch, orderings):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(orderings[0]))
    monkeypatch.setattr("almat.structures.read_structure", denied)
    assert main(["score", str(orderings[0]), "--out", str(tmp_path / "s.csv")]) == 2
    refused(capsys, "Permission denied", orderings[0].name)


def test_ctrl_c_leaves_no_output(tmp_path, capsys, monkeypatch, orderings):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(almat.scoring, "score_structures", interrupted)
    assert main(["score", str(orderings[0]), "--out", str(tmp_path / "s.csv")]) == 130
    refused(capsys, "interrupted")
    assert list(tmp_path.iterdir()) == []
