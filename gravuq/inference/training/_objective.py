"""What the members minimise: a data misfit through the forward operator and, for randomised
MAP and SVGD, a Gaussian prior penalty on the departure from an anchor.

Units: gz and its std in mGal (gz positive downward); density contrast in kg/m^3.

A member ``k`` with network output ``u_k`` (at the cells) has the density

    m_k = offset_k + scale * u_k                         (kg/m^3)

and minimises, with ``N`` the number of stations,

    loss_k = |(G m_k - d_k) / sigma|^2 / N  +  |C^(-1/2) (m_k - a_k)|^2 / N

where ``d_k`` is its data (observed, or perturbed for randomised MAP) and ``a_k`` its anchor (a
prior draw; the second term is absent for plain fits). Both terms are sums of squared
*residuals*, linear in ``m_k``: the data residual ``(G m_k - d_k) / sigma`` (stations) and the
prior residual ``C^(-1/2) (m_k - a_k)`` (cells). First-order rules need only the loss; the
Gauss-Newton rule uses the residuals and their linear maps explicitly.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..prior import GaussianPrior


class MemberTargets(eqx.Module):
    """The per-member arrays of an objective (each with a leading member axis): ``data``
    ``(members, stations)`` mGal; ``anchor`` and ``offset`` ``(members, cells)`` kg/m^3 or None."""

    data: Float[Array, "member station"]
    anchor: Float[Array, "member cell"] | None = None
    offset: Float[Array, "member cell"] | None = None


class Objective(eqx.Module):
    """The least-squares objective shared by the members (see the module notes).

    ``operator`` maps kg/m^3 at the cells to mGal; ``coordinates`` are the normalised cell
    centres the networks are evaluated at (float32, ``(cells, 3)``); ``inverse_std`` 1/sigma per
    station (1/mGal); ``prior`` weighs the anchor penalty (None: no penalty); ``scale``
    ``(cells,)`` kg/m^3 per unit of network output or None (networks output kg/m^3);
    ``targets`` the per-member data, anchors and offsets.
    """

    operator: eqx.Module
    coordinates: Float[Array, "cell 3"]
    inverse_std: Float[Array, " station"]
    targets: MemberTargets
    prior: GaussianPrior | None = None
    scale: Float[Array, " cell"] | None = None

    @property
    def n_data(self) -> int:
        return self.inverse_std.shape[0]

    @property
    def penalised(self) -> bool:
        return self.targets.anchor is not None

    def density(self, output, targets: MemberTargets | None = None):
        """Density contrast (kg/m^3) from network outputs at the cells, offsets included."""
        targets = self.targets if targets is None else targets
        density = output if self.scale is None else output * self.scale.astype(output.dtype)
        if targets.offset is not None:
            density = density + targets.offset.astype(density.dtype)
        return density

    def tangent_density(self, tangent):
        """The linear part of :meth:`density`: the density change of a change in the outputs."""
        return tangent if self.scale is None else tangent * self.scale.astype(tangent.dtype)

    def cotangent_output(self, cotangent):
        """The transpose of :meth:`tangent_density` (kg/m^3-duals to output-duals)."""
        return cotangent if self.scale is None else cotangent * self.scale.astype(cotangent.dtype)

    def data_residual(self, density, targets: MemberTargets | None = None):
        """``(G m - d) / sigma`` per station (dimensionless)."""
        targets = self.targets if targets is None else targets
        predicted = self.operator.forward(density)
        return (predicted - targets.data.astype(predicted.dtype)) * self.inverse_std.astype(predicted.dtype)

    def prior_residual(self, density, targets: MemberTargets | None = None):
        """``C^(-1/2) (m - a)`` per cell (dimensionless), or None without a penalty."""
        targets = self.targets if targets is None else targets
        if targets.anchor is None:
            return None
        return self.prior.whiten(density - targets.anchor.astype(density.dtype))

    def losses(self, density, targets: MemberTargets | None = None):
        """Per-member loss and chi^2/N (against each member's own data) of densities ``(..., cells)``."""
        residual = self.data_residual(density, targets)
        chi2 = jnp.sum(residual**2, axis=-1) / self.n_data
        loss = chi2
        white = self.prior_residual(density, targets)
        if white is not None:
            loss = loss + jnp.sum(white**2, axis=-1) / self.n_data
        return loss, chi2


__all__ = ["MemberTargets", "Objective"]
