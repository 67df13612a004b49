"""Derivative-structure enumeration: the symmetry-distinct orderings of a disordered parent.

A derivative structure is an ordered decoration of a supercell of the parent
lattice (Hart & Forcade, Phys. Rev. B 77, 224115, 2008). Two decorations are
the same structure when a space-group operation of the parent, or a lattice
translation, maps one onto the other; each class is counted once, and
decorations that repeat within a smaller cell are left to that cell.

Split sites: ``min_distance`` (Å) forbids two atoms on disordered sites closer
than that. Every request is counted first and refused, before anything is
allocated, if it cannot be finished (:class:`EnumerationTooLargeError`).

This is the package's one door to the enumerator: modules outside it import
from here only. Inside, one concept per module, each importing only those
before it::

    errors -> hnf -> exclusion -> cliques -> problem -> kernels -> mobius
        -> fixed -> counting -> walk -> backends -> ewald -> api
"""

from almat.enumeration.api import (
    DEFAULT_LIMIT,
    count_orderings,
    enumerate_orderings,
    enumerate_table,
)
from almat.enumeration.backends import (
    BACKENDS,
    canonical_order,
    enumlib_available,
    icet_available,
    resolve_backend,
)
from almat.enumeration.errors import (
    BackendUnavailableError,
    CellSizeError,
    ConcentrationError,
    EnumerationTooLargeError,
    ExclusionError,
    NoOrderingsError,
    OptionError,
    ParentError,
    SymmetryError,
    UnknownBackendError,
)
from almat.enumeration.ewald import ewald_energies
from almat.enumeration.hnf import SiteSymmetry, site_symmetry
from almat.enumeration.exclusion import respects_min_distance
from almat.enumeration.walk import DEFAULT_MAX_ROWS

__all__ = ["BACKENDS", "DEFAULT_LIMIT", "DEFAULT_MAX_ROWS", "BackendUnavailableError", "CellSizeError",
           "ConcentrationError", "EnumerationTooLargeError", "ExclusionError", "NoOrderingsError",
           "OptionError", "ParentError", "SiteSymmetry",
           "SymmetryError", "UnknownBackendError", "canonical_order", "count_orderings",
           "enumerate_orderings", "enumerate_table", "enumlib_available", "ewald_energies",
           "icet_available", "resolve_backend", "respects_min_distance", "site_symmetry"]
