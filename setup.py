"""The packages of the wheel: every package under code/, the data and the notebooks.

Everything else about the build is in pyproject.toml, which maps almat.data to data/ and
almat.lesson to notebooks/.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages("code"), "almat.data", "almat.lesson"])
