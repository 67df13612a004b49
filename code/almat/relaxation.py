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
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.core import Lattice, Structure


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

    @classmethod
    def from_record(cls, record: dict) -> Relaxation:
        """Inverse of :meth:`to_record`."""
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
        The structure to relax (vacancies already removed).
    model
        A loaded CHGNet; the pretrained one (:func:`almat.scoring.load_chgnet`) by default.
    settings
        Force threshold, step limit and whether the cell relaxes.
    on_step
        Called after every FIRE step with ``(step, fmax_now)``, fmax_now in eV/Å;
        the labeling app uses it for its progress bar.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    from almat.scoring import isolated_atom_response, load_chgnet

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


def _fmax_now(target) -> float:
    forces = target.get_forces()
    return float(np.sqrt((forces ** 2).sum(axis=1).max()))


def settings_dict(settings: RelaxSettings) -> dict:
    """The settings as a plain dict, for provenance records."""
    return asdict(settings)
