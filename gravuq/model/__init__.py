"""The implicit neural representation of density (Equinox modules)."""

from ._encoding import FourierEncoding, GridPlan, HashEncoding, HashPlan, IdentityEncoding, PositionalEncoding, make_encoding
from ._inr import DensityField, Normaliser, Points, TableRows, VoxelField, model_from_config, parameter_count, trainable

__all__ = [
    "DensityField", "FourierEncoding", "GridPlan", "HashEncoding", "HashPlan", "IdentityEncoding", "Normaliser",
    "Points", "PositionalEncoding", "TableRows", "VoxelField", "make_encoding", "model_from_config", "parameter_count", "trainable",
]
