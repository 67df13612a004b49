"""Oracles: the table oracle reads and refuses as documented; CHGNet agrees with CHGNet itself."""

import numpy as np
import pandas as pd
import pytest

from almat.enumeration import enumerate_table
from almat.oracles import (DECLARED, CHGNetOracle, Label, OracleError, OracleRefusal, OwnOracle,
                           RelaxedCHGNetOracle, TableOracle, as_oracle)
from almat.pool_build import make_pool

N = 48  # orderings of Li6PS5Cl at cell size 1 (api.md, icet 4.0)


@pytest.fixture(scope="module")
def table(half):
    return enumerate_table(half, max_cell_size=1)


@pytest.fixture(scope="module")
def pool(table):
    energies = np.linspace(-4.40, -4.10, N)
    energies[[5, 17]] = np.nan
    return make_pool(table, energies, name="oracle-test")


def test_table_oracle_reads_the_pool_reference(pool):
    oracle = TableOracle()
    answer = oracle.label(pool, 3)
    assert answer.energy == pytest.approx(-4.40 + 3 * 0.30 / 47, abs=1e-12)
    assert answer.source == "table" and not answer.skipped and answer.reason == ""
    assert oracle.name == "table"


def test_table_oracle_refuses_a_missing_energy_and_names_the_candidate(pool):
    with pytest.raises(OracleRefusal) as err:
        TableOracle().label(pool, 17)
    assert pool.ids[17] in err.value.reason
    assert str(err.value) == err.value.reason


def test_table_oracle_takes_an_array_a_series_or_a_column(pool):
    values = np.arange(N) * -0.01
    assert TableOracle(values).label(pool, 4).energy == pytest.approx(-0.04)
    series = pd.Series({pool.ids[7]: -3.5, pool.ids[8]: np.inf})
    assert TableOracle(series, name="dft").label(pool, 7) == Label(-3.5, "dft")
    with pytest.raises(OracleRefusal, match=pool.ids[9]):
        TableOracle(series).label(pool, 9)
    with pytest.raises(OracleRefusal, match="finite"):
        TableOracle(series).label(pool, 8)
    assert TableOracle("min_li_li").label(pool, 0).energy == pool.reference["min_li_li"].iloc[0]


def test_table_oracle_explains_a_table_of_the_wrong_length_or_column(pool):
    with pytest.raises(ValueError, match="one value per candidate"):
        TableOracle([-4.0, -4.1]).label(pool, 0)
    with pytest.raises(ValueError, match="no reference column 'dft'"):
        TableOracle("dft").label(pool, 0)


@pytest.mark.slow
def test_chgnet_oracle_gives_chgnets_own_energy_per_atom(pool):
    from chgnet.model import CHGNet

    model = CHGNet.load(verbose=False)
    structure = pool.structure(11)
    expected = float(model.predict_structure(structure)["e"])  # CHGNet's energy per atom
    answer = CHGNetOracle(model=model, cache=False).label(pool, 11)
    assert answer.energy == pytest.approx(expected, abs=1e-5)
    assert answer.source.startswith("CHGNet") and not answer.skipped
    assert -6.0 < answer.energy < -3.0  # Li6PS5Cl is near -4.3 eV/atom


# ---------------------------------------------------------------- what an oracle declares
def declared(oracle):
    return {name: getattr(oracle, name) for name in DECLARED}


def test_every_oracle_of_almat_declares_what_it_can_do():
    from almat.dft import DFTOracle
    from almat.relaxation import RelaxSettings

    assert declared(TableOracle()) == {"name": "table", "action": "Look up in table", "max_steps": None,
                                       "target_fmax": None, "parallel": True}
    assert declared(CHGNetOracle()) == {"name": "chgnet", "action": "Compute with CHGNet",
                                        "max_steps": None, "target_fmax": None, "parallel": True}
    relaxed = RelaxedCHGNetOracle(RelaxSettings(fmax=0.1, steps=300), cache=None)
    assert declared(relaxed) == {"name": "chgnet-relaxed", "action": "Relax with CHGNet", "max_steps": 300,
                                 "target_fmax": 0.1, "parallel": True}
    dft = declared(DFTOracle())
    assert dft["parallel"] is False and dft["max_steps"] is None and dft["action"]
    for oracle in (TableOracle(), CHGNetOracle(), relaxed, DFTOracle()):
        assert as_oracle(oracle) is oracle  # nothing to fill in


def test_your_own_oracle_gets_the_defaults_once():
    class Mine:
        name = "my-dft"

        def __init__(self):
            self.asked = []

        def label(self, pool, index):
            self.asked.append(index)
            return -4.25  # a plain number is a label too

    mine = Mine()
    adapted = as_oracle(mine)
    assert isinstance(adapted, OwnOracle) and adapted.oracle is mine
    assert declared(adapted) == {"name": "my-dft", "action": "Compute with my-dft", "max_steps": None,
                                 "target_fmax": None, "parallel": False}
    answer = adapted.label(None, 7, on_step=lambda step, fmax: None)  # on_step is not passed on
    assert answer == Label(-4.25, "my-dft") and mine.asked == [7]


def test_an_own_oracle_that_declares_steps_gets_on_step():
    class Stepper:
        name, max_steps, target_fmax = "stepper", 5, 0.05

        def label(self, pool, index, on_step=None):
            on_step(1, 0.2)
            return Label(-4.2, "stepper")

    seen = []
    adapted = as_oracle(Stepper())
    assert adapted.label(None, 0, on_step=lambda *a: seen.append(a)) == Label(-4.2, "stepper")
    assert seen == [(1, 0.2)] and adapted.max_steps == 5 and adapted.parallel is False


@pytest.mark.parametrize("thing, message", [
    (object(), "is not an oracle: give an object with a name"),
    (type("NoLabel", (), {"name": "x"})(), "is not an oracle"),
    (type("NoName", (), {"label": lambda self, pool, index: None})(), "is not an oracle"),
    (type("Z", (), {"name": "z", "max_steps": 0, "label": lambda self, p, i, on_step=None: None})(),
     r"^Oracle 'z' cannot be used: its max_steps must be a positive whole number or None; got 0\.$"),
    (type("F", (), {"name": "f", "target_fmax": float("nan"), "label": lambda self, p, i: None})(),
     "its target_fmax must be a positive force in eV/Å or None; got nan"),
    (type("A", (), {"name": "a", "action": "", "label": lambda self, p, i: None})(),
     "its action must be the button's text"),
    (type("P", (), {"name": "p", "parallel": "yes", "label": lambda self, p, i: None})(),
     "its parallel must be True or False"),
])
def test_a_thing_that_is_no_oracle_is_refused_in_one_line(thing, message):
    with pytest.raises(OracleError, match=message) as refused:
        as_oracle(thing)
    assert "\n" not in str(refused.value)
