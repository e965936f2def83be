"""The machinery of the config: where a value sits, the checks that validate it, and the
declaration of keys (:func:`setting`). Sections are declared in ``_sections.py`` and
``_inference.py``; :data:`SECTIONS` maps each TOML section name to its class.

Every problem is raised as :class:`~gravuq.errors.InputError` with one message naming the file,
the key, what was found and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from ..errors import InputError

#: TOML section name -> (the class parsing it, whether a config must have it). Filled by
#: ``gravuq.config`` once every section class is defined.
SECTIONS: dict[str, tuple[type, bool]] = {}

# ---------------------------------------------------------------------------------------------
# Where a value sits, for messages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """The file, section and key of a value; builds the messages of errors about it."""

    file: str
    base: Path  # folder that relative paths are resolved against
    section: str
    key: str = ""

    def at(self, key: str) -> _Where:
        key = f"{self.key}.{key}" if self.key else key
        return dataclasses.replace(self, key=key)

    @property
    def label(self) -> str:
        return f"[{self.section}] {self.key}" if self.key else f"[{self.section}]"

    def error(self, message: str) -> InputError:
        return InputError(f"{self.file}: {self.label}: {message}")


def _toml(value: Any) -> str:
    """A value written the way it would appear in TOML, shortened for messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = f'"{value}"'
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_toml(item) for item in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _found(value: Any) -> str:
    """``value`` for a 'found ...' clause; names the kind where the text alone would mislead."""
    if isinstance(value, bool):
        return f"{_toml(value)} (a boolean)"
    if isinstance(value, str):
        return f"{_toml(value)} (a string)"
    if isinstance(value, Mapping):
        return f"a table {_toml(value)}"
    return _toml(value)




# ---------------------------------------------------------------------------------------------
# Checks: each takes the value a user wrote and where it sits, and returns the stored value
# ---------------------------------------------------------------------------------------------

Check = Callable[[Any, _Where], Any]


def _is_number(value: Any) -> bool:
    # bool is a subclass of int in Python; `members = true` must not read as 1.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_phrase(minimum: float | None, exclusive: bool, noun: str) -> str:
    if minimum is None:
        return f"a {noun}"
    if minimum == 0 and exclusive:
        return f"a positive {noun}"
    return f"a {noun} {'>' if exclusive else '>='} {minimum:g}"


def number(minimum: float | None = None, *, exclusive: bool = False) -> Check:
    """A finite number (an integer is accepted and stored as float), optionally bounded below."""
    expected = _number_phrase(minimum, exclusive, "number")

    def check(value: Any, where: _Where) -> float:
        valid = _is_number(value) and math.isfinite(value)
        if valid and minimum is not None:
            valid = value > minimum if exclusive else value >= minimum
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return float(value)

    return check


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """An integer (a float such as ``3.0`` is refused), optionally within bounds."""
    if maximum is not None:
        expected = f"an integer from {minimum} to {maximum}"
    elif minimum == 1:
        expected = "a positive integer"
    elif minimum is not None:
        expected = f"an integer >= {minimum}"
    else:
        expected = "an integer"

    def check(value: Any, where: _Where) -> int:
        valid = _is_integer(value)
        if valid and minimum is not None:
            valid = value >= minimum
        if valid and maximum is not None:
            valid = value <= maximum
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return int(value)

    return check


def power_of_two() -> Check:
    """A positive integer power of two (hash tables index with a bit mask)."""

    def check(value: Any, where: _Where) -> int:
        if not (_is_integer(value) and value >= 1 and value & (value - 1) == 0):
            raise where.error(f"expected a power of two such as 16384, found {_found(value)}")
        return int(value)

    return check


def choice(*options: str) -> Check:
    """One string out of ``options``."""
    expected = "one of " + ", ".join(f'"{option}"' for option in options)

    def check(value: Any, where: _Where) -> str:
        if isinstance(value, str) and value in options:
            return value
        message = f"expected {expected}, found {_found(value)}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
            if close:
                message += f' (did you mean "{close[0]}"?)'
        raise where.error(message)

    return check


def boolean() -> Check:
    """``true`` or ``false`` (TOML booleans only: no 0/1, no strings)."""

    def check(value: Any, where: _Where) -> bool:
        if not isinstance(value, bool):
            raise where.error(f"expected true or false, found {_found(value)}")
        return value

    return check


def text() -> Check:
    """A non-empty string."""

    def check(value: Any, where: _Where) -> str:
        if not isinstance(value, str) or not value.strip():
            raise where.error(f"expected a non-empty string, found {_found(value)}")
        return value

    return check


def _resolve(value: Any, where: _Where, what: str) -> Path:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise where.error(f"expected {what} (a string), found {_found(value)}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = where.base / path
    return path.resolve()


def existing_file() -> Check:
    """A path to an existing file, resolved against the config's folder."""

    def check(value: Any, where: _Where) -> Path:
        path = _resolve(value, where, "a file path")
        if path.is_dir():
            raise where.error(f"expected a file, found a folder: {path}")
        if not path.is_file():
            raise where.error(f"file not found: {path}")
        return path

    return check


def folder() -> Check:
    """A folder path (it need not exist yet), resolved against the config's folder."""

    def check(value: Any, where: _Where) -> Path:
        path = _resolve(value, where, "a folder path")
        if path.exists() and not path.is_dir():
            raise where.error(f"expected a folder, found a file: {path}")
        return path

    return check


def numbers(
    length: int | None = None, *, positive: bool = False, integers: bool = False
) -> Check:
    """A non-empty list of numbers (of a fixed ``length`` if given), stored as a tuple."""
    items = ("positive " if positive else "") + ("integers" if integers else "numbers")
    expected = f"a list of {length} {items}" if length is not None else f"a non-empty list of {items}"
    is_item = _is_integer if integers else _is_number

    def check(value: Any, where: _Where) -> tuple:
        valid = isinstance(value, (list, tuple)) and len(value) > 0
        valid = valid and (length is None or len(value) == length)
        valid = valid and all(is_item(item) and math.isfinite(item) for item in value)
        valid = valid and (not positive or all(item > 0 for item in value))
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return tuple(int(item) if integers else float(item) for item in value)

    return check


def interval() -> Check:
    """Two numbers ``[lower, upper]`` with ``lower < upper``."""
    pair = numbers(2)

    def check(value: Any, where: _Where) -> tuple[float, float]:
        lower, upper = pair(value, where)
        if not lower < upper:
            raise where.error(f"expected [lower, upper] with lower < upper, found {_found(value)}")
        return lower, upper

    return check


def subset(*options: str) -> Check:
    """A non-empty list of distinct strings out of ``options``, stored as a tuple."""
    expected = "a non-empty list of distinct values out of " + ", ".join(f'"{o}"' for o in options)

    def check(value: Any, where: _Where) -> tuple[str, ...]:
        valid = isinstance(value, (list, tuple)) and len(value) > 0
        valid = valid and all(isinstance(item, str) and item in options for item in value)
        valid = valid and len(set(value)) == len(value)
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return tuple(value)

    return check


def table(section: type) -> Check:
    """A nested table parsed with the same rules as a section (e.g. ``[data] columns``)."""

    def check(value: Any, where: _Where) -> Any:
        return _parse_section(section, value, where)

    return check


def setting(default: Any = MISSING, check: Check | None = None, help: str = "", *,
            check_default: bool = False) -> Any:
    """Declare one config key: a dataclass field that carries its check and help text.

    Parameters
    ----------
    default
        The value used when the key is absent; leave it out for a required key.
    check
        Validates and converts the value a user wrote (see :func:`number`, :func:`choice`...).
    help
        One line for ``--help`` and the README, with units.
    check_default
        Run the check on the default too when the key is absent: paths, so that a default
        folder is resolved against the config file's folder like a written one.
    """
    metadata = {"check": check, "help": help, "check_default": check_default}
    return field(default=default, metadata=metadata)


class _Section:
    """Base of the section dataclasses: a hook for checks that involve several keys."""

    def _validated(self, where: _Where) -> Self:
        return self


def _settings(section: type) -> dict[str, dataclasses.Field]:
    return {item.name: item for item in fields(section) if item.metadata.get("check")}


def _unknown_key_hint(key: str, section: type) -> str:
    """A typo's nearest valid key, else the section where the key belongs, else the list."""
    valid = list(_settings(section))
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    owners = [name for name, (kind, _) in SECTIONS.items() if key in _settings(kind)]
    if owners:
        return f"it belongs in [{owners[0]}]"
    return "valid keys: " + ", ".join(valid)


def _parse_section(section: type, values: Any, where: _Where) -> Any:
    if not isinstance(values, Mapping):
        raise where.error(f"expected a table of keys, found {_found(values)}")
    settings = _settings(section)
    for key in values:
        if key not in settings:
            raise where.at(key).error(f"unknown key ({_unknown_key_hint(key, section)})")
    parsed: dict[str, Any] = {}
    for name, declared in settings.items():
        check = declared.metadata["check"]
        if name in values:
            parsed[name] = check(values[name], where.at(name))
        elif declared.default is MISSING:
            help_text = declared.metadata["help"]
            raise where.at(name).error(
                "missing required key" + (f" ({help_text})" if help_text else "")
            )
        elif declared.metadata["check_default"] and declared.default is not None:
            parsed[name] = check(declared.default, where.at(name))
    return section(**parsed)._validated(where)


