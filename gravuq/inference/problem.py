"""What every method is given and what it returns, so the pipeline around the methods never
looks inside one.

Conventions (SPEC section 1): densities are flat vectors over the mesh cells in the C order of
``(nz, ny, nx)``, density contrast in kg/m^3; gz and std in mGal, gz positive downward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..mesh import TensorMesh
from ..synthetic import gaussian_noise


@dataclass(frozen=True, eq=False)
class InverseProblem:
    """The data, the physics and the prior of one inversion.

    Attributes
    ----------
    operator
        The forward operator (:class:`gravuq.forward.ForwardOperator`), mGal per kg/m^3.
    mesh
        The tensor mesh.
    coordinates
        ``(cells, 3)`` cell centres in the networks' normalised frame (float32).
    data, std
        ``(stations,)`` observed gz (regional removed) and the std each datum is fitted with, mGal.
    dense
        ``dense()`` returns the float64 sensitivity ``(stations, cells)``, built at most once and
        only after the memory budget allows it (an :class:`~gravuq.errors.InputError` otherwise).
    dense_fits
        ``dense_fits()``: whether ``dense()`` would fit in the memory budget.
    prior
        ``prior()`` returns ``(GaussianPrior, description for metrics.json)``, built (or learned
        from the data) at most once.
    """

    operator: object
    mesh: TensorMesh
    coordinates: jnp.ndarray
    data: np.ndarray
    std: np.ndarray
    dense: Callable[[], np.ndarray]
    dense_fits: Callable[[], bool]
    prior: Callable[[], tuple]

    @property
    def n_stations(self) -> int:
        return int(self.data.size)

    def perturbed_data(self, key, members: int) -> np.ndarray:
        """``(members, stations)`` mGal: the data plus an independent noise draw of ``std`` per
        member (randomised MAP, SVGD starts), from ``key``."""
        return self.data[None, :] + np.stack([gaussian_noise(k, self.std) for k in jax.random.split(key, members)])


@dataclass(frozen=True)
class TrainingRecord:
    """How networks were trained: ``history`` chi^2/N per epoch and member ``(epochs, members)``
    against each member's own data; ``target`` the chi^2/N they were stopped at (None when they
    run on); ``epochs`` run; ``kept`` which state of each member was kept (``"best"`` or
    ``"last"``) and ``kept_epochs`` ``(members,)`` at which epoch (history row)."""

    history: np.ndarray
    target: float | None
    epochs: int
    kept: str = "last"
    kept_epochs: np.ndarray | None = None

    @classmethod
    def of(cls, fit, target: float | None) -> TrainingRecord:
        """The record of a :class:`~gravuq.inference.training.MemberFit`."""
        return cls(fit.history, target, fit.epochs, fit.kept, fit.kept_epochs)


@dataclass(frozen=True)
class MethodResult:
    """What a method found.

    Attributes
    ----------
    draws
        ``(draws, cells)`` kg/m^3: posterior draws (ensemble members, particles, exact or NUTS
        draws), or one row for a deterministic model.
    prior_variance
        ``(cells,)`` (kg/m^3)^2 of the method's own prior, for the resolution; None if it has none.
    moments
        ``(mean, variance)`` ``(cells,)`` exact posterior marginals when the method has them (the
        summaries then use them instead of the draws' Monte-Carlo estimates).
    chains
        Chains the draws hold (NUTS keeps its chains; everything else is one chain).
    training
        The networks' training record, or None.
    info
        Method-specific numbers for ``metrics.json``.
    """

    draws: np.ndarray
    prior_variance: np.ndarray | None = None
    moments: tuple[np.ndarray, np.ndarray] | None = None
    chains: int = 1
    training: TrainingRecord | None = None
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Hooks:
    """What a method may report to: ``progress(total, description)`` returns a tqdm-like bar (or
    None: no bars), ``checkpoint`` a :class:`gravuq.io.Checkpointer` (or None), ``log`` prints a
    line."""

    progress: Callable | None = None
    checkpoint: object | None = None
    log: Callable[[str], None] = lambda message: None

    def epoch_bar(self, total: int, description: str):
        """``(update, close)``: ``update(epochs_done, state)`` moves a bar over ``total`` epochs
        showing the members' chi^2/N; ``close()`` ends it. No-ops without ``progress``."""
        if self.progress is None:
            return None, lambda: None
        from .training import misfit_summary

        bar = self.progress(total, description)
        last = [0]

        def update(done: int, state) -> None:
            bar.update(done - last[0])
            last[0] = done
            bar.set_postfix_str(misfit_summary(state))

        return update, bar.close


__all__ = ["Hooks", "InverseProblem", "MethodResult", "TrainingRecord"]
