"""Run the notebooks under nbval with a fresh labels folder.

The labeling notebook keeps its campaign in ``$ALMAT_LABELS_DIR`` (``labels/`` next
to the notebook otherwise) and resumes from what it finds there. Its stored outputs
come from an empty labels file, so every test run starts from an empty, temporary
folder; the kernels nbval starts inherit this environment variable.
"""

import os
import shutil
import tempfile

_LABELS_DIR = tempfile.mkdtemp(prefix="almat-nbval-labels-")


def pytest_configure(config):
    os.environ["ALMAT_LABELS_DIR"] = _LABELS_DIR


def pytest_unconfigure(config):
    shutil.rmtree(_LABELS_DIR, ignore_errors=True)
