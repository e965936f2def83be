"""The prior every probabilistic method shares, built from its settings in one place.

Conventions (SPEC section 1): density contrast in kg/m^3 on the mesh cells; lengths in metres;
gz and std in mGal.

``scale = "fixed"`` is the Gaussian prior of ``std`` (kg/m^3), ``correlation_length`` (m) and
Li-Oldenburg ``depth_exponent``; ``"hierarchical"`` learns per-cell scales from the data on top
of it (``_hierarchical.py``), which needs the dense float64 sensitivity.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._hierarchical import hierarchical_prior
from .prior import GaussianPrior


@dataclass(frozen=True)
class PriorSettings:
    """``std`` kg/m^3, ``correlation_length`` m, ``depth_exponent`` (0: none), ``scale``
    (``"fixed"`` or ``"hierarchical"``) and the hierarchical ``smoothing`` in cells."""

    std: float = 50.0
    correlation_length: float = 0.0
    depth_exponent: float = 0.0
    scale: str = "fixed"
    smoothing: float = 1.0


def build_prior(settings: PriorSettings, mesh, data, std, dense) -> tuple[GaussianPrior, dict]:
    """The prior of ``settings`` on ``mesh`` and its description for ``metrics.json``.

    ``data``, ``std`` (mGal) and ``dense()`` (the float64 sensitivity, budget-checked by the
    caller) are used only to learn hierarchical scales.
    """
    if settings.scale == "fixed":
        return GaussianPrior.build(mesh, settings.std, settings.correlation_length, settings.depth_exponent), \
            {"prior_scale": "fixed"}
    prior, report = hierarchical_prior(dense(), data, std, mesh, settings.std, settings.correlation_length,
                                       settings.depth_exponent, settings.smoothing)
    return prior, report.as_dict()


__all__ = ["PriorSettings", "build_prior"]
