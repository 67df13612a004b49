"""The parent structure and its disorder.

Li6PS5Cl (lithium argyrodite) crystallises in space group F-43m (No. 216). Its
Li ions sit on the 48h Wyckoff position, which is only about half occupied, so
the crystal is a statistical average over many Li/vacancy orderings. This
module builds the parent structure from published crystallographic facts,
reads it back with errors a learner can act on, and prepares the disorder for
enumeration.

Sources of the facts in :data:`PARENT_SITES` are listed in ``almat/data/README.md``.
"""

from __future__ import annotations

from fractions import Fraction
from importlib.resources import files
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

#: Cubic lattice parameter of Li6PS5Cl in Å.
LATTICE_A = 9.86
#: Hermann-Mauguin symbol of the space group (No. 216).
SPACE_GROUP = "F-43m"
#: Refined occupancy of the Li 48h site.
LI_OCCUPANCY = 0.56
#: Fractional x of S on 16e (x, x, x): P-S = sqrt(3) (1/2 - x) a = 2.04 Å.
S16E_X = 0.5 - 2.04 / (np.sqrt(3) * LATTICE_A)

#: Asymmetric unit: (label, Wyckoff, species or {species: occupancy}, fractional coords).
PARENT_SITES: tuple[tuple[str, str, str | dict[str, float], tuple[float, float, float]], ...] = (
    ("Li1", "48h", {"Li+": LI_OCCUPANCY}, (0.3148, 0.018, 0.6852)),
    ("P1", "4b", "P5+", (0.5, 0.5, 0.5)),
    ("S1", "16e", "S2-", (S16E_X, S16E_X, S16E_X)),
    ("S2", "4d", "S2-", (0.75, 0.75, 0.75)),
    ("Cl1", "4a", "Cl-", (0.0, 0.0, 0.0)),
)

DATA_DIR = Path(str(files("almat") / "data"))
PARENT_CIF = DATA_DIR / "Li6PS5Cl.cif"


class StructureFileError(ValueError):
    """A structure file is missing or cannot be read as a crystal structure."""


class OccupancyError(ValueError):
    """A partial occupancy cannot be realised in the supercells asked for."""


def build_parent() -> Structure:
    """Build the conventional cell of Li6PS5Cl from :data:`PARENT_SITES`.

    Returns
    -------
    Structure
        76 sites (48 of them Li with occupancy 0.56), with oxidation states
        Li+, P5+, S2-, Cl-.
    """
    species = [s[2] for s in PARENT_SITES]
    coords = [s[3] for s in PARENT_SITES]
    return Structure.from_spacegroup(SPACE_GROUP, Lattice.cubic(LATTICE_A), species, coords)


def write_parent_cif(path: str | Path = PARENT_CIF) -> Path:
    """Write the parent structure as a CIF (the command behind ``data/Li6PS5Cl.cif``).

    Parameters
    ----------
    path
        Destination file.

    Returns
    -------
    Path
        The file written.
    """
    from pymatgen.io.cif import CifWriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    CifWriter(build_parent(), symprec=1e-3).write_file(path)
    return path


def read_structure(path: str | Path) -> Structure:
    """Read a structure file, turning every failure into one actionable message.

    Parameters
    ----------
    path
        A CIF, POSCAR or any format pymatgen reads.

    Raises
    ------
    StructureFileError
        If the file is missing, empty or not a crystal structure.
    """
    path = Path(path)
    if not path.is_file():
        raise StructureFileError(
            f"No structure file at '{path}'. Check the path (relative paths start from "
            f"'{Path.cwd()}'), or use almat.load_parent() for the Li6PS5Cl file shipped "
            "with the lesson; `almat build-data` writes it again if it was deleted."
        )
    try:
        structure = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for bad files
        raise StructureFileError(
            f"Could not read '{path}' as a crystal structure ({type(exc).__name__}: {exc}). "
            "Open it in a text editor: a CIF needs _cell_length_a/b/c, _cell_angle_*, and an "
            "atom_site loop with fractional coordinates. A file saved from a web page as HTML, "
            "or cut short while downloading, gives this error; download it again or use "
            "almat.load_parent()."
        ) from exc
    if len(structure) == 0:
        raise StructureFileError(f"'{path}' was read but holds no atoms.")
    return structure


def primitive_cell(structure: Structure, symprec: float = 1e-3) -> Structure:
    """Return the primitive cell, keeping partial occupancies and oxidation states."""
    return SpacegroupAnalyzer(structure, symprec=symprec).find_primitive()


def load_parent(path: str | Path | None = None, primitive: bool = True) -> Structure:
    """Load the Li6PS5Cl parent structure.

    Parameters
    ----------
    path
        A CIF to read; the shipped ``data/Li6PS5Cl.cif`` by default.
    primitive
        Return the 19-site primitive cell (12 of them Li 48h) instead of the
        76-site conventional cell.
    """
    structure = read_structure(PARENT_CIF if path is None else path)
    return primitive_cell(structure) if primitive else structure


def set_occupancy(structure: Structure, occupancy: float, species: str | None = None) -> Structure:
    """Give every partially occupied site one chosen occupancy.

    This is what the loop ``structure[i] = {"Li+": 0.5}`` of the original
    workflow meant, without mutating its input and without dropping oxidation
    states.

    Parameters
    ----------
    structure
        A structure with at least one partially occupied site.
    occupancy
        New occupancy, 0 < occupancy <= 1. The lesson uses 1/2, which makes the
        composition exactly Li6PS5Cl.
    species
        Only change disordered sites of this species (e.g. ``"Li+"``); all by default.

    Returns
    -------
    Structure
        A new structure; ``structure`` is left as it was.
    """
    if not 0 < occupancy <= 1:
        raise OccupancyError(f"An occupancy must lie in (0, 1]; got {occupancy}.")
    new = structure.copy()
    changed = 0
    for i, site in enumerate(structure):
        if site.is_ordered:
            continue
        if len(site.species) != 1:
            raise OccupancyError(
                f"Site {i} is shared by {site.species}; set_occupancy handles sites with one "
                "species and vacancies, such as Li/vacancy."
            )
        specie = next(iter(site.species))
        if species is not None and str(specie) != species:
            continue
        new.replace(i, {specie: occupancy}, coords=site.frac_coords, properties=site.properties)
        changed += 1
    if changed == 0:
        raise OccupancyError(
            "No partially occupied site matched, so nothing was changed. "
            "Is the structure already ordered?"
        )
    return new


def disordered_sublattices(structure: Structure) -> dict[str, tuple[list[int], dict[str, float]]]:
    """Group the partially occupied sites by their species and occupancies.

    Returns
    -------
    dict
        Label such as ``"Li+:0.56"`` -> (site indices, {species: occupancy}).
    """
    groups: dict[str, tuple[list[int], dict[str, float]]] = {}
    for i, site in enumerate(structure):
        if site.is_ordered:
            continue
        occ = {str(sp): float(x) for sp, x in site.species.items()}
        label = ",".join(f"{sp}:{x:g}" for sp, x in sorted(occ.items()))
        groups.setdefault(label, ([], occ))[0].append(i)
    return groups


def _cell_size_needed(n_sites: int, occupancy: float) -> int:
    return (Fraction(occupancy).limit_denominator(1000) * n_sites).denominator


def required_cell_size(structure: Structure) -> int:
    """Smallest supercell, in primitive cells, that holds a whole number of each species.

    For a sublattice of ``m`` sites with occupancy ``p``, an ordered N-cell
    supercell needs ``p * m * N`` to be an integer, so N is the denominator of
    ``p * m`` as a fraction (0.56 on 12 sites: 6.72 = 168/25, N = 25).
    """
    need = 1
    for sites, occ in disordered_sublattices(structure).values():
        for x in occ.values():
            need = int(np.lcm(need, _cell_size_needed(len(sites), x)))
    return need
