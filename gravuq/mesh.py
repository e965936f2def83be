"""Rectilinear (tensor) meshes of right rectangular prisms (UBC-GIF mesh files: :mod:`gravuq.io`).

Conventions (SPEC section 1): x = easting, y = northing, z = elevation, positive up, all in
metres. The origin is the west-south-bottom corner. Arrays on the mesh are shaped
``(nz, ny, nx)`` (dims ``("z", "y", "x")``) and flattened in that C order, so cell
``(k, j, i)`` has flat index ``(k * ny + j) * nx + i``.

Topography: a mesh may carry the ground ``surface`` (elevation in m, positive up, at the
column centres, ``(ny, nx)``). A cell whose centre lies above it is *air*: inactive, fixed at
zero density contrast (:attr:`TensorMesh.active`). Depths (depth weighting, drill logs) are then
measured down from the surface of each column, not from the mesh top. Without a surface every
cell is active and the mesh top is the surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError


@dataclass(frozen=True, eq=False)
class TensorMesh:
    """A tensor mesh: cell widths along each axis and the west-south-bottom corner.

    Parameters
    ----------
    widths_x, widths_y, widths_z
        Cell widths in metres along easting, northing and elevation; ``widths_z`` runs from
        the bottom layer to the top one.
    origin
        ``(x, y, z)`` of the west-south-bottom corner, metres.
    surface
        Ground elevation (m, positive up) at the column centres, ``(ny, nx)``, or None (the
        mesh top is the surface): cells with centres above it are inactive (air).
    """

    widths_x: np.ndarray
    widths_y: np.ndarray
    widths_z: np.ndarray
    origin: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))
    surface: np.ndarray | None = None

    def __post_init__(self):
        for name in ("widths_x", "widths_y", "widths_z"):
            widths = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if widths.size == 0 or not np.all(np.isfinite(widths)) or np.any(widths <= 0):
                raise InputError(f"mesh {name}: expected one or more positive cell widths (m), found {widths.tolist()}")
            object.__setattr__(self, name, widths)
        origin = tuple(float(v) for v in self.origin)
        if len(origin) != 3 or not all(np.isfinite(origin)):
            raise InputError(f"mesh origin: expected three finite numbers (x, y, z in m), found {self.origin}")
        object.__setattr__(self, "origin", origin)
        if self.surface is not None:
            surface = np.asarray(self.surface, dtype=np.float64)
            expected = (self.widths_y.size, self.widths_x.size)
            if surface.shape != expected or not np.all(np.isfinite(surface)):
                raise InputError(f"mesh surface: expected finite elevations (m) at the {expected[0]} x {expected[1]} "
                                 f"column centres (ny, nx), found shape {surface.shape}")
            object.__setattr__(self, "surface", surface)

    @classmethod
    def uniform(cls, origin, cell_size, shape) -> TensorMesh:
        """A mesh of equal cells: ``cell_size = (dx, dy, dz)`` in m, ``shape = (nx, ny, nz)``."""
        nx, ny, nz = (int(n) for n in shape)
        dx, dy, dz = (float(d) for d in cell_size)
        return cls(np.full(nx, dx), np.full(ny, dy), np.full(nz, dz), tuple(origin))

    # -- geometry ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)``: the shape of arrays on the mesh."""
        return (self.widths_z.size, self.widths_y.size, self.widths_x.size)

    @property
    def n_cells(self) -> int:
        nz, ny, nx = self.shape
        return nz * ny * nx

    @property
    def nodes_x(self) -> np.ndarray:
        """Cell boundaries along x (m), ``nx + 1`` values, west to east."""
        return self.origin[0] + np.concatenate([[0.0], np.cumsum(self.widths_x)])

    @property
    def nodes_y(self) -> np.ndarray:
        """Cell boundaries along y (m), ``ny + 1`` values, south to north."""
        return self.origin[1] + np.concatenate([[0.0], np.cumsum(self.widths_y)])

    @property
    def nodes_z(self) -> np.ndarray:
        """Cell boundaries along z (m, elevation positive up), ``nz + 1`` values, bottom to top."""
        return self.origin[2] + np.concatenate([[0.0], np.cumsum(self.widths_z)])

    @property
    def centers_x(self) -> np.ndarray:
        nodes = self.nodes_x
        return 0.5 * (nodes[1:] + nodes[:-1])

    @property
    def centers_y(self) -> np.ndarray:
        nodes = self.nodes_y
        return 0.5 * (nodes[1:] + nodes[:-1])

    @property
    def centers_z(self) -> np.ndarray:
        nodes = self.nodes_z
        return 0.5 * (nodes[1:] + nodes[:-1])

    @property
    def cell_centers(self) -> np.ndarray:
        """Cell-centre coordinates, shape ``(n_cells, 3)`` as ``(x, y, z)`` in m, flat C order."""
        z, y, x = np.meshgrid(self.centers_z, self.centers_y, self.centers_x, indexing="ij")
        return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)

    @property
    def cell_volumes(self) -> np.ndarray:
        """Cell volumes in m^3, shape ``(nz, ny, nx)``."""
        return self.widths_z[:, None, None] * self.widths_y[None, :, None] * self.widths_x[None, None, :]

    @property
    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """``(west, east, south, north, bottom, top)`` in m."""
        return (self.nodes_x[0], self.nodes_x[-1], self.nodes_y[0], self.nodes_y[-1],
                self.nodes_z[0], self.nodes_z[-1])

    @property
    def is_uniform(self) -> bool:
        """True when every axis has equal widths (a requirement of the Toeplitz fast paths)."""
        return all(np.allclose(w, w[0], rtol=1e-12, atol=0.0)
                   for w in (self.widths_x, self.widths_y, self.widths_z))

    # -- topography -------------------------------------------------------------------------
    @property
    def has_topography(self) -> bool:
        """Whether the mesh carries a ground surface (some cells may then be air)."""
        return self.surface is not None

    @property
    def ground(self) -> np.ndarray:
        """The ground elevation (m, up) per column, ``(ny, nx)``: the surface, or the mesh top."""
        if self.surface is None:
            return np.full((self.widths_y.size, self.widths_x.size), self.nodes_z[-1])
        return self.surface

    @property
    def active(self) -> np.ndarray:
        """``(nz, ny, nx)`` bool: True for cells whose centre lies at or below the surface
        (every cell without one); the others are air, fixed at zero density contrast."""
        if self.surface is None:
            return np.ones(self.shape, dtype=bool)
        return self.centers_z[:, None, None] <= self.surface[None, :, :]

    @property
    def n_active(self) -> int:
        return int(np.count_nonzero(self.active))

    @property
    def depth_below_surface(self) -> np.ndarray:
        """Depth of each cell centre below the ground of its column (m, positive down),
        ``(nz, ny, nx)``; negative for air cells."""
        return self.ground[None, :, :] - self.centers_z[:, None, None]

    @property
    def top_active_layer(self) -> np.ndarray:
        """``(ny, nx)`` int: the layer index of the highest active cell of each column (-1 for a
        column with none: its surface lies below the lowest cell centre)."""
        active = self.active
        highest = self.shape[0] - 1 - np.argmax(active[::-1], axis=0)
        return np.where(active.any(axis=0), highest, -1)

    def with_surface(self, surface: np.ndarray | None) -> TensorMesh:
        """The same cells with ``surface`` (m, ``(ny, nx)``, or None) as the ground."""
        return TensorMesh(self.widths_x, self.widths_y, self.widths_z, self.origin, surface)

    def coords(self) -> dict[str, np.ndarray]:
        """Cell-centre coordinates for xarray: ``{"z": ..., "y": ..., "x": ...}`` in m."""
        return {"z": self.centers_z, "y": self.centers_y, "x": self.centers_x}

    def same_as(self, other: TensorMesh, rtol: float = 1e-9) -> bool:
        """Whether two meshes have the same cells (within ``rtol`` of the mesh size)."""
        if self.shape != other.shape:
            return False
        scale = max(np.ptp(self.nodes_x), np.ptp(self.nodes_y), np.ptp(self.nodes_z))
        return all(np.allclose(a, b, rtol=0.0, atol=rtol * scale) for a, b in (
            (self.nodes_x, other.nodes_x), (self.nodes_y, other.nodes_y), (self.nodes_z, other.nodes_z)))

    def __repr__(self) -> str:
        nz, ny, nx = self.shape
        terrain = f", active={self.n_active} of {self.n_cells}" if self.has_topography else ""
        return f"TensorMesh(nx={nx}, ny={ny}, nz={nz}, origin={self.origin}{terrain})"


__all__ = ["TensorMesh"]
