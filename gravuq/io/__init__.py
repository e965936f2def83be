"""Readers, writers and figures: the boundary between gravuq and files."""

from ._atomic import atomic_path, write_text_atomic

__all__ = ["atomic_path", "write_text_atomic"]
