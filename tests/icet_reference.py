"""icet, the independent reference that the enumeration tests compare with (the ``reference`` extra).

Without it the comparisons are skipped and every other test still runs; CI
installs the extra, so there they always run.
"""

import pytest

try:
    from icet.tools import enumerate_structures
except ImportError:
    enumerate_structures = None

needs_icet = pytest.mark.skipif(enumerate_structures is None,
                                reason='icet is not installed: pip install -e ".[reference]"')
