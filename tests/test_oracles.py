"""Oracles: the table oracle reads and refuses as documented; CHGNet agrees with CHGNet itself."""

import numpy as np
import pandas as pd
import pytest

from almat.enumeration import enumerate_table
from almat.oracles import CHGNetOracle, Label, OracleRefusal, TableOracle
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
    assert answer.value == pytest.approx(-4.40 + 3 * 0.30 / 47, abs=1e-12)
    assert answer.source == "table" and not answer.skipped and answer.reason == ""
    assert oracle.name == "table"


def test_table_oracle_refuses_a_missing_energy_and_names_the_candidate(pool):
    with pytest.raises(OracleRefusal) as err:
        TableOracle().label(pool, 17)
    assert pool.ids[17] in err.value.reason
    assert str(err.value) == err.value.reason


def test_table_oracle_takes_an_array_a_series_or_a_column(pool):
    values = np.arange(N) * -0.01
    assert TableOracle(values).label(pool, 4).value == pytest.approx(-0.04)
    series = pd.Series({pool.ids[7]: -3.5, pool.ids[8]: np.inf})
    assert TableOracle(series, name="dft").label(pool, 7) == Label(-3.5, "dft")
    with pytest.raises(OracleRefusal, match=pool.ids[9]):
        TableOracle(series).label(pool, 9)
    with pytest.raises(OracleRefusal, match="finite"):
        TableOracle(series).label(pool, 8)
    assert TableOracle("min_li_li").label(pool, 0).value == pool.reference["min_li_li"].iloc[0]


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
    assert answer.value == pytest.approx(expected, abs=1e-5)
    assert answer.source.startswith("CHGNet") and not answer.skipped
    assert -6.0 < answer.value < -3.0  # Li6PS5Cl is near -4.3 eV/atom
