"""Figures a geophysicist reads, every one of gravuq's in this package: depth slices, sections
with the 90 % band, data and residual maps, resolution versus depth, training curves, the
drilling map, the comparison of methods and drill-hole logs. Matplotlib (Agg), written
atomically as PNG.

Conventions: map views are north up with x (easting) to the right, in metres; contrast maps use
a diverging scale centred on 0 kg/m^3, std and probability sequential scales; every colorbar
names its unit.
"""

from ._logs import drill_log
from ._maps import data_maps, depth_slices, drilling_map
from ._sections import comparison_sections, resolution_depth, section_with_band, training_curve

__all__ = ["comparison_sections", "data_maps", "depth_slices", "drill_log", "drilling_map", "resolution_depth",
           "section_with_band", "training_curve"]
