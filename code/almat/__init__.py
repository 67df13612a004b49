"""almat: active learning for materials, the code behind the lesson.

The modules follow the lesson's pipeline::

    structures -> orderings -> enumeration -> scoring -> relaxation -> parallel -> clusters
        -> features -> pool -> pool_build
        -> surrogates -> acquisition -> screening -> oracles -> labels -> ledger -> campaign -> dft
        -> evaluation
        -> plots -> views -> widget

Everything below is importable from ``almat`` directly; a module is only
imported when one of its names is first used, so ``import almat`` stays quick.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "errors": ["AlmatError"],
    "structures": ["OccupancyError", "StructureFileError", "load_parent", "primitive_cell",
                   "read_structure", "set_occupancy"],
    "orderings": ["Orderings"],
    "enumeration": ["EnumerationTooLargeError", "count_orderings", "enumerate_orderings",
                    "enumerate_table", "ewald_energies"],
    "scoring": ["ScoreCache", "load_chgnet", "score_structures"],
    "relaxation": ["RelaxSettings", "Relaxation", "relax_structure"],
    "parallel": ["relax_many"],
    "features": ["ClusterVectorFeaturizer", "FidelityFeaturizer", "LiLiDistanceFeaturizer",
                 "as_featurizer"],
    "pool": ["Pool", "PoolError", "load_pool"],
    "pool_build": ["build_pool", "make_pool"],
    "surrogates": ["BayesianClusterExpansion", "GaussianProcessSurrogate"],
    "acquisition": ["STRATEGIES", "Strategy", "as_strategy", "get_strategy"],
    "screening": ["ScreeningError", "screen"],
    "oracles": ["CHGNetOracle", "Label", "OracleRefusal", "RelaxedCHGNetOracle",
                "TableOracle", "as_oracle"],
    "labels": ["LabelError", "LabelsFileError", "LabelsFileWriteError", "labels_file"],
    "ledger": ["CampaignError", "Ledger"],
    "campaign": ["Campaign"],
    "dft": ["DFTExportError", "DFTOracle", "best_candidates", "export_dft"],
    "evaluation": ["CHEAP_BASELINES", "Goals", "baseline_curves", "compare_strategies",
                   "discovery_metrics", "labels_to_minimum", "mae", "parity", "random_expectation",
                   "regret", "summarize"],
    "views": ["CandidateView", "show_ordering", "show_pool", "show_relaxation"],
    "widget": ["LabelingApp"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f"almat.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'almat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
