"""Fixtures every test module shares, and the float64 switch.

``import gravuq`` turns on JAX's 64-bit mode before any test module makes an array (the prism
kernel is evaluated in float64). ``case`` is the tiny synthetic case of :mod:`helpers`, written
once per test module into its own temporary folder.
"""

from __future__ import annotations

import pytest

import gravuq  # noqa: F401  (64-bit mode before any array is made)
from helpers import Case


@pytest.fixture(scope="module")
def case(tmp_path_factory, request) -> Case:
    return Case(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
