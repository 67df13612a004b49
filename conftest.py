"""Run the lesson notebooks under nbval with a fresh labels folder.

The labeling notebook keeps its campaign in ``$ALMAT_LABELS_DIR`` (``labels/`` next to the
notebook otherwise) and resumes from what it finds there. Its stored outputs come from an
empty labels file, so a run with ``--nbval`` starts from an empty, temporary folder; the
kernels nbval starts inherit this environment variable. This file sits at the top of the
repository, not in ``notebooks/``, so that the learners' folder holds notebooks only; pytest
reads it for ``pytest --nbval`` and for ``pytest --nbval notebooks/`` alike.
"""

import os
import shutil
import tempfile


def _nbval(config) -> bool:
    return bool(config.getoption("nbval", False) or config.getoption("nbval_lax", False))


def pytest_configure(config):
    if _nbval(config):
        config._almat_labels_dir = tempfile.mkdtemp(prefix="almat-nbval-labels-")
        os.environ["ALMAT_LABELS_DIR"] = config._almat_labels_dir


def pytest_unconfigure(config):
    if hasattr(config, "_almat_labels_dir"):
        shutil.rmtree(config._almat_labels_dir, ignore_errors=True)
