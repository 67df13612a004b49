"""almat: active learning for materials, the code behind the lesson.

The modules follow the lesson's pipeline::

    structures -> enumeration -> scoring -> features -> surrogates
               -> acquisition -> campaign -> widget
"""

from almat.structures import (
    OccupancyError,
    StructureFileError,
    load_parent,
    primitive_cell,
    read_structure,
    set_occupancy,
)

__version__ = "0.1.0"

__all__ = [
    "OccupancyError",
    "StructureFileError",
    "load_parent",
    "primitive_cell",
    "read_structure",
    "set_occupancy",
]
