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
result back to every host as numpy (a collective in a multi-process run: every process calls it
in the same order); :func:`local_members` reads this process's own members without communicating.
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
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        # Already laid out over several processes (a state the engine made from sharded inputs):
        # no host holds it whole, so it is resharded on the devices instead.
        return leaf if leaf.sharding.is_equivalent_to(sharding, leaf.ndim) else jax.device_put(leaf, sharding)
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
    """A (possibly sharded, possibly multi-process) array as numpy, whole, on this host.

    For an array split over several processes this is a collective: every process must call it,
    in the same order, or the callers wait for the others for ever.
    """
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        if array.is_fully_replicated:  # every process holds all of it
            return np.asarray(array.addressable_data(0))
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(array)


def local_members(array) -> np.ndarray:
    """The members of ``array`` (leading member axis) that this process holds, as numpy, in
    order: all of them in a single-process run. No communication, so a process may call it alone
    (progress bars)."""
    if not isinstance(array, jax.Array) or array.is_fully_addressable:
        return np.asarray(array)
    shards = sorted(array.addressable_shards, key=lambda shard: shard.index[0].start or 0)
    starts, pieces = set(), []
    for shard in shards:  # several local devices may hold the same (replicated) rows
        start = shard.index[0].start or 0
        if start not in starts:
            starts.add(start)
            pieces.append(np.asarray(shard.data))
    return np.concatenate(pieces)


def local_member_range(members: int, sharding: NamedSharding) -> tuple[int, int]:
    """``(first, stop)``: the members (of ``members``, split by ``sharding``) that this process's
    devices train."""
    indices = sharding.addressable_devices_indices_map((members,)).values()
    starts = [index[0].start or 0 for index in indices]
    stops = [members if index[0].stop is None else index[0].stop for index in indices]
    return min(starts), max(stops)


__all__ = ["MEMBER_AXIS", "gather_members", "local_member_range", "local_members", "member_sharding", "members_divide",
           "replicate", "shard_members"]
