"""Write the website's pictures of the 3-D views: ``fig/02-ordering-3d.png``,
``fig/03-relaxation-3d.png`` and ``fig/03-pool-map.png``.

A notebook cannot show the website a live widget, so the episodes show a picture of it.
The pictures are screenshots of the views as the browser test
``tests/browser/test_views_in_jupyterlab.py`` renders them: the cells of episodes 2 and 3 in
JupyterLab, in Chromium at 1024x768, offline.
This script runs that test with ``ALMAT_UPDATE_FIGURE=1``, which copies its screenshots to
``fig/``; the test passes only when every view has drawn and nothing left 127.0.0.1.
Usage::

    python scripts/make_view_pictures.py

Needs what the browser tests need (Debian's Chromium, playwright, jupyterlab).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/browser/test_views_in_jupyterlab.py::test_views_render_offline_at_projector_size"


def main() -> int:
    env = dict(os.environ, ALMAT_UPDATE_FIGURE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "code"),
                                                        os.environ.get("PYTHONPATH")])))
    return subprocess.call([sys.executable, "-m", "pytest", TEST, "-q", "-s"],
                           cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
