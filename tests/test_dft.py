"""The DFT hand-off: VASP inputs for the best candidates, and the oracle that reads results back.

Every file here is written by the tests themselves: the exports by almat, and the finished VASP
runs by :func:`write_vasprun` below, a minimal ``vasprun.xml`` with an energy the test chooses.
Nothing is downloaded. The expected values come from elsewhere than the code under test: the
pool's reference table, the Materials Project's published settings, CHGNet itself, and the
energies the tests put into the files.
"""

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import SETTINGS, Structure
from pymatgen.io.vasp.inputs import Incar, Kpoints, Poscar
from reliability_helpers import files_in

import almat
from almat.cli import main
from almat.dft import DFTExportError, DFTOracle, best_candidates, export_dft
from almat.pool import POOL_DIR
from almat.files import OutputError
from almat.oracles import OracleRefusal
from almat.parallel import read_relaxations
from almat.pool import POOL_DIR
from almat.relaxation import Relaxation

INPUTS = {"INCAR", "KPOINTS", "POSCAR", "POTCAR.spec", "provenance.json"}
#: The Materials Project's POTCARs for these elements (Li with its semicore s states).
MP_POTCARS = ["Li_sv", "P", "S", "Cl"]


@pytest.fixture(scope="module")
def pool():
    return almat.load_pool()


@pytest.fixture(scope="module")
def lowest(pool) -> list[str]:
    """Ids of the three lowest relaxed CHGNet energies, from the pool's reference table."""
    return pool.reference["energy_per_atom"].nsmallest(3).index.tolist()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, lowest) -> Path:
    """``almat export-dft --top 3``, run once; tests that write into it use a copy."""
    out = tmp_path_factory.mktemp("export") / "dft"
    assert main(["export-dft", "--top", "3", "--out", str(out)]) == 0
    return out


@pytest.fixture
def dft(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported, tmp_path / "dft"))


def refused(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("almat export-dft: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


# ------------------------------------------------------------------ a finished VASP run
def _varray(name: str, rows) -> str:
    lines = "".join(f"    <v>{' '.join(f'{x:.10f}' for x in row)}</v>\n" for row in rows)
    return f'   <varray name="{name}">\n{lines}   </varray>\n'


def _structure(structure: Structure, name: str = "") -> str:
    attribute = f' name="{name}"' if name else ""
    return (f"  <structure{attribute}>\n   <crystal>\n{_varray('basis', structure.lattice.matrix)}"
            f"   </crystal>\n{_varray('positions', structure.frac_coords)}  </structure>\n")


def _energy(total: float, indent: str) -> str:
    return (f"{indent}<energy>\n" + "".join(f'{indent} <i name="{n}"> {total:.8f} </i>\n'
                                            for n in ("e_fr_energy", "e_wo_entrp", "e_0_energy"))
            + f"{indent}</energy>\n")


def write_vasprun(folder: Path, energy_per_atom: float, *, start: Structure | None = None,
                  nelm: int = 100, scf_steps: int = 12, nsw: int = 99, ionic_steps: int = 4,
                  cut: bool = False) -> Path:
    """A minimal vasprun.xml of a PBE relaxation that started from ``start`` (the folder's POSCAR).

    The final energy is ``energy_per_atom`` times the number of atoms (eV). The SCF of each
    ionic step takes ``scf_steps`` (not converged when it equals ``nelm``), and the relaxation
    ``ionic_steps`` (not converged when it equals ``nsw``). ``cut`` stops the file half-way,
    as a running or killed VASP leaves it.
    """
    start = Poscar.from_file(folder / "POSCAR").structure if start is None else start
    symbols = [site.specie.symbol for site in start]
    types = list(dict.fromkeys(symbols))
    total = energy_per_atom * len(start)
    atoms = "".join(f"    <rc><c>{s}</c><c>{types.index(s) + 1}</c></rc>\n" for s in symbols)
    kinds = "".join(f"    <rc><c>{symbols.count(s)}</c><c>{s}</c><c>1.0</c><c>1.0</c>"
                    f"<c>  PAW_PBE {s} 01Jan2000</c></rc>\n" for s in types)
    step = ("  <calculation>\n" + "   <scstep>\n" + _energy(total, "    ") + "   </scstep>\n") \
        + ("   <scstep>\n" + _energy(total, "    ") + "   </scstep>\n") * (scf_steps - 1) \
        + _structure(start) + _energy(total, "   ") + "  </calculation>\n"
    text = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n'
        ' <generator>\n  <i name="program" type="string">vasp </i>\n'
        '  <i name="version" type="string">6.4.2 </i>\n </generator>\n'
        f' <incar>\n  <i type="int" name="NSW">{nsw}</i>\n </incar>\n'
        f' <parameters>\n  <separator name="electronic">\n   <i type="int" name="NELM">{nelm}</i>\n'
        f'  </separator>\n  <i type="int" name="NSW">{nsw}</i>\n  <i type="int" name="IBRION">2</i>\n'
        '  <i name="EDIFFG"> -0.05</i>\n  <i type="string" name="GGA">PE</i>\n'
        '  <i name="AEXX"> 0.0</i>\n  <i name="HFSCREEN"> 0.0</i>\n'
        '  <i type="logical" name="LHFCALC"> F </i>\n  <i type="logical" name="LDAU"> F </i>\n'
        ' </parameters>\n'
        f' <atominfo>\n  <atoms>{len(symbols)}</atoms>\n  <types>{len(types)}</types>\n'
        '  <array name="atoms">\n   <set>\n' + atoms + '   </set>\n  </array>\n'
        '  <array name="atomtypes">\n   <set>\n' + kinds + '   </set>\n  </array>\n </atominfo>\n'
        + _structure(start, "initialpos") + step * ionic_steps
        + _structure(start, "finalpos") + "</modeling>\n")
    path = folder / "vasprun.xml"
    path.write_text(text[:len(text) // 2] if cut else text)
    return path


# ------------------------------------------------------------------ export
def test_export_writes_the_four_inputs_and_provenance_for_the_top_k(exported, pool, lowest):
    assert sorted(p.name for p in exported.iterdir()) == sorted(["index.csv", *lowest])
    index = pd.read_csv(exported / "index.csv")
    assert index["id"].tolist() == lowest and set(index["input_set"]) == {"MPRelaxSet"}
    for key in lowest:
        folder = exported / key
        assert {p.name for p in folder.iterdir()} == INPUTS
        assert (folder / "POTCAR.spec").read_text().split() == MP_POTCARS
        incar = Incar.from_file(folder / "INCAR")
        n_atoms = len(Poscar.from_file(folder / "POSCAR").structure)
        # The Materials Project's relaxation: 520 eV cut-off, cell and ions relaxed by conjugate
        # gradients, EDIFF 5e-5 eV per atom, spin-polarised.
        assert (incar["ENCUT"], incar["ISIF"], incar["IBRION"], incar["ISPIN"]) == (520, 3, 2, 2)
        assert incar["EDIFF"] == pytest.approx(5e-5 * n_atoms)
        kpoints = Kpoints.from_file(folder / "KPOINTS")  # an automatic mesh
        assert kpoints.style.name in ("Gamma", "Monkhorst") and min(kpoints.kpts[0]) >= 1
        record = json.loads((folder / "provenance.json").read_text())
        assert record["id"] == key and record["index"] == pool.ids.index(key)
        # The fingerprint recorded in the shipped pool's JSON when it was built
        shipped = json.loads((POOL_DIR / "li6ps5cl.json").read_text())["fingerprint"]
        assert record["pool"] == {"name": "li6ps5cl", "fingerprint": shipped}
        assert record["chgnet"]["energy_per_atom"] == pytest.approx(
            pool.reference.loc[key, "energy_per_atom"], abs=1e-8)
        assert record["chgnet"]["relaxation"]["fmax"] == 0.05
        assert record["input_set"]["name"] == "MPRelaxSet"
        assert record["input_set"]["incar"]["ENCUT"] == 520
        assert record["input_set"]["potcar"] == {"symbols": MP_POTCARS, "functional": "PBE",
                                                 "file": "POTCAR.spec"}
        assert {"almat", "pymatgen", "chgnet"} <= set(record["versions"])
        assert datetime.fromisoformat(record["created"]).year >= 2024


def test_poscars_are_the_relaxed_structures(exported, pool, lowest):
    # CHGNet scores each POSCAR at the pool's relaxed energy, not the unrelaxed one, with every
    # force below the relaxation's threshold of 0.05 eV/Å
    structures = [Poscar.from_file(exported / key / "POSCAR").structure for key in lowest]
    scores = almat.score_structures(structures, forces=True, cache=False)
    energies = scores["energy_per_atom"].to_numpy()
    reference = pool.reference.loc[lowest]
    np.testing.assert_allclose(energies, reference["energy_per_atom"], atol=1e-5)
    assert np.abs(reference["unrelaxed_energy_per_atom"].to_numpy() - energies).min() > 1e-3
    assert max(np.linalg.norm(f, axis=1).max() for f in scores["forces"]) < 0.05
    for key, structure in zip(lowest, structures):
        assert structure.composition == pool.structure(pool.ids.index(key)).composition


def test_poscars_parse_back_to_the_relaxed_structures(exported, pool, lowest):
    # As the shipped relaxations file holds them (read by almat's own reader of that file)
    records = read_relaxations(POOL_DIR / "li6ps5cl.relaxations.jsonl")
    for key in lowest:
        relaxed = Relaxation.from_record(records[pool.orderings.key(pool.ids.index(key))]).structure
        poscar = Poscar.from_file(exported / key / "POSCAR").structure
        np.testing.assert_allclose(poscar.lattice.matrix, relaxed.lattice.matrix, atol=1e-6)
        # the same atoms at the same places; VASP wants them grouped by element, so the order
        # may differ: each POSCAR atom matches exactly one relaxed atom of its element
        matched = set()
        for site in poscar:
            shift = site.frac_coords - relaxed.frac_coords
            close = np.abs(shift - np.round(shift)).max(axis=1) < 1e-6
            same = [j for j in np.flatnonzero(close) if relaxed[j].specie.symbol == site.specie.symbol]
            assert len(same) == 1 and same[0] not in matched
            matched.add(same[0])
        assert len(matched) == len(relaxed)


def test_a_candidate_missing_from_the_relaxations_file_is_relaxed(tmp_path, pool, monkeypatch):
    # A stand-in relaxation with a structure and an energy of the test's choosing: what is under
    # test is that the export asks the relaxed-CHGNet oracle, and writes what it answers.
    moved = pool.structure(2).copy()
    moved.translate_sites([0], [0.1, 0, 0], frac_coords=False)
    asked = []

    def relaxation(self, pool_, index, on_step=None):
        asked.append(index)
        return Relaxation(-4.1, -4.0, 7, True, moved, 0.0)

    monkeypatch.setattr(almat.RelaxedCHGNetOracle, "relaxation", relaxation)
    export_dft(pool, [2], tmp_path / "dft", relaxations=tmp_path / "none.jsonl")
    assert asked == [2]
    folder = tmp_path / "dft" / pool.ids[2]
    poscar = Poscar.from_file(folder / "POSCAR").structure
    np.testing.assert_allclose(poscar.cart_coords[0], moved.cart_coords[0], atol=1e-8)
    assert json.loads((folder / "provenance.json").read_text())["chgnet"]["energy_per_atom"] == -4.1


def test_scan_set_and_a_campaigns_labels(tmp_path, pool):
    labels = tmp_path / "labels.jsonl"
    almat.Campaign(pool, almat.TableOracle(), seed=3, ledger_path=labels, n_initial=6).run(6)
    events = [json.loads(line) for line in labels.read_text().splitlines()[1:]]
    labelled = pool.reference.iloc[[e["index"] for e in events if e["type"] == "label"]]
    expected = labelled["energy_per_atom"].nsmallest(2).index.tolist()
    out = tmp_path / "scan"
    assert main(["export-dft", "--labels", str(labels), "--top", "2", "--input-set",
                 "MPScanRelaxSet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["index.csv", *expected])
    folder = out / expected[0]
    # r2SCAN sets its k-point density in the INCAR (KSPACING): no KPOINTS file
    assert {p.name for p in folder.iterdir()} == INPUTS - {"KPOINTS"}
    assert Incar.from_file(folder / "INCAR")["METAGGA"].lower() == "r2scan"
    record = json.loads((folder / "provenance.json").read_text())
    assert record["input_set"]["potcar"]["functional"] == "PBE_54"


def test_asking_for_more_than_is_labelled_exports_what_there_is(tmp_path, pool, capsys):
    labels = tmp_path / "labels.jsonl"
    almat.Campaign(pool, almat.TableOracle(), seed=0, ledger_path=labels, n_initial=4).run(4)
    assert main(["export-dft", "--labels", str(labels), "--top", "10",
                 "--out", str(tmp_path / "o")]) == 0
    assert "only 4 labelled" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "o" / "index.csv")) == 4


def test_export_again_replaces_the_earlier_export(exported, tmp_path, pool, lowest):
    out = Path(shutil.copytree(exported, tmp_path / "dft"))
    assert main(["export-dft", "--top", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["index.csv", *lowest[:2]])


def test_a_folder_where_vasp_ran_is_refused_and_left_alone(dft, lowest, capsys):
    write_vasprun(dft / lowest[0], -4.2)
    before = files_in(dft)
    assert main(["export-dft", "--top", "3", "--out", str(dft)]) == 2
    refused(capsys, "vasprun.xml", "not empty")
    assert files_in(dft) == before


@pytest.mark.parametrize("argv, fragments", [
    (["--top", "0"], ["positive integer", "got 0"]),
    (["--labels", "no-such.jsonl"], ["no-such.jsonl", "does not exist"]),
    (["--pool", "no-such-pool"], ["no-such-pool"]),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, fragments):
    out = tmp_path / "o"
    assert main(["export-dft", *argv, "--out", str(out)]) == 2
    refused(capsys, *fragments)
    assert not out.exists()


def test_an_empty_labels_file_or_a_foreign_folder(tmp_path, pool, capsys):
    labels = tmp_path / "labels.jsonl"
    almat.Campaign(pool, almat.TableOracle(), ledger_path=labels)
    assert main(["export-dft", "--labels", str(labels), "--out", str(tmp_path / "o")]) == 2
    refused(capsys, "holds no labels yet")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["export-dft", "--out", str(tmp_path / "mine")]) == 2
    refused(capsys, "notes.txt", "no index.csv")


def test_no_traceback_from_the_real_command(tmp_path):
    run = subprocess.run([sys.executable, "-m", "almat.cli", "export-dft", "--top", "-1",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("almat export-dft: "), run.stderr


@pytest.mark.parametrize("call, fragment", [
    (lambda pool, out: export_dft(pool, [], out), "at least one"),
    (lambda pool, out: export_dft(pool, [len(pool)], out), "not in pool"),
    (lambda pool, out: export_dft(pool, [3, 3], out), "twice"),
    (lambda pool, out: export_dft(pool, ["c1-000001"], out), "row numbers"),
    (lambda pool, out: export_dft(pool, [3], out, input_set="MPStaticSet"), "MPRelaxSet"),
    (lambda pool, out: export_dft(pool, [3], out, potcar_spec=False), "PMG_VASP_PSP_DIR"),
    (lambda pool, out: best_candidates(pool, True), "positive integer"),
])
def test_python_refusals(tmp_path, pool, monkeypatch, call, fragment):
    monkeypatch.delitem(SETTINGS, "PMG_VASP_PSP_DIR", raising=False)
    with pytest.raises(DFTExportError, match=fragment):
        call(pool, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def fake_potcar_library(folder: Path, symbols: list[str]) -> Path:
    """POTCAR files in pymatgen's layout, with made-up content (the real ones are licensed)."""
    pbe = folder / "POT_GGA_PAW_PBE"
    pbe.mkdir(parents=True)
    for symbol in symbols:
        title = f"PAW_PBE {symbol} 01Jan2000"
        (pbe / f"POTCAR.{symbol}").write_text(
            f"  {title}\n 1.0\n parameters from PSCTR are:\n   VRHFIN ={symbol.split('_')[0]}: test\n"
            f"   LEXCH  = PE\n   TITEL  = {title}\n   POMASS =    1.000; ZVAL   =    1.000\n"
            "   ENMAX  =  400.000; ENMIN  =  300.000 eV\n END of PSCTR-controll parameters\n"
            " 0.1 0.2 0.3 0.4\n End of Dataset\n")
    return folder


@pytest.mark.filterwarnings("ignore::UserWarning")  # pymatgen: these POTCARs are not the real ones
def test_with_a_potcar_library_the_potcar_is_written(tmp_path, pool, monkeypatch):
    library = fake_potcar_library(tmp_path / "psp", MP_POTCARS)
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", str(library))
    written = export_dft(pool, [5], tmp_path / "dft")
    folder = tmp_path / "dft" / pool.ids[5]
    assert written["files"].iloc[0].split() == ["INCAR", "KPOINTS", "POSCAR", "POTCAR",
                                                 "provenance.json"]
    titles = [line.split()[1] for line in (folder / "POTCAR").read_text().splitlines()
              if line.startswith("  PAW_PBE")]
    assert titles == MP_POTCARS
    # and POTCAR.spec still, on request
    export_dft(pool, [5], tmp_path / "spec", potcar_spec=True)
    assert (tmp_path / "spec" / pool.ids[5] / "POTCAR.spec").exists()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_library_without_the_potcars_is_refused(tmp_path, pool, monkeypatch):
    library = fake_potcar_library(tmp_path / "psp", ["Li_sv", "P"])
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", str(library))
    with pytest.raises(DFTExportError, match="does not hold the POTCARs Li_sv P S Cl") as info:
        export_dft(pool, [5], tmp_path / "dft")
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "dft").iterdir())  # the staging folder went, nothing was left


# ------------------------------------------------------------------ the DFT oracle
def test_the_oracle_reads_the_energy_per_atom(dft, pool, lowest):
    i = pool.ids.index(lowest[1])
    write_vasprun(dft / lowest[1], -4.1234)
    label = DFTOracle(dft).label(pool, i)
    assert label.energy == pytest.approx(-4.1234, abs=1e-9)
    assert not label.skipped and label.source == "VASP 6.4.2 PBE (MPRelaxSet)"


def test_the_oracle_searches_several_folders(dft, tmp_path, pool, lowest):
    write_vasprun(dft / lowest[2], -4.2)
    oracle = DFTOracle([tmp_path / "elsewhere", dft])
    assert oracle.label(pool, pool.ids.index(lowest[2])).energy == pytest.approx(-4.2, abs=1e-9)


def _another_candidates_run(dft, lowest):
    """The folder of lowest[0] holds the export and the run of lowest[1]."""
    shutil.rmtree(dft / lowest[0])
    shutil.copytree(dft / lowest[1], dft / lowest[0])
    write_vasprun(dft / lowest[0], -4.2)


def _moved_atoms(dft, lowest):
    start = Poscar.from_file(dft / lowest[0] / "POSCAR").structure
    start.translate_sites([0], [0.01, 0, 0], frac_coords=False)
    write_vasprun(dft / lowest[0], -4.2, start=start)


@pytest.mark.parametrize("prepare, fragments", [
    (lambda dft, lowest: None, ["no vasprun.xml", "not finished"]),
    (lambda dft, lowest: shutil.rmtree(dft / lowest[0]), ["no DFT folder", "run VASP there first"]),
    (lambda dft, lowest: write_vasprun(dft / lowest[0], -4.2, cut=True), ["cannot be read",
                                                                           "not finished"]),
    (lambda dft, lowest: write_vasprun(dft / lowest[0], -4.2, scf_steps=100),
     ["electronic", "NELM = 100"]),
    (lambda dft, lowest: write_vasprun(dft / lowest[0], -4.2, nsw=4, ionic_steps=4),
     ["NSW = 4", "without converging"]),
    (_another_candidates_run, ["holds the export of candidate"]),
    (_moved_atoms, ["other atomic positions", "another candidate"]),
    (lambda dft, lowest: (write_vasprun(dft / lowest[0], -4.2),
                          (dft / lowest[0] / "provenance.json").unlink()), ["no provenance.json"]),
])
def test_the_oracle_refuses_with_a_reason(dft, pool, lowest, prepare, fragments):
    prepare(dft, lowest)
    with pytest.raises(OracleRefusal) as info:
        DFTOracle(dft).label(pool, pool.ids.index(lowest[0]))
    for fragment in fragments:
        assert fragment in info.value.reason


def test_the_oracle_refuses_the_export_of_another_pool(dft, pool, lowest):
    write_vasprun(dft / lowest[0], -4.2)
    other = pool.subset(range(len(pool) - 1), name="smaller")
    with pytest.raises(OracleRefusal, match="another pool"):
        DFTOracle(dft).label(other, pool.ids.index(lowest[0]))


def test_a_campaign_goes_on_with_dft_labels(tmp_path, pool):
    labels = tmp_path / "dft-labels.jsonl"
    campaign = almat.Campaign(pool, DFTOracle(tmp_path / "dft"), seed=0, ledger_path=labels,
                              n_initial=3)
    first = campaign.suggest()
    export_dft(pool, [first.index], tmp_path / "dft")
    write_vasprun(tmp_path / "dft" / first.id, -4.05)
    row = campaign.step()
    assert (row["event"], row["id"], row["labelled_by"]) == ("label", first.id, "dft")
    assert row["energy"] == pytest.approx(-4.05, abs=1e-9)
    # on disk, before it is acknowledged; the next pick has no results yet and is skipped
    saved = [json.loads(line) for line in labels.read_text().splitlines()]
    assert saved[-1]["energy"] == pytest.approx(-4.05, abs=1e-9)
    row = campaign.step()
    assert row["event"] == "skip" and "no DFT folder" in row["reason"]
