"""The closed-form vertical attraction of a right rectangular prism (scalar SI kernel).

Conventions (SPEC section 1): coordinates in metres with z the elevation, positive up; the
returned ``gz`` is the vertical component of the attraction, **positive downward** (a positive
density contrast below the station gives a positive value), in m/s^2 per unit density contrast
times G (see :func:`prism_gz`). This module works in SI units and knows nothing of mGal: the one
conversion to mGal lives in ``gravuq.forward._operator``.

Notes
-----
For a prism with corners ``x1 < x2``, ``y1 < y2``, ``z1 < z2`` and a station at ``p``, write
``X = x - x_p``, ``Y = y - y_p``, ``Z = z - z_p`` and ``R = sqrt(X^2 + Y^2 + Z^2)`` at each corner.
Then (Nagy et al. 2000, 2002)

    gz = G rho [[[ X ln(Y + R) + Y ln(X + R) - Z arctan(X Y / (Z R)) ]]]

where ``[[[ f ]]]`` is the alternating sum over the eight corners (upper bound minus lower bound
along each axis). The terms are evaluated singularity-safe as Fukushima (2020) and Harmonica do:
``X ln(Y + R)`` is 0 where ``Y + R = 0`` (which needs ``X = 0``: its limit), and for ``Y < 0`` the argument is rationalised
to ``(X^2 + Z^2) / (R - Y)`` to avoid cancellation; ``Z arctan(...)`` is 0 where ``Z = 0``. Each
``where`` also masks its input (the "double where"), so values *and* gradients stay finite for
stations on a face, edge or vertex, or inside a prism. The corner function takes the array module
``xp`` (``jax.numpy`` by default, or ``numpy``): one formula for the JAX operators and the NumPy
exact products of ``_exact``.

References: Nagy, Papp & Benedek (2000), J. Geodesy 74, 552-560; (2002) J. Geodesy 76, 475;
Fukushima (2020), Geophys. J. Int., doi:10.1093/gji/ggaa240.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..constants import GRAVITATIONAL_CONSTANT
from ._kernel import array_module

if TYPE_CHECKING:  # jaxtyping's Array imports JAX; the annotations are never evaluated
    from jaxtyping import Array, Float


def _x_log_y_plus_r(x, y, z, r, xp):
    """``x ln(y + r)``, with its limit 0 where the logarithm's argument vanishes (then x = 0 too)
    and no cancellation for ``y < 0``.

    Only the argument 0 is masked, not every ``x = 0``: there the value is 0 but the derivative
    with respect to ``x`` is ``ln(y + r)``, which masking ``x = 0`` would lose.
    """
    # For y < 0, y + r = (x^2 + z^2) / (r - y): the same number without subtracting near-equals.
    rationalised = (x * x + z * z) / xp.where(y < 0, r - y, 1.0)
    argument = xp.where(y < 0, rationalised, y + r)
    singular = argument == 0
    return xp.where(singular, 0.0, x * xp.log(xp.where(singular, 1.0, argument)))


def _z_arctan(x, y, z, r, xp):
    """``z arctan(x y / (z r))``, with its limit 0 at ``z = 0`` (or ``r = 0``)."""
    degenerate = (z == 0) | (r == 0)
    safe_denominator = xp.where(degenerate, 1.0, z * r)
    return xp.where(degenerate, 0.0, z * xp.arctan(x * y / safe_denominator))


def node_potential_gz(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."], xp=None
) -> Float[Array, "..."]:
    """The corner function whose alternating 8-corner sum gives ``gz / (G rho)``.

    Parameters
    ----------
    x, y, z
        Offsets from the station to a prism corner (corner minus station), metres, z up.
        Broadcast against each other.
    xp
        The array module, ``jax.numpy`` (default) or ``numpy``; float64 inputs for either.

    Returns
    -------
    ``X ln(Y + R) + Y ln(X + R) - Z arctan(X Y / (Z R))`` in metres; the alternating sum over a
    prism's corners (upper minus lower along each axis) is ``gz / (G rho)``, gz positive down.
    """
    # The square root of a sum with zero is safe for the value, but its gradient at 0 is not:
    # mask the point where station and corner coincide.
    xp = array_module(xp)
    squared = x * x + y * y + z * z
    at_corner = squared == 0
    r = xp.where(at_corner, 0.0, xp.sqrt(xp.where(at_corner, 1.0, squared)))
    return _x_log_y_plus_r(x, y, z, r, xp) + _x_log_y_plus_r(y, x, z, r, xp) - _z_arctan(x, y, z, r, xp)


def prism_gz(
    station: Float[Array, "3"], prism: Float[Array, "6"], density: float | Float[Array, ""] = 1.0
) -> Float[Array, ""]:
    """Vertical attraction of one prism at one station, SI units, positive downward.

    Parameters
    ----------
    station
        ``(x, y, z)`` in metres, z elevation positive up.
    prism
        ``(west, east, south, north, bottom, top)`` in metres.
    density
        Density contrast in kg/m^3.

    Returns
    -------
    gz in m/s^2, positive downward: positive for a positive contrast below the station.

    Warnings
    --------
    Positive downward is Harmonica's ``g_z`` convention; SimPEG's ``gz`` has the opposite sign.
    """
    west, east, south, north, bottom, top = (prism[i] for i in range(6))
    total = 0.0
    for xc, sx in ((east, 1.0), (west, -1.0)):
        for yc, sy in ((north, 1.0), (south, -1.0)):
            for zc, sz in ((top, 1.0), (bottom, -1.0)):
                total = total + sx * sy * sz * node_potential_gz(
                    xc - station[0], yc - station[1], zc - station[2])
    return GRAVITATIONAL_CONSTANT * density * total
