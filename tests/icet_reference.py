"""icet, the independent reference that the enumeration and cluster tests compare with (the ``reference`` extra).

Without it the comparisons are skipped and every other test still runs; CI
installs the extra, so there they always run.
"""

import numpy as np
import pytest

from almat.features import parent_atoms

try:
    from icet import ClusterSpace
    from icet.tools import enumerate_structures
except ImportError:
    ClusterSpace = enumerate_structures = None

needs_icet = pytest.mark.skipif(enumerate_structures is None,
                                reason='icet is not installed: pip install -e ".[reference]"')


def icet_space(parent, cutoffs):
    """icet's cluster space of a disordered pymatgen parent."""
    atoms, allowed = parent_atoms(parent)
    return ClusterSpace(atoms, list(cutoffs), allowed)


def icet_vectors(space, structures, least_order=2):
    """icet's cluster vectors of ase structures, the columns of orbits of ``least_order`` sites or more."""
    columns = [row["index"] for row in space.as_list if row["order"] >= least_order]
    return np.array([space.get_cluster_vector(s) for s in structures])[:, columns]
