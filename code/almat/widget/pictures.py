"""The labeling app's pictures: the candidate and the two plots, as PNG images with alt text.

Each function draws one figure at the app's size and returns it with its
``<img>`` HTML. The figures are matplotlib ``Figure`` objects, not pyplot's,
so nothing is shown twice in a notebook and no global state is touched.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from almat.evaluation import parity as parity_table
from almat.plots import plot_best_so_far, plot_parity, plot_structure
from almat.structures import MIN_LI_LI

if TYPE_CHECKING:
    from almat.campaign import Campaign
    from almat.ledger import Query
    from almat.pool import Pool

#: Resolution of the figures shown in the app; with 10 pt text that is 12.5 CSS px.
DPI = 90
#: Figure sizes (inches): the candidate's picture and each plot; each fits a column of
#: about 420 CSS px, so that JupyterLab does not scale them down at 1024 px wide.
STRUCTURE_SIZE = (4.4, 2.5)
PLOT_SIZE = (4.6, 2.9)


def img(fig: Figure, alt: str) -> str:
    """A figure as an HTML ``<img>`` holding a PNG, with alt text for screen readers."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            'style="max-width:100%;height:auto">')


def candidate_picture(pool: Pool, query: Query) -> tuple[Figure, str]:
    """The candidate seen along z: Li filled, vacancies open, Li pairs closer than MIN_LI_LI in red."""
    fig = Figure(figsize=STRUCTURE_SIZE)
    fig.subplots_adjust(left=0.12, right=0.56, bottom=0.2, top=0.86)
    plot_structure(pool, fig.add_subplot(), index=query.index, short=MIN_LI_LI, title=query.id)
    return fig, img(fig, f"Candidate {query.id} seen along z: Li filled, vacancies open, pairs of Li "
                         f"closer than {MIN_LI_LI:g} Å joined in red.")


def best_picture(campaign: Campaign) -> tuple[Figure, str]:
    """Best energy found against the number of labels, with the pool's minimum where it is known."""
    energies = campaign.pool.energies
    fig = Figure(figsize=PLOT_SIZE)
    fig.subplots_adjust(left=0.22, right=0.96, bottom=0.19, top=0.8)
    reference_min = float(np.nanmin(energies)) if np.isfinite(energies).any() else None
    plot_best_so_far(campaign.best_so_far(), reference_min=reference_min, ax=fig.add_subplot())
    return fig, img(fig, "Best energy found against the number of labels: "
                    + fig.axes[0].get_title().replace("\n", "; "))


def parity_picture(campaign: Campaign) -> tuple[Figure, str]:
    """The surrogate's μ against the reference energy (or, without one, against the labels)."""
    energies = campaign.pool.energies
    fig = Figure(figsize=PLOT_SIZE)
    fig.subplots_adjust(left=0.1, right=0.96, bottom=0.3, top=0.88)
    if np.isfinite(energies).any():
        table = parity_table(campaign)
        plot_parity(table["reference"], table["predicted"], ax=fig.add_subplot(),
                    labelled=table["labelled"], xlabel="reference (eV/atom)",
                    ylabel="surrogate μ (eV/atom)")
    else:
        labels = campaign.labelled
        mu, _ = campaign.predict()
        plot_parity(labels["energy"], mu[labels["index"].to_numpy(dtype=int)], ax=fig.add_subplot(),
                    xlabel="label (eV/atom)", ylabel="surrogate μ (eV/atom)")
    return fig, img(fig, "Surrogate prediction against reference energy: " + fig.axes[0].get_title())
