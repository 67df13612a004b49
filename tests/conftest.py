"""Shared fixtures: the parent structure and its half-occupied version, built once per session."""

import pytest

import almat


@pytest.fixture(scope="session")
def parent():
    return almat.load_parent()


@pytest.fixture(scope="session")
def half(parent):
    return almat.set_occupancy(parent, 0.5)
