"""The almat command line, run as a learner would run it."""

import subprocess
import sys

import pandas as pd
import pytest

from almat.cli import main


def test_enumerate_writes_48_cifs(tmp_path, capsys):
    assert main(["enumerate", "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.cif"))) == 48
    index = pd.read_csv(tmp_path / "index.csv")
    assert (index["formula"] == "Li6PS5Cl").all()
    assert "Wrote 48" in capsys.readouterr().out


def test_enumerate_with_the_published_occupancy_explains(tmp_path, capsys):
    assert main(["enumerate", "--occupancy", "0.56", "--max-cell-size", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Li6.72" in err and "neutral" in err and "0.5" in err


def test_score_writes_a_csv(tmp_path):
    assert main(["enumerate", "--out", str(tmp_path / "s")]) == 0
    files = sorted(str(p) for p in (tmp_path / "s").glob("*.cif"))[:2]
    out = tmp_path / "scores.csv"
    assert main(["score", *files, "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 2 and df["energy_per_atom"].between(-5, -3).all()


def test_score_a_missing_file(tmp_path, capsys):
    assert main(["score", str(tmp_path / "nope.cif")]) == 2
    assert "No structure file" in capsys.readouterr().err


@pytest.mark.slow
def test_check_setup_passes_here():
    run = subprocess.run([sys.executable, "-m", "almat.cli", "check-setup"], capture_output=True,
                         text=True, timeout=300)
    assert "CHGNet loads offline" in run.stdout
    assert run.returncode == 0, run.stdout
