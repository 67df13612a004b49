"""`almat check-setup` tells a learner on an unsupported Python or computer what to do, in one message."""

import pytest

from almat.cli import platform_problem


@pytest.mark.parametrize("version", [(3, 11), (3, 12)])
@pytest.mark.parametrize("system,machine", [("Linux", "x86_64"), ("Windows", "AMD64"), ("Darwin", "arm64")])
def test_supported_laptops_pass(version, system, machine):
    assert platform_problem(version, system, machine) is None


@pytest.mark.parametrize("version", [(3, 13), (3, 14)])
def test_a_newer_python_is_told_to_install_312(version):
    message = platform_problem(version, "Windows", "AMD64")
    assert "\n" not in message
    assert f"Python {version[0]}.{version[1]} is too new" in message
    assert "Install Python 3.12" in message and "setup.md" in message and "workshop server" in message


def test_an_older_python_is_told_to_install_312():
    message = platform_problem((3, 10), "Linux", "x86_64")
    assert "Python 3.10 is too old" in message and "Install Python 3.12" in message


def test_an_intel_mac_is_sent_to_the_server():
    message = platform_problem((3, 12), "Darwin", "x86_64")
    assert "\n" not in message
    assert "Intel" in message and "workshop server" in message and "arm64 Python" in message

