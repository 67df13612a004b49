"""Ewald energies of orderings: the electrostatic ranking pymatgen gives its enumerations."""

from __future__ import annotations

import numpy as np

from almat.orderings import Orderings


def ewald_energies(table: Orderings) -> np.ndarray:
    """Ewald energy per atom (eV/atom) of each ordering, as pymatgen ranks enumerations.

    As in pymatgen's ``EnumerateStructureTransformation``, one
    ``EwaldSummation`` of the disordered parent supercell is made per
    supercell shape, and each ordering's energy is its sub-structure energy
    (formal point charges from the oxidation states).
    """
    from pymatgen.analysis.ewald import EwaldSummation

    sums: dict[int, EwaldSummation] = {}
    energies = np.empty(len(table))
    for i in range(len(table)):
        h = int(table.hnf_index[i])
        if h not in sums:
            sums[h] = EwaldSummation(table.parent * table.hnfs[h].T)
        s = table.structure(i)
        energies[i] = sums[h].compute_sub_structure(s) / len(s)
    return energies
