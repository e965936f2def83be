"""TOML config -> frozen, validated settings (SPEC section 3).

Each config section is a frozen dataclass whose fields are the section's keys. A key is declared
with :func:`setting`: its default, the check that validates a user's value and a one-line help
text, so adding a key later is one line. Checks are strict: a string where a number is expected
is an error, integers are accepted where a float is expected, booleans never count as numbers.
Every problem is raised as :class:`~gravuq.errors.InputError` with one message naming the file,
the key, what was found and what was expected, for example::

    config.toml: [model] widht: unknown key (did you mean 'width'?)
    config.toml: [inference] epochs: expected a positive integer, found -3

Relative paths in a config are resolved against the folder of the config file and stored as
absolute :class:`~pathlib.Path` objects.

Units follow SPEC section 1: lengths in metres, densities (``bounds``, ``prior_std``,
``threshold``) as density contrast in kg/m^3, ``[data] std`` in the data's ``units``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._checks import SECTIONS, _parse_section, _settings, _Where, setting
from ._inference import InferenceConfig
from ._usage import unused_key_warning, unused_keys
from ._sections import (DataColumns, DataConfig, ForwardConfig, MeshConfig, ModelConfig, OutputConfig,
                        TruthConfig)

__all__ = [
    "Config",
    "DataColumns",
    "DataConfig",
    "ForwardConfig",
    "InferenceConfig",
    "MeshConfig",
    "ModelConfig",
    "OutputConfig",
    "TruthConfig",
    "load_config",
    "parse_config",
    "setting",
    "unused_key_warning",
    "unused_keys",
]

SECTIONS.update({
    "data": (DataConfig, True),
    "mesh": (MeshConfig, True),
    "model": (ModelConfig, False),
    "inference": (InferenceConfig, False),
    "output": (OutputConfig, False),
    "truth": (TruthConfig, False),
    "forward": (ForwardConfig, False),
})
@dataclass(frozen=True)
class Config:
    """A whole validated run: one field per config section plus the file it came from.

    ``truth`` is ``None`` when the config has no ``[truth]`` section; every other optional
    section holds its defaults when absent. ``path`` is the absolute path of the config file
    and ``text`` its raw TOML, recorded in outputs for provenance.
    """

    data: DataConfig
    mesh: MeshConfig
    path: Path
    text: str
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    truth: TruthConfig | None = None
    forward: ForwardConfig = field(default_factory=ForwardConfig)

    @property
    def hash(self) -> str:
        """SHA-256 of the raw TOML text, as hex: identifies the run's settings."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def parse_config(text: str, path: str | Path) -> Config:
    """Validate TOML ``text`` as if it were read from ``path``.

    Parameters
    ----------
    text
        The TOML document.
    path
        The config file it belongs to: names it in messages, and its folder resolves the
        relative paths inside (the file itself need not exist).

    Raises
    ------
    InputError
        For bad TOML (with line and column), unknown sections or keys, wrong types, values out
        of range, missing required keys or missing files.
    """
    display = str(path)
    path = Path(path).expanduser().resolve()
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line L, column C)".
        raise InputError(f"{display}: not valid TOML: {error}") from None
    base = path.parent
    top = _Where(display, base, "")
    for name, value in document.items():
        if name in SECTIONS:
            continue
        if isinstance(value, Mapping):
            close = difflib.get_close_matches(name, list(SECTIONS), n=1, cutoff=0.6)
            hint = f"did you mean [{close[0]}]?" if close else "valid sections: " + ", ".join(
                f"[{section}]" for section in SECTIONS)
            raise InputError(f"{display}: [{name}]: unknown section ({hint})")
        owners = [section for section, (kind, _) in SECTIONS.items() if name in _settings(kind)]
        hint = f"it belongs in [{owners[0]}]" if owners else "keys belong inside a [section]"
        raise InputError(f"{display}: {name}: key outside any section ({hint})")
    sections: dict[str, Any] = {}
    for name, (kind, required) in SECTIONS.items():
        where = dataclasses.replace(top, section=name)
        if name in document:
            sections[name] = _parse_section(kind, document[name], where)
        elif required:
            raise InputError(f"{display}: [{name}]: missing required section")
        elif name != "truth":
            sections[name] = _parse_section(kind, {}, where)
    return Config(path=path, text=text, **sections)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file (SPEC section 3).

    Parameters
    ----------
    path
        The config file. Relative paths inside it are resolved against its folder.

    Returns
    -------
    Config
        Frozen settings with every default filled in.

    Raises
    ------
    InputError
        If the file is missing or unreadable, or for any problem :func:`parse_config` reports.
    """
    display = str(path)
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8-sig")  # a byte-order mark (some Windows editors) is not TOML
    except FileNotFoundError:
        raise InputError(f"{display}: config file not found") from None
    except IsADirectoryError:
        raise InputError(f"{display}: expected a TOML config file, found a folder") from None
    except UnicodeDecodeError as error:
        raise InputError(
            f"{display}: not UTF-8 text (byte {error.start}): expected a TOML config file"
        ) from None
    except OSError as error:
        raise InputError(f"{display}: cannot read the config file: {error.strerror}") from None
    return parse_config(text, file)
