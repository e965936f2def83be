"""Keys a method does not read are named in a warning: a tikhonov run with `members` or
`prior_scale` is told they have no effect, rather than left to believe they took effect."""

from __future__ import annotations

import pytest

from gravuq.config import parse_config, unused_key_warning, unused_keys
from gravuq.config._checks import _settings
from gravuq.config._inference import InferenceConfig
from gravuq.config._usage import _inference_keys


def _config(tmp_path, inference: str, model: str = ""):
    (tmp_path / "stations.csv").write_text("x,y,z,gz,std\n0,0,1,0.1,0.01\n")
    text = f"""
[data]
path = "stations.csv"
[mesh]
origin = [0.0, 0.0, -100.0]
cell_size = [50.0, 50.0, 50.0]
shape = [2, 2, 2]
[inference]
{inference}
[model]
{model}
"""
    return parse_config(text, tmp_path / "config.toml")


def test_tikhonov_names_members_and_prior_scale(tmp_path):
    config = _config(tmp_path, 'method = "tikhonov"\nmembers = 20\nprior_scale = "learned"\ntarget_misfit = 1.0',
                     "width = 64\nbounds = [-500.0, 500.0]")
    assert unused_keys(config) == ["[inference] members", "[inference] prior_scale", "[model] width"]
    message = unused_key_warning(config)
    assert "tikhonov" in message and "[inference] members" in message and "no effect" in message
    assert "bounds" not in message and "target_misfit" not in message


def test_a_config_that_uses_every_key_it_sets_is_silent(tmp_path):
    config = _config(tmp_path, 'method = "ensemble"\nmembers = 10\nprior_scale = "hierarchical"\nepochs = 30',
                     "width = 64")
    assert unused_keys(config) == [] and unused_key_warning(config) is None


@pytest.mark.parametrize("inference, unused", [
    ('method = "ensemble"\ntrainer = "levenberg_marquardt"\nlearning_rate = 0.001', ["[inference] learning_rate"]),
    ('method = "ensemble"\ntrainer = "adam"\ncg_steps = 5', ["[inference] cg_steps"]),
    ('method = "ensemble"\nensemble_mode = "init"\nwarm_start = true', ["[inference] warm_start"]),
    ('method = "gaussian"\nepochs = 10\nsvgd_kernel = "weight"', ["[inference] epochs", "[inference] svgd_kernel"]),
    ('method = "svgd"\ntrainer = "adam"\nmembers = 4', ["[inference] trainer"]),
    ('method = "ensemble"\nensemble_mode = "rml"', ["[model] bounds"]),
    ('method = "ensemble"\nensemble_mode = "init"', []),
    ('method = "deterministic"\nmembers = 4\nnoise = "stated"', ["[inference] members", "[inference] noise"]),
])
def test_each_method_names_what_it_ignores(tmp_path, inference, unused):
    model = "bounds = [-500.0, 500.0]" if "ensemble_mode" in inference else ""
    assert unused_keys(_config(tmp_path, inference, model)) == unused


def test_the_table_knows_every_inference_key():
    """Every [inference] key is read by some method (a key nobody reads would be dead)."""
    methods = ("deterministic", "tikhonov", "gaussian", "ensemble", "svgd", "last_layer", "mcmc")
    read = set()
    for method in methods:
        for trainer in ("levenberg_marquardt", "adam"):
            for mode in ("rml", "init", "prior_function"):
                read |= _inference_keys(method, trainer, mode)
    assert set(_settings(InferenceConfig)) == read


def test_prepare_logs_the_warning(tmp_path):
    from gravuq.pipeline import prepare

    config = _config(tmp_path, 'method = "tikhonov"\nmembers = 3')
    messages = []
    prepare(config, messages.append)
    assert any(message.startswith("warning:") and "[inference] members" in message for message in messages)
