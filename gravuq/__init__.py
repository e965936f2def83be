"""gravuq: probabilistic 3D gravity inversion with implicit neural representations on JAX.

Conventions (SPEC section 1): x easting, y northing, z elevation positive up, metres; density
contrast in kg/m^3; gz in mGal (1 mGal = 1e-5 m/s^2), positive downward.

The names below are the curated public API; each is imported on first use, so ``import gravuq``
stays cheap (a command loads only what it runs).
"""

import importlib
import os
import sys

# The prism kernel's 8-corner sum cancels large terms, so it is evaluated in float64; models and
# stored operators choose float32 explicitly where speed matters. 64-bit mode must be on before
# any array is made, hence here. Without importing JAX (about 1.6 s, more than `gravuq forward`
# needs for its NumPy products): JAX reads JAX_ENABLE_X64 when it is first imported (a process
# started from this one inherits it), and one that is already imported is switched directly.
if "jax" in sys.modules:
    sys.modules["jax"].config.update("jax_enable_x64", True)
else:
    os.environ["JAX_ENABLE_X64"] = "1"

from .errors import InputError  # noqa: E402

__version__ = "0.2.0"

#: Public name -> the module that defines it.
_LAZY = {
    "TensorMesh": "gravuq.mesh",
    "load_config": "gravuq.config",
    "make_operator": "gravuq.forward",
    "prism_gz": "gravuq.forward",
    "sensitivity_matrix": "gravuq.forward",
    "read_ubc_mesh": "gravuq.io",
    "write_ubc_mesh": "gravuq.io",
    "read_survey": "gravuq.io",
    "prepare": "gravuq.pipeline",
    "recover": "gravuq.pipeline",
    "write_outputs": "gravuq.outputs",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gravuq' has no attribute {name!r}")


__all__ = ["InputError", "__version__", *_LAZY]
