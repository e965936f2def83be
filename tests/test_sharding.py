"""Ensemble members split over devices: the same densities as on one device, and the params
really laid out over every device.

Several devices are simulated on the CPU with ``XLA_FLAGS=--xla_force_host_platform_device_count``,
which must be set before jax is imported: each run is a fresh Python process.
Units: gz in mGal (positive down), densities in kg/m^3.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

#: Trains 4 members for 10 epochs on a small FFT-operator problem and saves their densities.
SCRIPT = """
import sys
import jax, jax.numpy as jnp, numpy as np
import gravuq
from gravuq.config import InferenceConfig, ModelConfig
from gravuq.forward import make_operator
from gravuq.inference.training import (MemberTargets, Objective, TrainingSettings, make_engine, stack_members,
                                       train_members)
from gravuq.model import model_from_config
from gravuq.mesh import TensorMesh
from gravuq.model import Normaliser

mesh = TensorMesh.uniform((0.0, 0.0, -200.0), (25.0, 25.0, 25.0), (8, 8, 8))
x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 1.0)], 1)
operator, _ = make_operator(mesh, stations)
truth = np.zeros(mesh.shape)
truth[3:6, 2:5, 3:6] = 300.0
data = np.asarray(operator.forward(jnp.asarray(truth.ravel())), np.float64)
model = ModelConfig(encoding="fourier", width=16, depth=2)
params, static = stack_members(lambda k: model_from_config(model, key=k), jax.random.split(jax.random.key(1), 4))
objective = Objective(operator=operator, coordinates=Normaliser.for_mesh(mesh)(mesh.cell_centers),
                      inverse_std=jnp.full(data.size, 1 / 0.05, jnp.float32),
                      targets=MemberTargets(data=jnp.asarray(np.tile(data, (4, 1)), jnp.float32)))
engine = make_engine(static, TrainingSettings(trainer=sys.argv[2], epochs=int(sys.argv[3]), patience=0), target_misfit=None)
fit = train_members(engine, params, objective, jax.random.key(0), int(sys.argv[3]), observed=data, std=np.full(data.size, 0.05))
devices = sorted({len(leaf.sharding.device_set) for leaf in jax.tree.leaves(fit.params)})
np.savez(sys.argv[1], density=fit.density, devices=np.array(devices), count=len(jax.devices()))
"""


def train(tmp_path, device_counts: tuple[int, ...], trainer: str) -> list[dict]:
    """Run SCRIPT once per device count, the processes side by side (most of each is compiling)."""
    runs = []
    for devices in device_counts:
        environment = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                           JAX_PLATFORMS="cpu")
        path = tmp_path / f"members_on_{devices}_{trainer}.npz"
        # Gauss-Newton steps amplify float32 rounding (which differs between device layouts) by about
        # 2 a step: 3 steps stay at the rounding level, as 10 Adam epochs do.
        steps = "3" if trainer == "levenberg_marquardt" else "10"
        process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), trainer, steps], env=environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((process, path))
    results = []
    for process, path in runs:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors[-3000:]
        with np.load(path) as saved:
            results.append({name: saved[name] for name in saved.files})
    return results


@pytest.mark.parametrize("trainer", ["levenberg_marquardt", "adam"])
def test_members_sharded_over_four_devices_match_one_device(tmp_path, trainer):
    four, one = train(tmp_path, (4, 1), trainer)
    assert int(four["count"]) == 4 and int(one["count"]) == 1
    # Every trained array is split over all four devices.
    assert four["devices"].tolist() == [4]
    assert one["devices"].tolist() == [1]
    assert four["density"].shape == one["density"].shape == (4, 512)
    # The members differ from each other, so the match is member by member, not a coincidence.
    assert np.abs(one["density"][0] - one["density"][1]).max() > 1.0
    np.testing.assert_allclose(four["density"], one["density"], rtol=0.0,
                               atol=1e-5 * np.abs(one["density"]).max())
