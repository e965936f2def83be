"""Figures a geophysicist reads, every one of gravuq's in this package: depth slices, sections
with the 90 % band, data and residual maps, resolution versus depth, training curves, the
drilling map, the comparison of methods and drill-hole logs. Matplotlib (Agg), written
atomically as PNG.

Maps from few draws say so: probability colour bars have as many bands as the number of draws
supports, each map of Monte-Carlo draws names its sampling error, and cells whose posterior sd is
within 5 % of the prior sd are hatched grey as "not resolved". Truth and mean share one colour
scale, and the truth is outlined at the threshold.

Conventions: map views are north up with x (easting) to the right, in metres; contrast maps use
a diverging scale centred on 0 kg/m^3, std and probability sequential scales; every colorbar
names its unit.
"""

from ._common import (UNRESOLVED_RATIO, monte_carlo_note, probability_bands, strongest_cell, unresolved_label,
                      unresolved_ratio)
from ._logs import drill_log
from ._maps import data_maps, depth_slices, drilling_map
from ._sections import comparison_sections, resolution_depth, section_with_band, training_curve

__all__ = ["UNRESOLVED_RATIO", "comparison_sections", "data_maps", "depth_slices", "drill_log", "drilling_map",
           "monte_carlo_note", "probability_bands", "resolution_depth", "section_with_band", "strongest_cell",
           "training_curve", "unresolved_label", "unresolved_ratio"]
