"""The hand-off to DFT and back: VASP inputs for the best candidates, and an oracle for the results.

:func:`export_dft` writes one folder per candidate, ``OUT/<id>/``, with the
VASP inputs of the Materials Project's relaxation settings (pymatgen's
``MPRelaxSet``, or ``MPScanRelaxSet`` for r2SCAN) for the candidate's
CHGNet-relaxed structure, which saves DFT steps, and a ``provenance.json``
that says what was exported from where. ``OUT/index.csv`` lists the
candidates and is written last.

The real ``POTCAR`` needs VASP's licensed pseudopotential library, which
pymatgen finds through its ``PMG_VASP_PSP_DIR`` setting. Without one,
``POTCAR.spec`` names the pseudopotentials instead; where the library is,
``pmg potcar -f PBE -s $(cat POTCAR.spec)`` in a candidate's folder writes the
``POTCAR`` (``-f PBE_54`` for ``MPScanRelaxSet``; the functional is recorded in
``provenance.json``).

:class:`DFTOracle` reads the finished runs back (``vasprun.xml``) as labels,
so that a campaign can go on with DFT energies.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure

from almat.errors import AlmatError
from almat.files import earlier_output, index_names, staged_output, write_atomic, write_new
from almat.oracles import Label, OracleRefusal, RelaxedCHGNetOracle
from almat.relaxation import Relaxation, RelaxSettings, settings_dict

if TYPE_CHECKING:
    from almat.pool import Pool

#: The pymatgen input sets an export can use: the Materials Project's PBE and r2SCAN relaxations.
INPUT_SETS = ("MPRelaxSet", "MPScanRelaxSet")  # the first is the default
#: The provenance file in each candidate's folder, and the ``kind`` it declares.
PROVENANCE = "provenance.json"
PROVENANCE_KIND = "almat-dft-export"
#: The list of exported candidates, written last, and its header.
INDEX_NAME = "index.csv"
INDEX_HEADER = "id,chgnet_energy_per_atom,input_set"
#: Every file an export may write in a candidate's folder.
EXPORTED_FILES = ("INCAR", "KPOINTS", "POSCAR", "POTCAR", "POTCAR.spec", PROVENANCE)
#: Where :class:`DFTOracle` looks for a finished run in a candidate's folder, in this order.
RESULT_FILES = ("vasprun.xml", "vasprun.xml.gz")
#: Largest difference (Å, and fractional units) between two structures taken as the same.
STRUCTURE_TOLERANCE = 1e-4


class DFTExportError(AlmatError, ValueError):
    """VASP inputs cannot be written as asked (no candidates, an unknown input set, no POTCARs)."""


def potcar_library() -> str | None:
    """The folder of VASP's POTCAR files pymatgen is configured with (``PMG_VASP_PSP_DIR``), or None."""
    from pymatgen.core import SETTINGS

    return SETTINGS.get("PMG_VASP_PSP_DIR") or None


def best_candidates(pool: Pool, k: int, labels: str | Path | None = None) -> pd.DataFrame:
    """The ``k`` candidates with the lowest energies: of a campaign's labels, or of the pool.

    Parameters
    ----------
    pool
        The candidates.
    k
        How many; fewer come back when fewer are labelled.
    labels
        A campaign's labels file (:func:`almat.labels_file`): the labels that
        count now. ``None``: the pool's reference energies (relaxed CHGNet).

    Returns
    -------
    pandas.DataFrame
        Columns ``index``, ``id``, ``energy_per_atom`` (eV/atom) and
        ``labelled_by``, lowest energy first (ties in pool order).

    Raises
    ------
    DFTExportError
        ``k`` is not a positive integer, the labels file is missing, or nothing is labelled.
    """
    from almat.ledger import Ledger

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DFTExportError(f"The number of candidates must be a positive integer; got {k!r}.")
    if labels is None:
        energies = pool.reference["energy_per_atom"].to_numpy(dtype=float)
        found = pd.DataFrame({"index": np.arange(len(pool)), "id": pool.ids,
                              "energy_per_atom": energies,
                              "labelled_by": "pool reference (relaxed CHGNet)"})
        found = found[np.isfinite(energies)]
        where = f"pool {pool.name!r} has no reference energies"
    else:
        path = Path(labels)
        if not path.is_file():
            raise DFTExportError(f"The labels file '{path}' does not exist. Give the labels file of "
                                 "a campaign (e.g. labels/06-labeling-loop.jsonl), or none to "
                                 "take the pool's lowest relaxed energies.")
        with warnings.catch_warnings():  # the seed matters to a campaign that goes on, not here
            warnings.filterwarnings("ignore", message=".*was started with seed")
            labelled = Ledger(pool, path).labelled
        found = labelled.rename(columns={"energy": "energy_per_atom"})[
            ["index", "id", "energy_per_atom", "labelled_by"]]
        where = f"the labels file '{path}' holds no labels yet"
    if found.empty:
        raise DFTExportError(f"Nothing to export: {where}.")
    found = found.sort_values(["energy_per_atom", "index"], kind="stable").head(int(k))
    return found.astype({"index": int}).reset_index(drop=True)


def relaxed_candidates(pool: Pool, indices: Sequence[int], relaxations: str | Path | None = None,
                       settings: RelaxSettings = RelaxSettings()) -> Iterator[tuple[int, Relaxation]]:
    """The CHGNet relaxation of each candidate, in order: from the pool's relaxations file, or done now.

    Parameters
    ----------
    relaxations
        The relaxations file that ``almat build-pool`` wrote with the pool,
        keyed by :meth:`~almat.orderings.Orderings.key`; by default the
        shipped pool's. A candidate that it lacks is relaxed by
        :class:`~almat.oracles.RelaxedCHGNetOracle` (and kept in its cache).
    settings
        The relaxation settings; a relaxations file made with others is refused.

    Yields
    ------
    (int, Relaxation)
        Each index and its relaxation.
    """
    from almat.parallel import read_relaxations
    from almat.pool import POOL_DIR

    path = POOL_DIR / f"{pool.name}.relaxations.jsonl" if relaxations is None else Path(relaxations)
    records = read_relaxations(path, settings)
    oracle = RelaxedCHGNetOracle(settings)
    for i in indices:
        record = records.get(pool.orderings.key(int(i)))
        yield int(i), (oracle.relaxation(pool, int(i)) if record is None
                       else Relaxation.from_record(record))


def _checked_indices(pool: Pool, indices: Sequence[int]) -> list[int]:
    given = np.asarray(indices).ravel()
    if not given.size:
        raise DFTExportError("No candidates to export: give at least one candidate index.")
    if not np.issubdtype(given.dtype, np.integer):
        raise DFTExportError(f"Candidates are given by their row numbers in the pool (integers), "
                             f"not {given[0]!r}; e.g. campaign.labelled['index'].")
    chosen = [int(i) for i in given]
    bad = [i for i in chosen if not 0 <= i < len(pool)]
    if bad:
        raise DFTExportError(f"Candidate index {bad[0]} is not in pool {pool.name!r} (indices 0 to "
                             f"{len(pool) - 1}); give row numbers of the pool, e.g. "
                             "campaign.labelled['index'].")
    if len(set(chosen)) < len(chosen):
        twice = next(i for i in chosen if chosen.count(i) > 1)
        raise DFTExportError(f"Candidate {pool.ids[twice]} is given twice; give each candidate once.")
    return chosen


def _structure_record(structure: Structure) -> dict:
    return {"lattice": structure.lattice.matrix.tolist(),
            "species": [str(sp) for sp in structure.species],
            "frac_coords": structure.frac_coords.tolist()}


def _write_candidate(folder: Path, structure: Structure, input_set: str,
                     potcar_spec: bool) -> tuple[dict, Structure]:
    """Write one candidate's VASP inputs into ``folder``; return the settings and the POSCAR structure."""
    from pymatgen.io.vasp import sets
    from pymatgen.io.vasp.inputs import Incar, Poscar

    vasp_set = getattr(sets, input_set)(structure)
    try:
        vasp_set.write_input(str(folder), potcar_spec=potcar_spec)
    except (sets.PmgVaspPspDirError, FileNotFoundError) as exc:
        raise DFTExportError(
            f"The POTCAR library '{potcar_library()}' (pymatgen's PMG_VASP_PSP_DIR) does not hold "
            f"the POTCARs {' '.join(vasp_set.potcar_symbols)} for {vasp_set.potcar_functional}: "
            f"{str(exc).splitlines()[0].rstrip('.')}. Fix the library, or write POTCAR.spec instead "
            "(potcar_spec=True, --potcar-spec)."
        ) from exc
    kpoints = folder / "KPOINTS"
    settings = {
        "name": input_set, "module": sets.__name__,
        "incar": dict(Incar.from_file(folder / "INCAR")),
        "kpoints": kpoints.read_text() if kpoints.exists() else None,
        "potcar": {"symbols": list(vasp_set.potcar_symbols),
                   "functional": vasp_set.potcar_functional,
                   "file": "POTCAR.spec" if potcar_spec else "POTCAR"},
    }
    return settings, Poscar.from_file(folder / "POSCAR").structure


def export_dft(pool: Pool, indices: Sequence[int], out: str | Path = "dft", *,
               input_set: str = INPUT_SETS[0], potcar_spec: bool | None = None,
               relaxations: str | Path | None = None, settings: RelaxSettings = RelaxSettings(),
               progress: bool = False) -> pd.DataFrame:
    """Write VASP inputs for candidates, starting from their CHGNet-relaxed structures.

    Each candidate gets a folder ``out/<id>/`` with ``INCAR``, ``KPOINTS``
    (``MPScanRelaxSet`` sets ``KSPACING`` in the INCAR instead), ``POSCAR``, and
    ``POTCAR`` or ``POTCAR.spec``, as pymatgen's input set writes them, and a
    ``provenance.json``: the candidate's id, key and pool (name and
    fingerprint), its relaxed CHGNet energy (eV/atom) and the relaxation
    settings, the input set with its INCAR, KPOINTS and POTCARs, the structure
    in the POSCAR, the versions of almat, pymatgen and CHGNet, and the date.
    ``out/index.csv`` lists the candidates and is written last.

    ``out`` must be new, empty, or an earlier export whose files are all as
    written: a folder where VASP has run (or anything else was added) is
    refused before anything is computed, so no result is ever deleted.

    Parameters
    ----------
    pool
        The candidates.
    indices
        Their row numbers in ``pool``, e.g. ``best_candidates(pool, 5)["index"]``.
    out
        The output folder.
    input_set
        ``"MPRelaxSet"`` (PBE, the Materials Project's relaxation) or
        ``"MPScanRelaxSet"`` (r2SCAN).
    potcar_spec
        Write ``POTCAR.spec`` rather than the ``POTCAR``. ``None``: only when no
        POTCAR library is configured (:func:`potcar_library`).
    relaxations, settings
        Where the relaxed structures come from (:func:`relaxed_candidates`).
    progress
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per candidate, in the order given: ``id``, ``chgnet_energy_per_atom``
        (eV/atom), ``folder`` and ``files`` (the names written, space-separated).

    Raises
    ------
    DFTExportError
        No or unknown candidates, an unknown input set, or POTCARs asked for
        that the library does not hold.
    almat.files.OutputError
        ``out`` cannot be written, or holds files that are not an earlier export's.
    """
    from tqdm.auto import tqdm

    from almat.pool_build import provenance_versions

    if input_set not in INPUT_SETS:
        raise DFTExportError(f"Unknown input set {input_set!r}; choose one of {', '.join(INPUT_SETS)}.")
    chosen = _checked_indices(pool, indices)
    out = Path(out)
    names = index_names(out / INDEX_NAME, INDEX_HEADER)
    owned = None if names is None else {f"{n}/{f}" for n in names for f in EXPORTED_FILES}
    previous = earlier_output(out, INDEX_NAME, owned, "almat export-dft")
    if potcar_spec is None:
        potcar_spec = potcar_library() is None
    elif not potcar_spec and potcar_library() is None:
        raise DFTExportError("No POTCAR library is configured (pymatgen's PMG_VASP_PSP_DIR), so "
                             "the POTCAR cannot be written. Set PMG_VASP_PSP_DIR, or write "
                             "POTCAR.spec (potcar_spec=True).")
    versions = provenance_versions()
    rows, index_rows = [], [INDEX_HEADER]
    with staged_output(out, previous) as staging:
        for i, relaxed in tqdm(relaxed_candidates(pool, chosen, relaxations, settings),
                               total=len(chosen), desc="VASP inputs", unit="candidate",
                               disable=not progress):
            structure = relaxed.structure.copy()
            structure.remove_oxidation_states()  # POSCAR and POTCARs name elements
            folder = staging / pool.ids[i]
            vasp, poscar = _write_candidate(folder, structure, input_set, potcar_spec)
            provenance = {
                "kind": PROVENANCE_KIND, "id": pool.ids[i], "index": i,
                "key": pool.orderings.key(i),
                "pool": {"name": pool.name, "fingerprint": pool.fingerprint},
                "chgnet": {"energy_per_atom": relaxed.energy_per_atom,
                           "unrelaxed_energy_per_atom": relaxed.unrelaxed_energy_per_atom,
                           "converged": relaxed.converged, "steps": relaxed.steps,
                           "relaxation": {**settings_dict(settings),
                                          "description": settings.describe()}},
                "input_set": vasp,
                "structure": _structure_record(poscar),
                "versions": versions,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            write_new(folder / PROVENANCE, json.dumps(provenance, indent=1) + "\n")
            files = sorted(p.name for p in folder.iterdir())
            rows.append({"id": pool.ids[i], "chgnet_energy_per_atom": relaxed.energy_per_atom,
                         "folder": str(out / pool.ids[i]), "files": " ".join(files)})
            index_rows.append(f"{pool.ids[i]},{relaxed.energy_per_atom:.8f},{input_set}")
    write_atomic(out / INDEX_NAME, "\n".join(index_rows) + "\n")
    return pd.DataFrame(rows, columns=["id", "chgnet_energy_per_atom", "folder", "files"])


def _structure_from_record(record: dict) -> Structure:
    return Structure(Lattice(record["lattice"]), record["species"], record["frac_coords"])


def _difference(started: Structure, exported: Structure) -> str | None:
    """How ``started`` differs from ``exported`` (species, lattice or positions), or None."""
    if [str(s) for s in started.species] != [str(s) for s in exported.species]:
        return "other atoms"
    if not np.allclose(started.lattice.matrix, exported.lattice.matrix, atol=STRUCTURE_TOLERANCE):
        return "another cell"
    shift = started.frac_coords - exported.frac_coords
    if np.abs(shift - np.round(shift)).max() > STRUCTURE_TOLERANCE:
        return "other atomic positions"
    return None


class DFTOracle:
    """DFT energy per atom, read from finished VASP runs in the folders of :func:`export_dft`.

    Candidate ``id`` is looked up as ``<folder>/<id>/`` in each of ``folders``
    in turn. Its label is the final energy of ``vasprun.xml`` (pymatgen's
    ``Vasprun.final_energy``) divided by the number of atoms, in eV/atom. A
    candidate is refused with a reason, never labelled with a wrong number,
    when its folder is missing, has no ``provenance.json`` of an export of this
    candidate of this pool, has no ``vasprun.xml`` yet or an unfinished one,
    started from another structure than the exported POSCAR, or did not
    converge (electronically in the last ionic step, or ionically within NSW).

    DFT energies lie on another scale than CHGNet's. These are VASP's raw
    total energies per atom (PBE with ``MPRelaxSet``); CHGNet learned the
    Materials Project's energies after its MP2020 corrections, which shift a
    sulfide such as Li6PS5Cl by a fraction of an eV/atom, and it errs by some
    30 meV/atom on top; r2SCAN energies lie on a scale of their own. Within
    one composition such offsets shift every candidate alike, so DFT ranks the
    candidates, but DFT and CHGNet labels mixed in one campaign would mislead
    its surrogate by far more than the differences it has to resolve. So give
    DFT labels to a campaign of their own (a new labels file), with this
    oracle only; its labels record ``labelled_by="dft"`` and the run's
    functional as their source.

    Parameters
    ----------
    folders
        One export folder or several, searched in order.
    name
        Recorded as ``labelled_by`` in the campaign history.

    It reads files in folders of this machine, which a Dask worker elsewhere
    may not see, so it labels in this process (``parallel`` is False).
    """

    action, max_steps, target_fmax, parallel = "Read the VASP result", None, None, False

    def __init__(self, folders: str | Path | Sequence[str | Path] = "dft", name: str = "dft"):
        self.folders = folders
        self.name = name

    def __repr__(self) -> str:
        return f"DFTOracle(folders={self.folders!r})"

    def _folders(self) -> list[Path]:
        given = self.folders
        return [Path(given)] if isinstance(given, (str, Path)) else [Path(f) for f in given]

    def folder(self, pool: Pool, index: int) -> Path:
        """The export folder of candidate ``index``; refused when no folder holds it."""
        key = pool.ids[int(index)]
        for root in self._folders():
            if (root / key).is_dir():
                return root / key
        where = " or ".join(f"'{root}'" for root in self._folders())
        raise OracleRefusal(f"no DFT folder for {key} in {where}: export it (almat.export_dft) "
                            "and run VASP there first")

    def _provenance(self, pool: Pool, index: int, folder: Path) -> tuple[dict, Structure]:
        """The export's record and the structure of its POSCAR, checked to be of this candidate."""
        try:
            record = json.loads((folder / PROVENANCE).read_text())
            exported = _structure_from_record(record["structure"])
            ours = record["kind"] == PROVENANCE_KIND and isinstance(record["input_set"]["name"], str)
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError):
            ours = False
        if not ours:
            raise OracleRefusal(f"'{folder}' has no {PROVENANCE} from almat's DFT export, so "
                                "which candidate it holds is unknown")
        key = pool.ids[int(index)]
        if record.get("pool", {}).get("fingerprint") != pool.fingerprint:
            raise OracleRefusal(f"'{folder}' was exported from another pool "
                                f"({record.get('pool', {}).get('name')!r}), not {pool.name!r}")
        if record.get("id") != key or record.get("key") != pool.orderings.key(int(index)):
            raise OracleRefusal(f"'{folder}' holds the export of candidate {record.get('id')}, "
                                f"not of {key}")
        return record, exported

    def label(self, pool: Pool, index: int, on_step=None) -> Label:
        """DFT energy per atom (eV/atom) of candidate ``index``; :class:`OracleRefusal` with a reason."""
        from pymatgen.io.vasp.outputs import Vasprun

        folder = self.folder(pool, index)
        record, exported = self._provenance(pool, index, folder)
        path = next((folder / f for f in RESULT_FILES if (folder / f).is_file()), None)
        if path is None:
            raise OracleRefusal(f"'{folder}' has no vasprun.xml: VASP has not run there yet, or "
                                "not finished")
        try:
            with warnings.catch_warnings():  # pymatgen warns of unconverged runs; refused below
                warnings.simplefilter("ignore")
                run = Vasprun(path, parse_dos=False, parse_eigen=False, parse_potcar_file=False)
                energy = float(run.final_energy)
                converged_electronic, converged_ionic = run.converged_electronic, run.converged_ionic
                source = f"VASP {run.vasp_version} {run.run_type} ({record['input_set']['name']})"
        except (SyntaxError, ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
            # SyntaxError: lxml's XMLSyntaxError, for a file cut short
            raise OracleRefusal(f"'{path}' cannot be read ({type(exc).__name__}): the run is not "
                                "finished, or the file is damaged") from None
        differs = _difference(run.initial_structure, exported)
        if differs:
            raise OracleRefusal(f"'{path}' started from {differs} than the POSCAR exported for "
                                f"{record['id']}: the run belongs to another candidate")
        if not converged_electronic:
            raise OracleRefusal(f"'{path}': the last electronic loop did not converge within "
                                f"NELM = {run.parameters.get('NELM')} steps")
        if not converged_ionic:
            raise OracleRefusal(f"'{path}': the relaxation stopped at NSW = "
                                f"{run.parameters.get('NSW')} ionic steps without converging")
        if not np.isfinite(energy):
            raise OracleRefusal(f"'{path}' holds no final energy")
        return Label(energy / len(run.final_structure), source)
