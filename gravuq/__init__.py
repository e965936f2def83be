"""gravuq: probabilistic 3D gravity inversion with implicit neural representations on JAX.

Conventions (SPEC section 1): x easting, y northing, z elevation positive up, metres; density
contrast in kg/m^3; gz in mGal (1 mGal = 1e-5 m/s^2), positive downward.
"""

import jax

# The prism kernel's 8-corner sum cancels large terms, so it is evaluated in float64; models and
# stored operators choose float32 explicitly where speed matters. 64-bit mode must be on before
# any array is made, hence here.
jax.config.update("jax_enable_x64", True)

from .errors import InputError  # noqa: E402
from .mesh import TensorMesh, read_ubc_mesh, write_ubc_mesh  # noqa: E402
from .forward import make_operator, prism_gz, sensitivity_matrix  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "InputError", "TensorMesh", "make_operator", "prism_gz", "read_ubc_mesh", "sensitivity_matrix",
    "write_ubc_mesh", "__version__",
]
