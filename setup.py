"""The packages of the wheel: every package under code/, and almat.lesson, the notebooks.

Everything else about the build is in pyproject.toml, which maps almat.lesson to notebooks/.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages("code"), "almat.lesson"])
