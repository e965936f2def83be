"""Shared helpers for the B1 benchmarks: the example written once, runs with overrides, tables."""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import jax

from gravuq.config import load_config
from gravuq.examples import write_dipping_block
from gravuq.pipeline import prepare, recover


def b1_setup():
    """The built-in B1 example, prepared once (mesh, stations, dense operator, truth)."""
    directory = Path(tempfile.mkdtemp(prefix="gravuq-bench-"))
    config = load_config(write_dipping_block(directory, geometry="b1"))
    return prepare(config)


def best_time(function, repeats: int = 3):
    """``(first-call seconds, best of repeats seconds, last result)``; results are made ready."""
    import numpy as np

    start = time.perf_counter()
    result = jax.block_until_ready(function())
    first = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(function())
        best = min(best, time.perf_counter() - start)
    return first, best, result


def run_recovery(setup, method: str, model: dict | None = None, **inference):
    """Recover with ``[inference]``/``[model]`` overrides; returns (recovery, wall seconds)."""
    config = setup.config
    config = dataclasses.replace(
        config, inference=dataclasses.replace(config.inference, method=method, **inference),
        model=dataclasses.replace(config.model, **(model or {})))
    start = time.perf_counter()
    recovery = recover(dataclasses.replace(setup, config=config))
    return recovery, time.perf_counter() - start


def run(setup, method: str, model: dict | None = None, **inference):
    """Recover with ``[inference]``/``[model]`` overrides; returns (metrics, wall seconds)."""
    recovery, wall = run_recovery(setup, method, model, **inference)
    return recovery.metrics, wall


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
            f"on {jax.default_backend()}; peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table; ``columns`` are (header, key, format)."""
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append("" if value is None else (format(value, fmt) if fmt else str(value)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
