"""The labeling app, on ipywidgets 8: a learner labels the candidates a campaign proposes.

- :mod:`almat.widget.app`: :class:`LabelingApp`, its actions, each bound to the candidate on
  the screen, and the :class:`Outcome` each returns;
- :mod:`almat.widget.layout`: its widgets, where they sit, and how its text reads;
- :mod:`almat.widget.pictures`: the candidate's picture and the plots.
"""

from almat.widget.app import IMPLAUSIBLE_SIGMAS, LabelingApp, Outcome
from almat.widget.layout import PLACEHOLDER, RESTART_HINT
from almat.widget.pictures import DPI

__all__ = ["DPI", "IMPLAUSIBLE_SIGMAS", "PLACEHOLDER", "RESTART_HINT", "LabelingApp", "Outcome"]
