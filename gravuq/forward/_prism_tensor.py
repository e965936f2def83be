"""The closed-form gravity gradient tensor of a right rectangular prism (scalar SI kernels).

Conventions (SPEC section 1): coordinates in metres, x easting, y northing, z elevation positive
up. The six components ``gxx, gxy, gxz, gyy, gyz, gzz`` (:data:`COMPONENTS`) are returned by
:func:`prism_tensor` in Eotvos (1 E = 1e-9 s^-2) with exactly the signs of Harmonica 0.7's
``prism_gravity(..., field="g_ee" | "g_en" | "g_ez" | "g_nn" | "g_nz" | "g_zz")``
(:data:`HARMONICA_FIELDS`). With ``V = G int rho / |q - p| dq`` the (positive) potential at the
station ``p``, and ``gz = -dV/dz`` the attraction positive downward of ``_prism.py``:

    gxx = d2V/dx2      gxy = d2V/dx dy     gxz = -d2V/dx dz = d(gz)/dx
    gyy = d2V/dy2      gyz = -d2V/dy dz = d(gz)/dy
    gzz = d2V/dz2 = -d(gz)/dz

so ``gzz > 0`` above a positive mass, the "z" of ``gxz`` and ``gyz`` is downward (as Harmonica's
``g_ez``, ``g_nz``), and ``gxx + gyy + gzz = -4 pi G rho`` (Poisson), 0 outside the mass.

Notes
-----
For a prism with corners ``x1 < x2``, ``y1 < y2``, ``z1 < z2`` and a station at ``p``, write
``X = x - x_p``, ``Y = y - y_p``, ``Z = z - z_p`` (corner minus station) and
``R = sqrt(X^2 + Y^2 + Z^2)`` at each corner. With ``[[[ f ]]]`` the alternating sum over the
eight corners (upper bound minus lower bound along each axis, the same sum as for gz),
(Nagy et al. 2000, 2002; Fukushima 2020; Choclo's ``kernel_ee`` ... ``kernel_nu``)

    gxx = -G rho [[[ arctan(Y Z / (X R)) ]]]        gxy =  G rho [[[ ln(Z + R) ]]]
    gyy = -G rho [[[ arctan(Z X / (Y R)) ]]]        gxz = -G rho [[[ ln(Y + R) ]]]
    gzz = -G rho [[[ arctan(X Y / (Z R)) ]]]        gyz = -G rho [[[ ln(X + R) ]]]

in s^-2 (the brackets are dimensionless). The ``arctan`` is the principal value; the minus signs
of ``gxz`` and ``gyz`` are the flip from z up to z down. A station derivative is minus an offset
derivative, so the corner functions of ``gxz``, ``gyz`` and ``gzz`` are ``-d/dX``, ``-d/dY`` and
``+d/dZ`` of the gz corner function ``X ln(Y + R) + Y ln(X + R) - Z arctan(X Y / (Z R))``.

Singularity-safe evaluation, term by term (each ``where`` also masks its input, the "double
where", so values *and* gradients are finite everywhere). The corner functions take the array
module ``xp`` (``jax.numpy`` by default, or ``numpy``): one formula for the JAX operators and the
NumPy exact products of ``_exact``; :func:`prism_tensor` and :func:`cell_tensor` are JAX only.

- ``arctan(b c / (a r))`` is ``arctan2(s b c, s a r)`` with ``s = -1`` for ``a r < 0`` else 1:
  well conditioned for every ratio, the limit ``a -> 0+`` (``+-pi/2``) at ``a = 0``, and 0 where
  ``b c = a r = 0`` (its limit along ``a -> 0+`` there too).
- ``ln(a + r)`` is rationalised for ``a < 0`` to ``ln((b^2 + c^2) / (r - a))`` (no cancellation);
  where moreover ``b = c = 0`` the divergent ``ln(b^2 + c^2)`` is dropped, leaving ``-ln(-2a)``
  (Choclo's ``safe_log``): every corner on that line drops the same term, so the corner sum is
  exact wherever it is finite (stations on the prolongation of an edge). ``r = 0`` gives 0.

Faces, edges and vertices (where the station is on the prism's surface):

- A diagonal component is discontinuous across the faces normal to its axis (it jumps by
  ``4 pi G rho``). With the ``a -> 0+`` rule the corner sum is the limit from the side of
  smaller coordinate (e.g. ``gxx`` on the west face from the west, on the east face from
  inside); :func:`prism_tensor` adds ``4 pi G rho`` on the open east, north and top faces, so
  that, as Harmonica, every face gives the limit from **outside** (where the trace is 0). Faces
  are found by exact comparison, as Harmonica does: a station within rounding of a face gets
  the value of the side it is on.
- Harmonica returns NaN where a component is genuinely undefined: every component on a vertex,
  a diagonal one on the edges perpendicular to its axis (bounded there but dependent on the
  direction of approach: ``gxx`` on edges parallel to y or z), an off-diagonal one on the edges
  parallel to the remaining axis (log-divergent: ``gxy`` on edges parallel to z). Here they are
  finite: a diagonal component gives its one-sided limit along its own axis from smaller
  coordinate (no face correction added), an off-diagonal one the finite part of the divergent
  sum (the ``ln(b^2 + c^2)`` terms dropped as above). These are conventions, not limits of the
  field; everywhere else the values agree with Harmonica to float64 rounding.

References: Nagy, Papp & Benedek (2000), J. Geodesy 74, 552-560; (2002) J. Geodesy 76, 475;
Fukushima (2020), Geophys. J. Int., doi:10.1093/gji/ggaa240; Choclo 0.3
(Fatiando a Terra), the kernels behind Harmonica.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..constants import GRAVITATIONAL_CONSTANT, SI_TO_EOTVOS
from ._kernel import array_module, corner_sum

if TYPE_CHECKING:  # jaxtyping's Array imports JAX; the annotations are never evaluated
    from jaxtyping import Array, Bool, Float

#: The six independent tensor components, in the order every function here returns them.
COMPONENTS = ("gxx", "gxy", "gxz", "gyy", "gyz", "gzz")

#: Harmonica's ``prism_gravity`` field name of each component (same sign, same unit).
HARMONICA_FIELDS = {"gxx": "g_ee", "gxy": "g_en", "gxz": "g_ez", "gyy": "g_nn", "gyz": "g_nz",
                    "gzz": "g_zz"}

#: Eotvos per kg/m^3 per unit of (dimensionless) corner sum: the one SI -> Eotvos step.
TENSOR_SENSITIVITY_SCALE = GRAVITATIONAL_CONSTANT * SI_TO_EOTVOS

#: The jump of a diagonal component across a face normal to its axis, per G rho (outside minus
#: inside; Poisson's equation).
_FACE_JUMP = 4.0 * math.pi

#: Positions of the diagonal components in :data:`COMPONENTS`.
_DIAGONAL = (COMPONENTS.index("gxx"), COMPONENTS.index("gyy"), COMPONENTS.index("gzz"))


# -- corner terms -----------------------------------------------------------------------------
def _radius(x, y, z, xp):
    """``sqrt(x^2 + y^2 + z^2)``, with the point ``r = 0`` masked so its gradient stays finite."""
    squared = x * x + y * y + z * z
    at_corner = squared == 0
    return xp.where(at_corner, 0.0, xp.sqrt(xp.where(at_corner, 1.0, squared)))


def _arctan_ratio(a, b, c, r, xp):
    """``arctan(b c / (a r))`` (principal value), its limit ``a -> 0+`` where ``a = 0``.

    That limit is ``+-pi/2`` for ``b c != 0`` and 0 where ``b c = 0`` too. Written as ``arctan2``
    with the denominator's sign moved to the numerator: accurate for every ratio, and its
    derivatives at ``a = 0`` are the one-sided ones from ``a > 0``.
    """
    numerator = b * c
    denominator = a * r
    sign = xp.where(denominator < 0, -1.0, 1.0)
    # With the denominator made >= 0, arctan2(y, x) is arctan(y / x) for x > 0 and
    # sign(y) pi / 2 at x = 0 (0 where y = 0 too): the plain arctan is cheaper on CPUs.
    positive = sign * denominator
    on_axis = positive == 0
    ratio = sign * numerator / xp.where(on_axis, 1.0, positive)
    return xp.where(on_axis, 0.5 * xp.pi * xp.sign(numerator * sign), xp.arctan(ratio))


def _log_a_plus_r(a, b, c, r, xp):
    """``ln(a + r)``, rationalised for ``a < 0``; 0 at ``r = 0``.

    For ``a < 0``, ``a + r = (b^2 + c^2) / (r - a)``; where also ``b = c = 0`` the divergent
    ``ln(b^2 + c^2)`` is dropped (``-ln(-2 a)``, Choclo's ``safe_log``), which the corner sum
    cancels wherever it is finite.
    """
    negative = a < 0
    transverse = b * b + c * c
    on_axis = transverse == 0
    rationalised = xp.where(on_axis, 1.0, transverse) / xp.where(negative, r - a, 1.0)
    argument = xp.where(negative, rationalised, a + r)
    at_corner = r == 0
    return xp.where(at_corner, 0.0, xp.log(xp.where(at_corner, 1.0, argument)))


# -- corner functions -------------------------------------------------------------------------
def node_potential_gxx(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."], xp=None
) -> Float[Array, "..."]:
    """The corner function whose alternating 8-corner sum gives ``gxx / (G rho)``.

    Parameters
    ----------
    x, y, z
        Offsets from the station to a prism corner (corner minus station), metres; x easting,
        y northing, z up. Broadcast against each other.
    xp
        The array module, ``jax.numpy`` (default) or ``numpy``; float64 inputs for either.

    Returns
    -------
    ``-arctan(Y Z / (X R))``, dimensionless; its alternating sum over a prism's corners (upper
    minus lower along each axis) times ``G rho`` is ``gxx = d2V/dx2`` in s^-2 (Harmonica's
    ``g_ee``), the limit from smaller x on faces normal to x (see the module Notes).
    """
    xp = array_module(xp)
    return -_arctan_ratio(x, y, z, _radius(x, y, z, xp), xp)


def node_potential_gyy(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."], xp=None
) -> Float[Array, "..."]:
    """The corner function whose alternating 8-corner sum gives ``gyy / (G rho)``.

    Offsets ``x, y, z`` (corner minus station) in metres, z up, broadcast; ``xp`` the array module (see
    :func:`node_potential_gxx`). Returns
    ``-arctan(Z X / (Y R))``, dimensionless; times ``G rho``, its corner sum is ``gyy = d2V/dy2``
    in s^-2 (Harmonica's ``g_nn``), the limit from smaller y on faces normal to y.
    """
    xp = array_module(xp)
    return -_arctan_ratio(y, z, x, _radius(x, y, z, xp), xp)


def node_potential_gzz(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."], xp=None
) -> Float[Array, "..."]:
    """The corner function whose alternating 8-corner sum gives ``gzz / (G rho)``.

    Offsets ``x, y, z`` (corner minus station) in metres, z up, broadcast; ``xp`` the array module (see
    :func:`node_potential_gxx`). Returns
    ``-arctan(X Y / (Z R))``, dimensionless; times ``G rho``, its corner sum is
    ``gzz = d2V/dz2 = -d(gz)/dz`` in s^-2 (Harmonica's ``g_zz``: positive above a positive
    mass), the limit from below on horizontal faces.
    """
    xp = array_module(xp)
    return -_arctan_ratio(z, x, y, _radius(x, y, z, xp), xp)


def node_potential_gxy(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."], xp=None
) -> Float[Array, "..."]:
    """The corner function whose alternating 8-corner sum gives ``gxy / (G rho)``.

    Offsets ``x, y, z`` (corner minus station) in metres, z up, broadcast; ``xp`` the array module (see
    :func:`node_potential_gxx`). Returns
    ``ln(Z + R)`` (R in metres; the corner sum is dimensionless); times ``G rho``, its corner sum
    is ``gxy = d2V/dx dy`` in s^-2 (Harmonica's ``g_en``).
    """
    xp = array_module(xp)
    return _log_a_plus_r(z, x, y, _radius(x, y, z, xp), xp)


def node_potential_gxz(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."], xp=None
) -> Float[Array, "..."]:
    """The corner function whose alternating 8-corner sum gives ``gxz / (G rho)``.

    Offsets ``x, y, z`` (corner minus station) in metres, z up, broadcast; ``xp`` the array module (see
    :func:`node_potential_gxx`). Returns
    ``-ln(Y + R)``; times ``G rho``, its corner sum is ``gxz = -d2V/dx dz = d(gz)/dx`` in s^-2,
    z downward (Harmonica's ``g_ez``).
    """
    xp = array_module(xp)
    return -_log_a_plus_r(y, x, z, _radius(x, y, z, xp), xp)


def node_potential_gyz(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."], xp=None
) -> Float[Array, "..."]:
    """The corner function whose alternating 8-corner sum gives ``gyz / (G rho)``.

    Offsets ``x, y, z`` (corner minus station) in metres, z up, broadcast; ``xp`` the array module (see
    :func:`node_potential_gxx`). Returns
    ``-ln(X + R)``; times ``G rho``, its corner sum is ``gyz = -d2V/dy dz = d(gz)/dy`` in s^-2,
    z downward (Harmonica's ``g_nz``).
    """
    xp = array_module(xp)
    return -_log_a_plus_r(x, y, z, _radius(x, y, z, xp), xp)


def node_potential_tensor(
    x: Float[Array, "..."], y: Float[Array, "..."], z: Float[Array, "..."]
) -> Float[Array, "6 ..."]:
    """All six corner functions at once (one radius), stacked on a new leading axis.

    Offsets ``x, y, z`` (corner minus station) in metres, z up, broadcast against each other.
    Returns ``(6, *broadcast shape)`` in the order of :data:`COMPONENTS`, each entry that of
    ``node_potential_gxx`` ... ``node_potential_gzz``: dimensionless, per ``G rho``, s^-2.
    """
    jnp = array_module()
    x, y, z = jnp.broadcast_arrays(x, y, z)
    r = _radius(x, y, z, jnp)
    return jnp.stack([
        -_arctan_ratio(x, y, z, r, jnp),  # gxx
        _log_a_plus_r(z, x, y, r, jnp),  # gxy
        -_log_a_plus_r(y, x, z, r, jnp),  # gxz
        -_arctan_ratio(y, z, x, r, jnp),  # gyy
        -_log_a_plus_r(x, y, z, r, jnp),  # gyz
        -_arctan_ratio(z, x, y, r, jnp),  # gzz
    ])


# -- one prism --------------------------------------------------------------------------------
def _on_open_upper_face(upper, lower_a, upper_a, lower_b, upper_b) -> Bool[Array, "..."]:
    """Whether the station is on the open upper face normal to one axis, from corner offsets.

    ``upper`` is the offset of the upper bound along that axis, ``lower_a`` ... ``upper_b`` those
    of the bounds along the other two (metres, corner minus station). Exact comparisons, as
    Harmonica's ``is_point_on_east_face``: a float difference is 0 (or negative) exactly when
    the coordinates are equal (or in that order), short of subnormal numbers.
    """
    return (upper == 0) & (lower_a < 0) & (upper_a > 0) & (lower_b < 0) & (upper_b > 0)


def prism_tensor(
    station: Float[Array, "3"], prism: Float[Array, "6"], density: float | Float[Array, ""] = 1.0
) -> Float[Array, "6"]:
    """Gravity gradient tensor of one prism at one station, in Eotvos.

    Parameters
    ----------
    station
        ``(x, y, z)`` in metres: x easting, y northing, z elevation positive up.
    prism
        ``(west, east, south, north, bottom, top)`` in metres.
    density
        Density contrast in kg/m^3.

    Returns
    -------
    ``(gxx, gxy, gxz, gyy, gyz, gzz)`` (:data:`COMPONENTS`) in Eotvos (1 E = 1e-9 s^-2), the
    signs of Harmonica's ``g_ee, g_en, g_ez, g_nn, g_nz, g_zz``: ``gxz`` and ``gyz`` with z
    downward, ``gzz = -d(gz)/dz`` positive above a positive mass. On faces a diagonal component
    is the limit from outside, as Harmonica; where Harmonica returns NaN (vertices, some edges)
    the value is finite by the conventions of the module Notes.
    """
    jnp = array_module()
    west, east, south, north, bottom, top = (prism[i] for i in range(6))
    # Offsets of the lower and upper bound along each axis (corner minus station), the 8 corners
    # as their broadcast (one trace of the corner function, not eight).
    x1, x2 = west - station[0], east - station[0]
    y1, y2 = south - station[1], north - station[1]
    z1, z2 = bottom - station[2], top - station[2]
    values = node_potential_tensor(jnp.stack([x1, x2])[:, None, None],
                                   jnp.stack([y1, y2])[None, :, None],
                                   jnp.stack([z1, z2])[None, None, :])  # (6, x, y, z)
    lower_upper = jnp.array([-1.0, 1.0])
    signs = lower_upper[:, None, None] * lower_upper[None, :, None] * lower_upper[None, None, :]
    total = jnp.sum(values * signs, axis=(1, 2, 3))
    # The corner sum is the limit from the side of smaller coordinate: from inside on the east,
    # north and top faces. Adding the jump gives the limit from outside there, as Harmonica.
    faces = jnp.stack([_on_open_upper_face(x2, y1, y2, z1, z2),
                       _on_open_upper_face(y2, z1, z2, x1, x2),
                       _on_open_upper_face(z2, x1, x2, y1, y2)])
    total = total.at[jnp.array(_DIAGONAL)].add(jnp.where(faces, _FACE_JUMP, 0.0))
    return TENSOR_SENSITIVITY_SCALE * density * total


# -- every cell of a tensor mesh, nodes shared ------------------------------------------------
def cell_tensor(
    offsets_x: Float[Array, " nx1"], offsets_y: Float[Array, " ny1"], offsets_z: Float[Array, " nz1"]
) -> Float[Array, "6 nz ny nx"]:
    """The tensor of every cell of a tensor mesh at one station, per unit density, in Eotvos.

    Each corner function is evaluated once per mesh node (8 times fewer than per cell), then the
    alternating corner sum is taken as differences along each axis, as the gz operator does.

    Parameters
    ----------
    offsets_x, offsets_y, offsets_z
        Node coordinates minus the station's, metres, increasing along each axis (x easting,
        y northing, z up); ``nx + 1``, ``ny + 1``, ``nz + 1`` nodes. Use float64.

    Returns
    -------
    ``(6, nz, ny, nx)``: the components (:data:`COMPONENTS`) of each cell in Eotvos per kg/m^3,
    equal to :func:`prism_tensor` of that cell with density 1 (face correction included).
    ``jax.vmap`` over stations for a sensitivity.
    """
    jnp = array_module()
    values = node_potential_tensor(offsets_x[None, None, :], offsets_y[None, :, None],
                                   offsets_z[:, None, None])
    total = corner_sum(values)

    def on_upper(offsets):  # per cell: the station on the upper plane along this axis
        return offsets[1:] == 0

    def between(offsets):  # per cell: the station strictly between the planes along this axis
        return (offsets[:-1] < 0) & (offsets[1:] > 0)

    bx, by, bz = between(offsets_x), between(offsets_y), between(offsets_z)
    faces = jnp.stack([
        bz[:, None, None] & by[None, :, None] & on_upper(offsets_x)[None, None, :],
        bz[:, None, None] & on_upper(offsets_y)[None, :, None] & bx[None, None, :],
        on_upper(offsets_z)[:, None, None] & by[None, :, None] & bx[None, None, :],
    ])
    total = total.at[jnp.array(_DIAGONAL)].add(jnp.where(faces, _FACE_JUMP, 0.0))
    return TENSOR_SENSITIVITY_SCALE * total
