"""The parent structure and its disorder.

Li6PS5Cl (lithium argyrodite) crystallises in space group F-43m (No. 216). Its
Li ions sit on the 48h Wyckoff position, which is only about half occupied, so
the crystal is a statistical average over many Li/vacancy orderings. This
module builds the parent structure from published crystallographic facts,
reads it back with errors a learner can act on, and prepares the disorder for
enumeration.

Sources of the facts in :data:`PARENT_SITES` are listed in ``data/README.md``.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from almat.errors import AlmatError
from almat.files import packaged_folder, write_atomic

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

DATA_DIR = packaged_folder("data", "data")
PARENT_CIF = DATA_DIR / "Li6PS5Cl.cif"


#: Two fully occupied sites closer than this (Å) are refused: no two atoms sit that close.
MIN_DISTANCE = 0.5
#: Shortest Li-Li distance (Å) of the lesson's candidates: the two 48h sites of a pair are 1.8 Å
#: apart and the next nearest 48h sites 2.33 Å, so this allows one Li per pair.
MIN_LI_LI = 2.0
#: Sites closer than this fraction of the sum of their covalent radii make a structure "crowded".
CROWDED_FRACTION = 0.5
#: A fractional coordinate beyond this many cells from the origin is taken as a unit mix-up.
MAX_FRACTIONAL = 1000.0
#: Resolution of occupancies: enumeration rounds them to fractions with denominators up to this.
OCCUPANCY_DENOMINATOR = 1000


class StructureError(AlmatError, ValueError):
    """A structure is not a crystal almat can work with (no atoms, NaN, atoms on top of each other...)."""


class StructureFileError(StructureError):
    """A structure file is missing or cannot be read as a crystal structure."""


class OccupancyError(AlmatError, ValueError):
    """A partial occupancy cannot be realised in the supercells asked for."""


class CrowdedStructureWarning(UserWarning):
    """Atoms closer than any stable compound puts them: energies of such a structure mean little."""


def check_structure(structure: Structure, name: str = "the structure") -> None:
    """Refuse a structure no calculation should be run on, naming what is wrong.

    Checks that it has sites, a finite lattice of non-zero volume, finite
    fractional coordinates within :data:`MAX_FRACTIONAL` cells, and no two
    fully occupied sites closer than :data:`MIN_DISTANCE` Å (periodic images
    included). Partially occupied sites may overlap: split positions are common.

    Parameters
    ----------
    structure
        The structure to check.
    name
        How messages call it, e.g. its file name.

    Raises
    ------
    StructureError
        On the first problem found.
    """
    if len(structure) == 0:
        raise StructureError(f"{name} holds no atoms. Check that the file is complete.")
    matrix = structure.lattice.matrix
    if not np.isfinite(matrix).all():
        raise StructureError(f"The lattice of {name} has NaN or infinite entries: {matrix.tolist()}. "
                             "Check the cell lengths and angles in the file.")
    volume = abs(float(np.linalg.det(matrix)))
    if volume < 1e-3 * max(float(np.linalg.norm(matrix, axis=1).prod()), 1e-12):
        raise StructureError(f"The cell of {name} is flat (volume {volume:.3g} Å³): its lattice vectors "
                             f"{np.round(matrix, 4).tolist()} lie in one plane. Check the cell angles.")
    frac = structure.frac_coords
    bad = np.flatnonzero(~np.isfinite(frac).all(axis=1))
    if bad.size:
        raise StructureError(f"Site {bad[0]} ({structure[int(bad[0])].species_string}) of {name} has NaN or "
                             f"infinite coordinates ({bad.size} site(s) in all). The file is damaged.")
    far = np.flatnonzero((np.abs(frac) > MAX_FRACTIONAL).any(axis=1))
    if far.size:
        i = int(far[0])
        raise StructureError(
            f"Site {i} ({structure[i].species_string}) of {name} lies at fractional coordinates "
            f"{frac[i].tolist()}, more than {MAX_FRACTIONAL:g} cells outside the cell. Such numbers "
            "usually mean Cartesian coordinates (Å) written where fractional ones belong, or a unit "
            "mix-up; fix the file, or wrap the sites with structure.to_unit_cell() if they are meant."
        )
    pairs = _ordered_pairs_within(structure, MIN_DISTANCE)
    if pairs:
        i, j, d = pairs[0]
        raise StructureError(
            f"Sites {i} ({structure[i].species_string}) and {j} ({structure[j].species_string}) of "
            f"{name} are {d:.3f} Å apart; no two atoms sit closer than {MIN_DISTANCE} Å. A site is "
            "probably listed twice or has a wrong coordinate; fix the file."
        )


def min_li_li(structure: Structure, species: str = "Li", cutoff: float = 8.0) -> float:
    """Shortest distance (Å) between two ``species`` sites, periodic images included.

    In Li6PS5Cl the two 48h sites of a pair are 1.8 Å apart; an ordering that
    fills both puts two Li+ ions closer than any stable Li compound does.
    NaN if fewer than two such sites lie within ``cutoff`` of each other.
    """
    idx = [i for i, s in enumerate(structure) if s.specie.symbol == species]
    if not idx:
        return float("nan")
    sub = Structure.from_sites([structure[i] for i in idx])
    dists = sub.get_neighbor_list(r=cutoff)[3]
    dists = dists[dists > 1e-8]
    return float(dists.min()) if len(dists) else float("nan")


def _ordered_pairs_within(structure: Structure, cutoff: float) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, distance)`` of fully occupied sites closer than ``cutoff`` Å, shortest first."""
    wrapped = Structure(structure.lattice, structure.species_and_occu, np.mod(structure.frac_coords, 1.0))
    centre, neighbour, _, dist = wrapped.get_neighbor_list(r=cutoff)
    ordered = np.array([site.is_ordered for site in structure])
    keep = ordered[centre] & ordered[neighbour] & (centre <= neighbour)
    found = sorted(zip(dist[keep], centre[keep], neighbour[keep]))
    return [(int(i), int(j), float(d)) for d, i, j in found]


def warn_if_crowded(structure: Structure, name: str = "the structure") -> bool:
    """Warn (:class:`CrowdedStructureWarning`) when two atoms are unphysically close.

    "Close" means nearer than :data:`CROWDED_FRACTION` times the sum of their
    covalent radii (Cordero et al. 2008, as tabulated in pymatgen): Li-Li
    1.28 Å, half of the 2.56 Å sum. The Li-Li pairs 1.8 Å apart in some
    Li6PS5Cl orderings are not crowded by this measure; a lithium atom in a
    1 Å cube (1 Å from its own images, 11.5 g/cm³) is.

    Returns
    -------
    bool
        Whether a warning was given.
    """
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    radii = CovalentRadius.radius
    symbols = [site.specie.symbol if site.is_ordered else None for site in structure]
    r = np.array([radii.get(s, 0.0) if s else 0.0 for s in symbols])
    if not r.any():
        return False
    for i, j, d in _ordered_pairs_within(structure, CROWDED_FRACTION * 2 * r.max()):
        limit = CROWDED_FRACTION * (r[i] + r[j])
        if d < limit:
            pair = (f"atom {i} ({symbols[i]}) and its own periodic image" if i == j
                    else f"atoms {i} ({symbols[i]}) and {j} ({symbols[j]})")
            warnings.warn(
                f"{name}: {pair} are {d:.2f} Å apart, less "
                f"than half their covalent bond length ({2 * limit:.2f} Å); density "
                f"{structure.density:.2f} g/cm³. No stable compound is this dense, so its energy means "
                "little. Check the lattice parameters and coordinates.",
                CrowdedStructureWarning, stacklevel=3)
            return True
    return False


def charge(structure: Structure) -> float | None:
    """Total charge of the cell from the oxidation states, occupancies included.

    Returns
    -------
    float or None
        ``None`` when any species has no oxidation state.
    """
    total = 0.0
    for site in structure:
        for sp, occ in site.species.items():
            oxi = getattr(sp, "oxi_state", None)
            if oxi is None:
                return None
            total += occ * oxi
    return total


def check_charge_balance(structure: Structure, name: str = "the structure") -> None:
    """Refuse a structure whose oxidation states do not add up to zero.

    A cell that is not neutral is not the material meant: most often atoms
    are missing (a file cut short) or an occupancy is off. Structures without
    oxidation states are not checked.

    Raises
    ------
    StructureError
        With the charge, the composition, and, when one disordered sublattice
        could balance it, the occupancy that would.
    """
    q = charge(structure)
    if q is None or abs(q) < 1e-6:
        return
    hint = ("Check that the file is complete (a CIF cut short loses atoms) and that its oxidation "
            "states are right.")
    balance = ""
    groups = disordered_sublattices(structure)
    if len(groups) == 1:
        sites, occ = next(iter(groups.values()))
        if len(occ) == 1:
            sp = structure[sites[0]].species.elements[0]
            p = occ[str(sp)] - q / (len(sites) * sp.oxi_state) if sp.oxi_state else float("nan")
            if 0 < p <= 1:
                balance = (f" If it is, the occupancy of the {sp} sites that makes it neutral is {p:.4g} "
                           f"(almat.set_occupancy(structure, {p:.4g}), or --occupancy {p:.4g}).")
    raise StructureError(
        f"The oxidation states of {name} ({structure.composition.formula}) add up to {q:+.4g} per cell, "
        f"not 0, so it is not a neutral compound. {hint}{balance}"
    )


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
    return write_atomic(path, str(CifWriter(build_parent(), symprec=1e-3)))


def read_structure(path: str | Path) -> Structure:
    """Read a structure file, turning every failure into one actionable message.

    Parameters
    ----------
    path
        A CIF, POSCAR or any format pymatgen reads.

    Raises
    ------
    StructureFileError
        If the file is missing, empty or not a crystal structure, or fails
        :func:`check_structure`.
    """
    path = Path(path)
    if not path.is_file():
        raise StructureFileError(
            f"No structure file at '{path}'. Check the path (relative paths start from "
            f"'{Path.cwd()}'), or use almat.load_parent() for the Li6PS5Cl file shipped "
            "with the lesson; `almat build-data` writes it again if it was deleted."
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            structure = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for bad files
        raise StructureFileError(
            f"Could not read '{path}' as a crystal structure ({type(exc).__name__}: {exc}). "
            "Open it in a text editor: a CIF needs _cell_length_a/b/c, _cell_angle_*, and an "
            "atom_site loop with fractional coordinates. A file saved from a web page as HTML, "
            "or cut short while downloading, gives this error; download it again or use "
            "almat.load_parent()."
        ) from exc
    for w in caught:
        if str(w.message).startswith("Missing elements"):
            raise StructureFileError(
                f"'{path}' names elements it has no atom of ({w.message}): its atom list is "
                "incomplete, most often because the file was cut short while it was saved or "
                "downloaded. Get a complete copy of the file."
            )
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    try:
        check_structure(structure, f"'{path}'")
    except StructureError as exc:
        raise StructureFileError(str(exc)) from None
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
        New occupancy, 0 < occupancy <= 1; values that round to 0 or 1 at a
        resolution of 1/1000 (other than 1 itself) are refused. The lesson uses
        1/2, which makes the composition exactly Li6PS5Cl.
    species
        Only change disordered sites of this species (e.g. ``"Li+"``); all by default.

    Returns
    -------
    Structure
        A new structure; ``structure`` is left as it was.
    """
    if not 0 < occupancy <= 1:
        raise OccupancyError(f"An occupancy must lie in (0, 1]; got {occupancy}.")
    if occupancy != 1:
        _check_rounding(occupancy, "the disordered sites")
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


def _check_rounding(occupancy: float, where: str) -> None:
    """Refuse a partial occupancy that enumeration would round to 0 or 1."""
    rounded = Fraction(occupancy).limit_denominator(OCCUPANCY_DENOMINATOR)
    if rounded in (0, 1):
        raise OccupancyError(
            f"An occupancy of {occupancy:g} on {where} is {rounded} at the resolution of "
            f"1/{OCCUPANCY_DENOMINATOR} that enumeration uses, so every ordering would have "
            f"{'no atom' if rounded == 0 else 'every site filled'} there. Choose an occupancy "
            f"between {1 / OCCUPANCY_DENOMINATOR:g} and {1 - 1 / OCCUPANCY_DENOMINATOR:g} (the lesson uses 0.5)."
        )


def check_occupancies(structure: Structure, name: str = "the structure") -> None:
    """Refuse a structure with nothing to enumerate.

    Raises
    ------
    OccupancyError
        If no site is partially occupied, or an occupancy rounds to 0 or 1
        (no atom, or every site filled, in every ordering).
    """
    groups = disordered_sublattices(structure)
    if not groups:
        raise OccupancyError(f"{name} has no partially occupied site, so it has only one ordering and "
                             "nothing to enumerate. Give the disordered sites an occupancy, e.g. "
                             "--occupancy 0.5.")
    for sites, occ in groups.values():
        for sp, x in occ.items():
            _check_rounding(x, f"the {len(sites)} {sp} sites of {name}")


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
