"""Malformed configs, generated: every one is either accepted or refused with one InputError
that names the file and the offending section or key; never another exception."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gravuq.config import parse_config
from gravuq.errors import InputError

BASE = {
    "data": {"path": '"stations.csv"', "std": "0.01"},
    "mesh": {"origin": "[0.0, 0.0, -100.0]", "cell_size": "[10.0, 10.0, 10.0]", "shape": "[4, 4, 4]"},
    "model": {"width": "16", "depth": "2", "encoding": '"hash"', "bounds": "[-600.0, 600.0]"},
    "inference": {"method": '"ensemble"', "members": "4", "epochs": "10", "learning_rate": "0.01",
                  "prior_std": "50.0", "seed": "0"},
    "output": {"directory": '"results"', "threshold": "200.0", "formats": '["netcdf", "png"]'},
    "forward": {"mode": '"auto"', "dtype": '"float32"'},
}

values = st.one_of(
    st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(
        lambda x: "nan" if x != x else ("inf" if x == float("inf") else ("-inf" if x == float("-inf") else repr(x)))),
    st.text(string.ascii_letters + string.digits + " ._-", max_size=12).map(lambda t: '"' + t + '"'),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.lists(st.integers(-5, 5), max_size=4).map(lambda xs: "[" + ", ".join(map(str, xs)) + "]"),
    st.just("{ a = 1 }"), st.just("[[1], [2]]"),
)
keys = st.sampled_from([(section, key) for section, entries in BASE.items() for key in entries]
                       + [("model", "widht"), ("inference", "epoch"), ("data", "unit"), ("nosection", "x")])


def _toml(config: dict) -> str:
    return "\n".join(f"[{section}]\n" + "\n".join(f"{k} = {v}" for k, v in entries.items())
                     for section, entries in config.items()) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(keys, values), min_size=1, max_size=3))
def test_generated_configs_are_accepted_or_refused_clearly(tmp_path, changes):
    (tmp_path / "stations.csv").write_text("x,y,z,gz\n0,0,1,0.1\n")
    config = {section: dict(entries) for section, entries in BASE.items()}
    for (section, key), value in changes:
        config.setdefault(section, {})[key] = value
    path = tmp_path / "config.toml"
    try:
        parse_config(_toml(config), path)
    except InputError as error:
        message = str(error)
        assert message.startswith(str(path)), message
        assert "\n" not in message.strip()
        assert any(f"[{section}]" in message or key in message for (section, key), _ in changes), message


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_parser(text):
    try:
        parse_config(text, "/nonexistent/config.toml")
    except InputError as error:
        assert str(error).startswith("/nonexistent/config.toml")
