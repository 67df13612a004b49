"""The root of every error almat raises on purpose.

``except almat.AlmatError`` catches each refusal of the package (bad input,
a file of another pool, an enumeration too large to build) and nothing else;
the command line turns these into one clear line and a non-zero exit status.
Each concrete error also derives from the built-in type it refines
(``ValueError``, ``RuntimeError``, ...), so existing ``except`` clauses keep working.
"""

from __future__ import annotations


class AlmatError(Exception):
    """Base class of all errors raised by almat on purpose."""
