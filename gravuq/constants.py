"""Physical constants and unit factors, each with its unit.

All arithmetic inside gravuq is in SI units (m, kg/m^3, m/s^2); conversion to the units users
see happens at the boundaries with the factors below, never with bare numbers.
"""

from __future__ import annotations

#: Newtonian constant of gravitation, m^3 kg^-1 s^-2 (CODATA 2018).
GRAVITATIONAL_CONSTANT = 6.67430e-11

#: One milligal in m/s^2: 1 mGal = 1e-5 m/s^2.
MGAL_IN_SI = 1.0e-5

#: Multiply an acceleration in m/s^2 by this to get mGal.
SI_TO_MGAL = 1.0 / MGAL_IN_SI

#: Multiply a gravity gradient in s^-2 by this to get Eotvos: 1 E = 1e-9 s^-2.
SI_TO_EOTVOS = 1.0e9

#: Acceleration units accepted in data files, as the factor that converts each to mGal.
#: 1 um/s^2 = 1e-6 m/s^2 = 0.1 mGal.
GRAVITY_UNITS_TO_MGAL = {"mGal": 1.0, "um/s2": 0.1, "m/s2": SI_TO_MGAL}

#: Density units accepted in configs and model files, as the factor to kg/m^3.
#: 1 g/cc = 1000 kg/m^3.
DENSITY_UNITS_TO_KG_M3 = {"kg/m3": 1.0, "g/cc": 1000.0}

#: The measured components a survey may hold: gz (mGal, positive downward) and the six gravity
#: gradients (Eotvos, 1 E = 1e-9 s^-2; Harmonica's signs, x east, y north, ``gxz``, ``gyz`` with
#: z down, ``gzz > 0`` above excess mass), in the order files and outputs list them.
COMPONENTS = ("gz", "gxx", "gxy", "gxz", "gyy", "gyz", "gzz")

#: The unit of each component's data and std inside gravuq (gradient files are read in Eotvos).
COMPONENT_UNITS = {"gz": "mGal", **{name: "E" for name in COMPONENTS[1:]}}
