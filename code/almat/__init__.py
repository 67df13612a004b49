"""almat: active learning for materials, the code behind the lesson.

The modules follow the lesson's pipeline, in the order of :data:`PIPELINE`
(from the structures through enumeration, scoring, features, pools,
surrogates, oracles and campaigns to the plots and the widget); each imports
only the ones before it.

Every name of ``__all__`` is importable from ``almat`` directly; a module is
only imported when one of its names is first used, so ``import almat`` stays
quick. The imports under ``TYPE_CHECKING`` below are the one list of these
names: type checkers and editors read them, and ``almat`` reads them at import
to know where each name lives.
"""

from __future__ import annotations

import ast
import difflib
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: The package's modules (and subpackages) in pipeline order: each imports only earlier ones.
PIPELINE = ("errors", "files", "journal", "structures", "orderings", "enumeration", "scoring",
            "relaxation", "parallel", "clusters", "features", "pool", "pool_build", "surrogates",
            "acquisition", "screening", "oracles", "labels", "batch_book", "ledger", "batches",
            "campaign", "dft", "evaluation", "plots", "chemiscope_widgets", "views", "widget", "notebooks", "cli")

if TYPE_CHECKING:  # the exports, in pipeline order; ``X as X`` marks each as re-exported
    from almat.errors import AlmatError as AlmatError
    from almat.structures import OccupancyError as OccupancyError
    from almat.structures import StructureFileError as StructureFileError
    from almat.structures import load_parent as load_parent
    from almat.structures import primitive_cell as primitive_cell
    from almat.structures import read_structure as read_structure
    from almat.structures import set_occupancy as set_occupancy
    from almat.orderings import Orderings as Orderings
    from almat.enumeration import EnumerationTooLargeError as EnumerationTooLargeError
    from almat.enumeration import count_orderings as count_orderings
    from almat.enumeration import enumerate_orderings as enumerate_orderings
    from almat.enumeration import enumerate_table as enumerate_table
    from almat.enumeration import ewald_energies as ewald_energies
    from almat.scoring import ScoreCache as ScoreCache
    from almat.scoring import load_chgnet as load_chgnet
    from almat.scoring import score_structures as score_structures
    from almat.relaxation import RelaxSettings as RelaxSettings
    from almat.relaxation import Relaxation as Relaxation
    from almat.relaxation import relax_structure as relax_structure
    from almat.parallel import relax_many as relax_many
    from almat.features import ClusterVectorFeaturizer as ClusterVectorFeaturizer
    from almat.features import FidelityFeaturizer as FidelityFeaturizer
    from almat.features import LiLiDistanceFeaturizer as LiLiDistanceFeaturizer
    from almat.features import as_featurizer as as_featurizer
    from almat.pool import Pool as Pool
    from almat.pool import PoolError as PoolError
    from almat.pool import load_pool as load_pool
    from almat.pool_build import build_pool as build_pool
    from almat.pool_build import make_pool as make_pool
    from almat.surrogates import BayesianClusterExpansion as BayesianClusterExpansion
    from almat.surrogates import GaussianProcessSurrogate as GaussianProcessSurrogate
    from almat.acquisition import STRATEGIES as STRATEGIES
    from almat.acquisition import Strategy as Strategy
    from almat.acquisition import as_strategy as as_strategy
    from almat.acquisition import get_strategy as get_strategy
    from almat.screening import ScreeningError as ScreeningError
    from almat.screening import screen as screen
    from almat.oracles import CHGNetOracle as CHGNetOracle
    from almat.oracles import Label as Label
    from almat.oracles import OracleRefusal as OracleRefusal
    from almat.oracles import RelaxedCHGNetOracle as RelaxedCHGNetOracle
    from almat.oracles import TableOracle as TableOracle
    from almat.oracles import as_oracle as as_oracle
    from almat.labels import LabelError as LabelError
    from almat.labels import LabelsFileError as LabelsFileError
    from almat.labels import LabelsFileWriteError as LabelsFileWriteError
    from almat.labels import labels_file as labels_file
    from almat.ledger import CampaignError as CampaignError
    from almat.ledger import Ledger as Ledger
    from almat.campaign import Campaign as Campaign
    from almat.dft import DFTExportError as DFTExportError
    from almat.dft import DFTOracle as DFTOracle
    from almat.dft import best_candidates as best_candidates
    from almat.dft import export_dft as export_dft
    from almat.evaluation import CHEAP_BASELINES as CHEAP_BASELINES
    from almat.evaluation import Goals as Goals
    from almat.evaluation import baseline_curves as baseline_curves
    from almat.evaluation import compare_strategies as compare_strategies
    from almat.evaluation import discovery_metrics as discovery_metrics
    from almat.evaluation import labels_to_minimum as labels_to_minimum
    from almat.evaluation import mae as mae
    from almat.evaluation import parity as parity
    from almat.evaluation import random_expectation as random_expectation
    from almat.evaluation import regret as regret
    from almat.evaluation import summarize as summarize
    from almat.views import CandidateView as CandidateView
    from almat.views import show_ordering as show_ordering
    from almat.views import show_pool as show_pool
    from almat.views import show_relaxation as show_relaxation
    from almat.widget import LabelingApp as LabelingApp


def _exported_names(source: str) -> dict[str, str]:
    """Each name the ``if TYPE_CHECKING:`` block of ``source`` imports, and its module, in order."""
    block = next(node for node in ast.parse(source).body
                 if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING")
    return {alias.asname or alias.name: node.module for node in block.body
            if isinstance(node, ast.ImportFrom) for alias in node.names}


_WHERE = _exported_names(Path(__file__).read_text(encoding="utf-8"))

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    close = difflib.get_close_matches(name, __all__, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise AttributeError(f"module 'almat' has no attribute {name!r}{hint}", name=name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
