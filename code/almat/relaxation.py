"""Relaxed CHGNet energies: the expensive label of the lesson.

An unrelaxed energy scores the ideal parent positions. Real Li ions move away
from their neighbours and the cell adjusts, so the energy that decides which
ordering is most stable is the one after relaxation. Relaxing costs tens of
force evaluations (about 6 s for a 26-atom cell on two laptop cores) against
one for an unrelaxed energy, which is why it is worth saving labels.

The relaxation is the one of CHGNet's ``StructOptimizer``: ase's FIRE on the
atoms and, with ``relax_cell``, the cell through ``FrechetCellFilter``,
until every force (and the stress times the cell volume) is below ``fmax``.
It is written out here, on ase directly, only so that each FIRE step can be
reported to a progress bar; :func:`relax_structure` gives the same numbers
as ``StructOptimizer().relax`` (checked in the tests to 1e-6 eV/atom).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import IStructure, Lattice, Structure

from almat.errors import AlmatError
from almat.files import write_atomic
from almat.journal import CHECK, Journal, JournalError, checksum
from almat.structures import StructureError, check_structure


class RelaxSettingsError(AlmatError, ValueError):
    """Relaxation settings that cannot give a relaxed energy."""


def check_settings(fmax: object, steps: object, relax_cell: object) -> None:
    """Refuse relaxation settings that cannot give a relaxed energy; the one check of them all.

    ``fmax`` must be a finite number above 0 (a NaN, negative or zero threshold
    is never reached, an infinite one stops before the first step), ``steps``
    a whole number of at least 1, and ``relax_cell`` True or False.

    Raises
    ------
    RelaxSettingsError
        Naming the setting, its value and a sensible one.
    """
    if (isinstance(fmax, bool) or not isinstance(fmax, numbers.Real)
            or not math.isfinite(fmax) or fmax <= 0):
        raise RelaxSettingsError(
            f"The force threshold fmax must be a finite number of eV/Å above 0, not {fmax!r}: "
            "no relaxation would stop at the right place. Use e.g. fmax=0.05 (--fmax 0.05).")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise RelaxSettingsError(
            f"The step limit steps must be a whole number of at least 1, not {steps!r}. "
            "Use e.g. steps=500 (--steps 500).")
    if not isinstance(relax_cell, (bool, np.bool_)):
        raise RelaxSettingsError(
            f"relax_cell must be True or False, not {relax_cell!r} (--fixed-cell on the command "
            "line sets it to False).")


class RelaxationsFileError(JournalError):
    """A relaxations file was made with other settings, another CHGNet or parent, or has a damaged line."""


@dataclass(frozen=True)
class RelaxSettings:
    """How a candidate is relaxed.

    Attributes
    ----------
    fmax
        Largest force (eV/Å) allowed at convergence.
    steps
        Most FIRE steps; a relaxation that needs more is reported as not converged.
    relax_cell
        Relax the cell shape and volume too (``FrechetCellFilter``), not only the atoms.
    """

    fmax: float = 0.05
    steps: int = 500
    relax_cell: bool = True

    def __post_init__(self):
        check_settings(self.fmax, self.steps, self.relax_cell)
        # plain Python numbers, so that the settings compare equal to, and go into, JSON records
        object.__setattr__(self, "fmax", float(self.fmax))
        object.__setattr__(self, "steps", int(self.steps))
        object.__setattr__(self, "relax_cell", bool(self.relax_cell))

    def describe(self) -> str:
        """One line for provenance records and the lesson."""
        cell = "cell relaxed (FrechetCellFilter)" if self.relax_cell else "fixed cell"
        return f"CHGNet + ase FIRE, fmax {self.fmax} eV/Å, at most {self.steps} steps, {cell}"


@dataclass(frozen=True)
class Relaxation:
    """The result of relaxing one structure.

    Attributes
    ----------
    energy_per_atom
        CHGNet energy of the relaxed structure (eV/atom).
    unrelaxed_energy_per_atom
        CHGNet energy before the first step (eV/atom).
    steps
        FIRE steps taken.
    converged
        Whether the largest force fell below ``fmax`` within ``steps``.
    structure
        The relaxed structure.
    seconds
        Wall time of the relaxation.
    """

    energy_per_atom: float
    unrelaxed_energy_per_atom: float
    steps: int
    converged: bool
    structure: Structure
    seconds: float

    def to_record(self) -> dict:
        """A JSON-ready dict: numbers, and the relaxed lattice and fractional coordinates."""
        return {
            "energy_per_atom": self.energy_per_atom,
            "unrelaxed_energy_per_atom": self.unrelaxed_energy_per_atom,
            "steps": self.steps,
            "converged": self.converged,
            "seconds": round(self.seconds, 3),
            "lattice": np.round(self.structure.lattice.matrix, 8).tolist(),
            "species": [str(sp) for sp in self.structure.species],
            "frac_coords": np.round(self.structure.frac_coords, 8).tolist(),
        }

    @staticmethod
    def check_record(record: dict) -> str | None:
        """What is wrong with a record of :meth:`to_record` (one phrase), or None if nothing."""
        for name in ("energy_per_atom", "unrelaxed_energy_per_atom", "seconds"):
            if not _finite(record.get(name)):
                return f"{name} {record.get(name)!r} is not a finite number"
        steps = record.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            return f"steps {steps!r} is not a whole number of steps"
        if not isinstance(record.get("converged"), bool):
            return f"converged {record.get('converged')!r} is not true or false"
        species = record.get("species")
        if not isinstance(species, list) or not species or not all(isinstance(x, str) for x in species):
            return "species is not a list of element names"
        for name, rows in (("lattice", 3), ("frac_coords", len(species))):
            value = record.get(name)
            if not (isinstance(value, list) and len(value) == rows and all(
                    isinstance(v, list) and len(v) == 3 and all(map(_finite, v)) for v in value)):
                return f"{name} is not {rows} rows of 3 finite numbers"
        return None

    @classmethod
    def from_record(cls, record: dict) -> Relaxation:
        """Inverse of :meth:`to_record`; raises :class:`RelaxationsFileError` for a record it cannot be."""
        problem = cls.check_record(record)
        if problem is not None:
            raise RelaxationsFileError(f"Not a relaxation record: {problem}.")
        structure = Structure(Lattice(record["lattice"]), record["species"], record["frac_coords"])
        return cls(float(record["energy_per_atom"]), float(record["unrelaxed_energy_per_atom"]),
                   int(record["steps"]), bool(record["converged"]), structure,
                   float(record["seconds"]))


def relax_structure(structure: Structure, model=None, settings: RelaxSettings = RelaxSettings(),
                    on_step: Callable[[int, float], None] | None = None) -> Relaxation:
    """Relax one structure with CHGNet; the input is left unchanged.

    Parameters
    ----------
    structure
        The structure to relax: an ordered, periodic pymatgen Structure (vacancies
        already removed).
    model
        A loaded CHGNet; the pretrained one (:func:`almat.scoring.load_chgnet`) by default.
    settings
        Force threshold, step limit and whether the cell relaxes.
    on_step
        Called after every FIRE step with ``(step, fmax_now)``, fmax_now in eV/Å;
        the labeling app uses it for its progress bar.

    Raises
    ------
    StructureError
        If ``structure`` is not a periodic Structure, has partially occupied
        sites or fails :func:`almat.structures.check_structure` (NaN
        coordinates, atoms closer than 0.5 Å, ...): such input would relax to
        a meaningless energy.
    RelaxSettingsError
        If ``settings`` is not a valid :class:`RelaxSettings`.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    from almat.scoring import isolated_atom_response, load_chgnet

    _check_input(structure, settings)
    model = load_chgnet() if model is None else model
    start = time.perf_counter()
    atoms = AseAtomsAdaptor().get_atoms(structure)
    # "error", CHGNet.load's own setting, while this relaxation runs; the caller's after it
    with isolated_atom_response(model, "error"):
        with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet will run on cpu", every time
            atoms.calc = CHGNetCalculator(model=model, use_device="cpu", on_isolated_atoms="error")
        n = len(atoms)
        e0 = float(atoms.get_potential_energy()) / n
        target = FrechetCellFilter(atoms) if settings.relax_cell else atoms
        optimizer = FIRE(target, logfile=None)
        if on_step is not None:
            optimizer.attach(lambda: on_step(optimizer.nsteps, _fmax_now(target)), interval=1)
        with warnings.catch_warnings():  # chgnet's own tensor-copy warning, once per step
            warnings.filterwarnings("ignore", message=".*tensor.detach.*", category=UserWarning)
            converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.steps))
        energy = float(atoms.get_potential_energy()) / n
    relaxed = AseAtomsAdaptor.get_structure(atoms)
    for key in list(relaxed.site_properties):
        relaxed.remove_site_property(key)
    return Relaxation(energy, e0, int(optimizer.nsteps), converged, relaxed,
                      time.perf_counter() - start)


def _check_input(structure: object, settings: object) -> None:
    if not isinstance(structure, IStructure):
        raise StructureError(
            f"relax_structure relaxes crystals: it needs a periodic pymatgen Structure, not a "
            f"{type(structure).__name__}. Pass a candidate as a Structure, e.g. pool.structure(i).")
    if not structure.is_ordered:
        raise StructureError(
            f"The structure to relax ({structure.composition}) has partially occupied sites; CHGNet "
            "relaxes ordered structures. Relax one of its orderings (almat.enumerate_orderings).")
    check_structure(structure, "the structure to relax")
    if not isinstance(settings, RelaxSettings):
        raise RelaxSettingsError(
            f"settings must be a RelaxSettings, not {type(settings).__name__}: e.g. "
            "almat.RelaxSettings(fmax=0.05, steps=500, relax_cell=True).")
    check_settings(settings.fmax, settings.steps, settings.relax_cell)


def _fmax_now(target) -> float:
    forces = target.get_forces()
    return float(np.sqrt((forces ** 2).sum(axis=1).max()))


def settings_dict(settings: RelaxSettings) -> dict:
    """The settings as a plain dict, for provenance records."""
    return asdict(settings)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RelaxationsJournal(Journal):
    """A relaxations file: one :meth:`Relaxation.to_record` per candidate key, shared by many writers.

    The header names the settings and the CHGNet version, and for the
    relaxed oracle's cache the parent structure whose candidates the keys
    name: relaxations made otherwise are refused, never mixed in.

    Parameters
    ----------
    path
        The JSON Lines file.
    settings
        The settings the file must have been made with; ``None`` reads a file
        of any settings and CHGNet version.
    parent
        Fingerprint of the candidates' parent structure, when the keys are
        those of :meth:`~almat.orderings.Orderings.key`.
    """

    kind, format, what, error = "almat-relaxations", 2, "relaxations file", RelaxationsFileError
    repair = ("The file was edited by hand or damaged; delete that line, and that candidate is "
              "relaxed again when it is next asked for.")

    def __init__(self, path: str | Path, settings: RelaxSettings | None = None, parent: str | None = None):
        from almat.scoring import chgnet_version

        fields = {"settings": None if settings is None else settings_dict(settings),
                  "chgnet": chgnet_version()}
        if parent is not None:
            fields["parent"] = parent
        super().__init__(path, fields, identity=() if settings is None else list(fields))

    def check_header(self, header: dict) -> None:
        if header.get("kind") == self.kind and "type" not in header:
            raise self.error(
                f"{self.path} is a relaxations file of an earlier almat, without checksums. Convert "
                f"it once with almat.relaxation.upgrade_relaxations({str(self.path)!r}), or delete "
                "it to relax again.")
        super().check_header(header)

    def mismatch(self, name: str, found, expected) -> str:
        if name == "chgnet":
            return (f"{self.path} holds relaxations made with CHGNet {found}; this is CHGNet "
                    f"{expected}. Results of two versions are not mixed: give another file, or "
                    "delete this one to relax again with this version.")
        if name == "parent":
            return (f"{self.path} holds relaxations of candidates of another parent structure "
                    f"(fingerprint {found}, not {expected}). Give another file.")
        return (f"{self.path} holds relaxations made with {name} {found}, not {expected}. Use the "
                "same settings to resume, or another file.")

    def check_record(self, record: dict) -> str | None:
        key = record.get("key")
        if not isinstance(key, str) or not key:
            return "no key naming the candidate"
        return Relaxation.check_record(record)


def upgrade_relaxations(path: str | Path) -> int:
    """Rewrite a relaxations file of almat before journals (format 1) with a header and checksums.

    Every number is kept to the last digit (each line's JSON is parsed and
    written again, which round-trips floats exactly) and so is the CHGNet
    version of the old header. A last line cut short is dropped; a damaged
    line is refused. Run it while nothing else writes to the file.

    Returns
    -------
    int
        The number of records kept.
    """
    path = Path(path)
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()
    journal = RelaxationsJournal(path)
    try:
        old = json.loads(lines[0]) if lines else None
    except ValueError:
        old = None
    if not isinstance(old, dict) or old.get("kind") != journal.kind or "type" in old:
        raise RelaxationsFileError(f"{path} is not a relaxations file of an earlier almat; nothing "
                                   "to upgrade.")
    header = {"type": "header", "kind": journal.kind, "format": journal.format, "journal": 1,
              "settings": old.get("settings"), "chgnet": old.get("chgnet")}
    out = [json.dumps(header)]
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        problem = "not valid JSON" if not isinstance(record, dict) else journal.check_record(record)
        if problem is not None:
            raise journal.damaged(number, problem)
        out.append(json.dumps({**record, CHECK: checksum(record)}, allow_nan=False))
    if tail.strip():
        warnings.warn(f"The last line of {path} was cut short and is dropped: {tail[:80]!r}.",
                      stacklevel=2)
    write_atomic(path, "\n".join(out) + "\n")
    return len(out) - 1
