"""The noise model learned with the prior (:mod:`gravuq.inference.empirical_bayes`), per measured
component.

Conventions (SPEC section 1): the data vector is stacked component-major (every station's
first component, then every station's second, ...; :class:`gravuq.survey.Survey`), each
component in its own unit: gz and its stated std in mGal, gradients in Eotvos (1 E = 1e-9 s^-2).

Notes
-----
Datum ``i`` of component ``c`` with stated std ``s_i`` has the noise std
``n_i = sqrt((alpha_c s_i)^2 + tau_c^2)``: a unitless scale factor ``alpha_c`` on the stated
accuracy and an additive floor ``tau_c`` in the component's unit, one pair per component,
learned jointly with the prior by the evidence. The evidence code carries them as
``inner = (log sigma, log alpha_1 .. log alpha_C, log tau_1 .. log tau_C)`` (``sigma`` the
prior std); with one component that is ``(log sigma, log alpha, log tau)`` and the arithmetic,
bounds and starts are those of the one-component model as it always was. A component whose
stated std is the same at every station has no floor (a single std and a floor cannot be told
apart). The factor's bounds: :data:`NOISE_SCALE` for one component, :data:`COMPONENT_NOISE_SCALE`
per component with several (a gradient's stated std, often a nominal survey specification,
may overstate its noise more than gz's does).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

#: Bounds of the learned noise scale factor: one component, and each of several.
NOISE_SCALE = (0.5, 1e3)
COMPONENT_NOISE_SCALE = (0.1, 1e3)


def noise_variance(stated, inner):
    """Each datum's noise variance ``(alpha_c s_i)^2 + tau_c^2`` (JAX) for
    ``inner = (log sigma, log alpha_1 .. log alpha_C, log tau_1 .. log tau_C)`` and the
    component-major stated std ``stated`` (``C`` equal blocks; each in its component's unit).
    ``C`` is read from ``inner``'s length (static under ``jit``)."""
    count = (inner.shape[0] - 1) // 2
    if count == 1:  # one component: the arithmetic of the original model, as it was
        return jnp.exp(2 * inner[1]) * stated**2 + jnp.exp(2 * inner[2])
    scales, floors = jnp.exp(2 * inner[1:1 + count]), jnp.exp(2 * inner[1 + count:])
    return (scales[:, None] * stated.reshape(count, -1) ** 2 + floors[:, None]).reshape(-1)


def noise_plan(data, stated, count: int, start, learn_noise: bool, learn_floor: bool) -> dict:
    """Per component (``count`` component-major blocks of ``data`` and ``stated``): the bounds
    and starts of ``log alpha_c`` and ``log tau_c``, whether the floor is learned and whether
    it is kept (learned, or given by ``start``). One component: the original model's."""
    if data.size % count:
        raise ValueError(f"{data.size} data are not {count} components of equal length")
    single = count == 1
    scales = (start.noise_scale,) if single else (start.component_scales or (start.noise_scale,) * count)
    floors = (start.noise_floor,) if single else (start.component_floors or (0.0,) * count)
    plan = {key: [] for key in ("scale_bounds", "scale_starts", "floor_bounds", "floor_starts", "second_floors",
                                "learned", "kept")}
    blocks = zip(data.reshape(count, -1), stated.reshape(count, -1), scales, floors)
    for block_data, block_stated, scale, given in blocks:
        varied = float(np.ptp(block_stated)) > 1e-6 * float(np.mean(block_stated))
        floor_start = given if given > 0 else 1e-3 * float(np.median(block_stated))
        learned = learn_noise and varied and learn_floor
        spread = float(np.std(block_data)) or 1.0
        bounds = (np.log(1e-6 * spread), np.log(10.0 * spread)) if learned else (np.log(floor_start),) * 2
        if not learned and given == 0:
            bounds = (np.log(1e-12 * spread),) * 2  # no floor: a negligible one keeps the logs finite
        plan["scale_bounds"].append(tuple(np.log(NOISE_SCALE if single else COMPONENT_NOISE_SCALE)) if learn_noise
                                    else (np.log(scale),) * 2)
        plan["scale_starts"].append(np.log(scale))
        plan["floor_bounds"].append(bounds)
        plan["floor_starts"].append(np.log(floor_start))
        plan["second_floors"].append(np.log(0.1 * spread))
        plan["learned"].append(learned)
        plan["kept"].append(learned or given > 0)
    return plan


def noise_values(inner, kept) -> dict:
    """The noise fields of :class:`Hyperparameters` from ``inner`` (see :func:`noise_variance`):
    a floor where ``kept[c]``, none elsewhere; per component with several."""
    count = len(kept)
    scales = [float(np.exp(inner[1 + c])) for c in range(count)]
    floors = [float(np.exp(inner[1 + count + c])) if kept[c] else 0.0 for c in range(count)]
    extra = {} if count == 1 else {"component_scales": tuple(scales), "component_floors": tuple(floors)}
    return {"noise_scale": scales[0], "noise_floor": floors[0], **extra}


__all__ = ["COMPONENT_NOISE_SCALE", "NOISE_SCALE", "noise_plan", "noise_values", "noise_variance"]
