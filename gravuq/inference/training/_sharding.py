"""Ensemble members split over devices with ``jax.sharding``.

Every array that carries a leading member axis (the members' params, their optimiser state, the
per-member data, anchors and offsets) is laid out with ``NamedSharding(mesh, P("members"))`` on
a one-axis device :class:`~jax.sharding.Mesh` named ``"members"``; everything shared (the forward
operator, the cell coordinates, the prior) is replicated. The engine's jitted epoch then runs
each device's members on that device (XLA's SPMD partitioner splits the batched matrix products
and FFTs along the member axis), and its results come back with the same layout. Nothing in the
engine changes: the layout travels with the arrays.

The devices are ``jax.devices()``: the local CPUs, GPUs or TPUs of this process, or, after
``jax.distributed.initialize()``, those of every process (each process runs the same program on
the same inputs and provides its own devices' shards). :func:`gather_members` brings a sharded
result back to every host as numpy.
"""

from __future__ import annotations

import logging

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

_log = logging.getLogger(__name__)

#: The name of the device-mesh axis that members are split along.
MEMBER_AXIS = "members"


def member_sharding(devices=None) -> NamedSharding:
    """The sharding that splits a leading member axis over ``devices`` (default: ``jax.devices()``)."""
    devices = jax.devices() if devices is None else list(devices)
    return NamedSharding(Mesh(np.asarray(devices), (MEMBER_AXIS,)), PartitionSpec(MEMBER_AXIS))


def _put(leaf, sharding: NamedSharding):
    if not isinstance(leaf, (jax.Array, np.ndarray)):
        return leaf
    value = np.asarray(leaf)
    # Built from each device's slice, so it works when some devices belong to other processes.
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def shard_members(tree, sharding: NamedSharding | None = None):
    """``tree`` with every array leaf split along its leading (member) axis.

    Every array leaf must have a leading member axis whose length divides by the number of
    devices (see :func:`members_divide`); non-array leaves are returned as they are.
    """
    sharding = member_sharding() if sharding is None else sharding
    return jax.tree.map(lambda leaf: _put(leaf, sharding), tree)


def replicate(tree, sharding: NamedSharding | None = None):
    """``tree`` with every array leaf copied whole onto each device of ``sharding``'s mesh."""
    sharding = member_sharding() if sharding is None else sharding
    replicated = NamedSharding(sharding.mesh, PartitionSpec())
    return jax.tree.map(lambda leaf: _put(leaf, replicated), tree)


def members_divide(members: int, devices=None) -> bool:
    """Whether ``members`` split evenly over more than one device (when sharding applies)."""
    count = len(jax.devices() if devices is None else list(devices))
    if count <= 1:
        return False
    if members % count:
        _log.info("%d members do not divide over %d devices: training them all on one device", members, count)
        return False
    return True


def gather_members(array) -> np.ndarray:
    """A (possibly sharded, possibly multi-process) array as numpy, whole, on this host."""
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(array)


__all__ = ["MEMBER_AXIS", "gather_members", "member_sharding", "members_divide", "replicate", "shard_members"]
