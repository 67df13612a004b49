"""The enumerator's refusals: one error class per kind of bad request, and the text of each.

Every class is an :class:`almat.errors.AlmatError` and refines the built-in
type of its complaint, so ``except ValueError`` keeps working. Every message
is one line: what was asked, why it cannot be done, and what to change. The
functions here only word facts that the guards in the other modules have
established; none of them computes anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from almat.errors import AlmatError
from almat.structures import MIN_LI_LI


class ParentError(AlmatError, TypeError):
    """The parent is not a pymatgen ``Structure``."""


class ConcentrationError(AlmatError, ValueError):
    """A concentration restriction names an unknown species or an impossible range."""


class CellSizeError(AlmatError, ValueError):
    """Cell sizes that are not positive integers, or too large to count."""


class EnumerationTooLargeError(AlmatError, ValueError):
    """More orderings than the caller allowed would be built, or too many to count exactly."""


class SymmetryError(AlmatError, ValueError):
    """The parent's symmetry cannot be used: not a primitive cell, or sites that do not map."""


class ExclusionError(AlmatError, ValueError):
    """A minimum distance that is not a positive, finite number of Å."""


class BackendUnavailableError(AlmatError, RuntimeError):
    """The requested enumeration backend is not installed."""


class UnknownBackendError(AlmatError, ValueError):
    """A backend name that is not one of :data:`almat.enumeration.BACKENDS`."""


class NoOrderingsError(AlmatError, ValueError):
    """A request that no ordering satisfies, where an empty answer would puzzle (``almat enumerate``)."""


class OptionError(AlmatError, ValueError):
    """An option outside its allowed values: ``sort_by``, ``limit`` or ``max_rows``."""


def sizes_text(sizes: Sequence[int]) -> str:
    """``"size 2"``, ``"sizes 1 to 3"`` or ``"sizes [1, 4]"``."""
    if len(sizes) == 1:
        return f"size {sizes[0]}"
    if list(sizes) == list(range(sizes[0], sizes[-1] + 1)):
        return f"sizes {sizes[0]} to {sizes[-1]}"
    return f"sizes {list(sizes)}"


def bad_min_distance(value: object) -> str:
    return (f"min_distance is the shortest allowed distance in Å between two occupied disordered "
            f"sites, a positive finite number such as {MIN_LI_LI} (Li6PS5Cl's 48h pair is 1.81 Å); "
            f"got {value!r}.")


def bad_sizes(sizes: object) -> str:
    return (f"Cell sizes must be positive integers (numbers of primitive cells in a supercell, "
            f"e.g. [1, 2]); got {sizes!r}.")


def min_above_max(min_cell_size: int, max_cell_size: int) -> str:
    return (f"Need min_cell_size <= max_cell_size; got {min_cell_size} and {max_cell_size}. "
            "Swap them, or ask for one size with both equal.")


def size_too_large_to_count(n: int, supercells: int, sites: int, largest: int) -> str:
    return (f"Cell size {n} is too large to count in reasonable time ({supercells:,} supercells of "
            f"{sites:,} disordered sites: minutes to hours of work, and far too many orderings to "
            f"build). Sizes up to about {largest} can be counted one at a time.")


def sizes_too_many_to_count(first: int, n: int, supercells: int, sites: int, most: int) -> str:
    return (f"Cell sizes {first} to {n} are too many to count together in reasonable time "
            f"({supercells:,} supercells of up to {sites:,} disordered sites). Sizes {first} to {most} "
            "can be counted; ask for fewer or smaller sizes.")


def index_too_large(n: int) -> str:
    return (f"Cell size {n} is too large to count or enumerate (supercells of {n} primitive cells are "
            "far beyond reach); ask for cell sizes of a few primitive cells (e.g. 1 to 4).")


def no_whole_count(name: str, per_cell: int, where: list[float], fraction: str, value: float,
                   need: int, sizes: Sequence[int]) -> str:
    return (
        f"The {name} sites ({per_cell} per cell, e.g. at {where}) have occupancy {value:g} = "
        f"{fraction}. An ordered structure needs a whole number of {name}, {value:g} x {per_cell} x N, "
        f"which happens only when N is a multiple of {need}; you asked for cell {sizes_text(sizes)}. "
        f"Ask for N = {need}, round the occupancy (the lesson uses almat.set_occupancy(structure, "
        "0.5), exactly Li6PS5Cl), or pass concentrations='any'."
    )


def no_count_in_range(sizes: Sequence[int]) -> str:
    return (f"No supercell of {sizes_text(sizes)} can hold the composition asked for: the "
            "concentration range holds no whole count of some species. Choose larger or other cell "
            "sizes, or widen the range.")


def split_site_hint(distance: float, suggested: float) -> str:
    """A hint appended to a refusal: the closest disordered sites and the ``min_distance`` that separates them."""
    return (f"Two disordered sites are only {distance:.2f} Å apart: min_distance={suggested:.1f} keeps "
            "atoms off both and leaves far fewer orderings. ")


def too_many_rows(total: int, sizes: Sequence[int], max_rows: int, gigabytes: float, hint: str) -> str:
    return (f"There are {total:,} symmetry-distinct orderings at cell {sizes_text(sizes)}, more than "
            f"max_rows={max_rows:,} (the table alone would take {gigabytes:.1f} GB). {hint}Choose "
            "smaller cell sizes, or pass a larger max_rows (max_rows=None for no limit) if you really "
            "need them all.")


def backend_goes_through_all(backend: str, total: int, sizes: Sequence[int], max_rows: int) -> str:
    return (f"Backend {backend!r} would go through all {total:,} orderings at cell {sizes_text(sizes)}, "
            f"more than max_rows={max_rows:,}. Use backend='fast' (with min_distance it enumerates only "
            "the allowed orderings), smaller cell sizes, or enumerate_table(..., max_rows=...) with a "
            "larger max_rows if you really mean to wait.")


def more_than_limit(count: int, sizes: Sequence[int], limit: int) -> str:
    return (f"There are {count:,} symmetry-distinct orderings at cell {sizes_text(sizes)}, more than "
            f"limit={limit:,}. Building them all as Structures would take a long time and a lot of "
            f"memory. Lower max_cell_size, exclude split sites with min_distance (e.g. {MIN_LI_LI} Å for "
            "Li6PS5Cl), work with the compact table (almat.enumerate_table), or raise limit if you "
            "really need them all.")


def structures_do_not_fit(count: int, sizes: Sequence[int], need_gb: float, free_gb: float) -> str:
    return (f"Building the {count:,} orderings at cell {sizes_text(sizes)} as Structures would need "
            f"about {need_gb:,.1f} GB of memory, and only {free_gb:.1f} GB are free. Work with the "
            "compact table (almat.enumerate_table, a few bytes per ordering), lower max_cell_size, or "
            "exclude split sites with min_distance.")


def too_many_patterns(n: int, patterns: int, most: int) -> str:
    return (f"At cell size {n} the symmetry moves sites onto sites with other allowed species in "
            f"{patterns} different ways; counting exactly would need 2^{patterns} terms (at most "
            f"2^{most} are feasible). Give symmetry-equivalent sites the same species.")


def too_many_linked(min_distance: float, n: int, frontier: int, most: int) -> str:
    return (f"min_distance={min_distance:g} Å links so many sites at cell size {n} that counting "
            f"exactly would track {frontier} linked groups of sites at once (at most {most} are "
            "feasible). Use a smaller min_distance (one that only separates the closest pairs) or "
            "smaller cell sizes.")


def no_disordered_site() -> str:
    return ("The parent structure has no partially occupied site, so there is nothing to enumerate. "
            "Give the sites that should be disordered an occupancy first, e.g. "
            "almat.set_occupancy(structure, 0.5).")


def not_a_structure(parent: object) -> str:
    return (f"The parent must be a pymatgen Structure, not {type(parent).__name__}; read one with "
            "almat.read_structure(path) or almat.load_parent().")


def bad_concentrations(concentrations: object) -> str:
    return (f"concentrations must be None (fixed by the occupancies), 'any', or a dict such as "
            f"{{'Li+': (0.25, 0.75)}}; got {concentrations!r}.")


def unknown_species(name: object, allowed: list[str]) -> str:
    return (f"No disordered site allows {name!r}; the species on the disordered sites are "
            f"{allowed} ('X' is a vacancy).")


def bad_range(name: object, value: object) -> str:
    return (f"The concentration of {name!r} must be a fraction x or a range (low, high) with "
            f"0 <= low <= high <= 1, counted over the sites that allow it; got {value!r}.")


def unknown_backend(backend: object, backends: Sequence[str]) -> str:
    return f"Unknown backend {backend!r}; choose one of {', '.join(backends)}."


def icet_missing() -> str:
    return ("Backend 'icet' needs icet, which is not installed: `pip install \"almat[reference]\"` "
            "(in a clone: `pip install -e \".[reference]\"`), or use backend='fast' (the default).")


def enumlib_missing() -> str:
    return ("enumlib's enum.x/makestr.x are not on PATH. They come from conda-forge "
            "(`mamba install -c conda-forge enumlib`, see environment.yml); with pip alone use "
            "backend='fast' (the default) or 'icet'.")


def unknown_sort(sort_by: object) -> str:
    return f"sort_by must be None (canonical order) or 'ewald' (lowest Ewald energy first); got {sort_by!r}."


def bad_count_option(name: str, value: object, none_ok: bool) -> str:
    also = " or None (no limit)" if none_ok else ""
    return f"{name} must be a whole number >= 0{also}; got {value!r}."


def no_symmetry(symprec: float) -> str:
    return (f"spglib found no symmetry for the parent (symprec={symprec}); check the structure for "
            "overlapping sites.")


def not_primitive() -> str:
    return ("The parent structure is not a primitive cell: it is invariant under a translation shorter "
            "than its cell vectors, so every ordering would be counted several times. Reduce it first, "
            "e.g. with almat.primitive_cell(structure).")


def unmapped_site(symprec: float) -> str:
    return (f"A symmetry operation maps a disordered site onto no disordered site at symprec={symprec}; "
            "try a smaller symprec.")
