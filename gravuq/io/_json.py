"""Standard JSON for the files gravuq writes (SPEC section 4: null, never NaN or Infinity)."""

from __future__ import annotations

import json
import math

import numpy as np


def standard_json(value, where: str = "", reasons: dict | None = None):
    """``value`` with every non-finite float replaced by None, its reason (``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``) recorded in ``reasons`` under its dotted key."""
    if isinstance(value, dict):
        return {key: standard_json(item, f"{where}.{key}" if where else str(key), reasons)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [standard_json(item, f"{where}[{index}]", reasons) for index, item in enumerate(value)]
    if isinstance(value, np.ndarray):
        return standard_json(value.tolist(), where, reasons)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        if reasons is not None:
            reasons[where] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return None
    return value


def metrics_json(metrics: dict) -> str:
    """``metrics.json``'s text: standard JSON, a value that is not a finite number written as
    null and named in ``non_finite`` with what it was."""
    reasons: dict[str, str] = {}
    clean = standard_json(metrics, "", reasons)
    if reasons:
        clean["non_finite"] = {key: f"{reason} (written as null)" for key, reason in reasons.items()}
    return json.dumps(clean, indent=2, sort_keys=True, allow_nan=False) + "\n"


__all__ = ["metrics_json", "standard_json"]
