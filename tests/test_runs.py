"""Nothing lost: checkpoint and resume, run records, the output-folder guard, reproducibility.

Uses the tiny case of ``test_cli`` (8 x 8 x 4 cells, 64 stations) with small networks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from gravuq.config import load_config
from gravuq.errors import InputError
from gravuq.runs import run_command

from helpers import invoke

ENSEMBLE = ("ensemble", "gaussian")


def _interrupt_after(epochs: int):
    """A progress callback that behaves like Ctrl-C once ``epochs`` epochs have run."""
    def progress(total, description):
        class Bar:
            done = 0

            def update(self, count):
                self.done += count
                if self.done >= epochs:
                    raise KeyboardInterrupt

            def set_postfix_str(self, text):
                pass

            def close(self):
                pass

        return Bar()
    return progress


def _summary(directory):
    with xr.open_dataset(directory / "summary.nc") as dataset:
        return {name: dataset[name].values.copy() for name in ("mean", "std", "q05", "q95")}


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(case):
    inference = 'ensemble_mode = "init"\npatience = 0\ntarget_misfit = 1e-6\n'
    straight = load_config(case.config("straight", inference=inference.replace("50", "50")))
    run_command(straight, "ensemble", ENSEMBLE)
    expected = _summary(case.results("straight"))

    interrupted = load_config(case.config("interrupted", inference=inference))
    # A checkpoint every 10 epochs (two of Levenberg-Marquardt's 5-epoch chunks); Ctrl-C after the
    # first: the members reach the target at about epoch 20 (measured), so they are mid-training.
    with pytest.raises(KeyboardInterrupt):
        run_command(interrupted, "ensemble", ENSEMBLE, progress=_interrupt_after(10), checkpoint_every=10)
    record = json.loads((case.results("interrupted") / "run.json").read_text())
    assert record["status"] == "interrupted"
    manifest = json.loads((case.results("interrupted") / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["epoch"] == 10
    assert not (case.results("interrupted") / "summary.nc").exists()

    run_command(interrupted, "ensemble", ENSEMBLE, resume=True, checkpoint_every=10)
    resumed = _summary(case.results("interrupted"))
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name])
    record = json.loads((case.results("interrupted") / "run.json").read_text())
    assert record["status"] == "complete" and record["config_hash"] == interrupted.hash
    assert {"jax", "equinox", "numpy", "gravuq"} <= set(record["versions"])


@pytest.mark.slow
def test_resume_with_a_changed_config_is_refused(case):
    # Adam: a first-order run is still going after 25 epochs (Gauss-Newton reaches the target sooner).
    first = load_config(case.config("changed", inference='ensemble_mode = "init"\ntrainer = "adam"\n'))
    with pytest.raises(KeyboardInterrupt):
        run_command(first, "ensemble", ENSEMBLE, progress=_interrupt_after(25), checkpoint_every=25)
    changed = load_config(case.config("changed", inference='ensemble_mode = "init"\ntrainer = "adam"\nlearning_rate = 0.02\n'))
    with pytest.raises(InputError, match="different config"):
        run_command(changed, "ensemble", ENSEMBLE, resume=True)
    result = invoke("ensemble", case.folder / "changed.toml", "--resume")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_resume_without_a_checkpoint_exits_2(case):
    config = case.config("fresh", inference='ensemble_mode = "init"\n')
    result = invoke("ensemble", config, "--resume", "-q")
    assert result.exit_code == 2
    assert "no checkpoint" in result.output


def test_results_of_another_config_are_not_overwritten_without_force(case):
    config = case.config("guarded", method="gaussian")
    assert invoke("ensemble", config, "-q").exit_code == 0
    before = (case.results("guarded") / "summary.nc").read_bytes()
    # The same config may rerun into its own folder (here: recognised as finished, kept).
    assert invoke("ensemble", config, "-q").exit_code == 0
    assert invoke("ensemble", config, "-q", "--force").exit_code == 0
    before = (case.results("guarded") / "summary.nc").read_bytes()
    other = case.config("guarded", method="gaussian", inference='prior_scale = "fixed"\nprior_std = 80.0\n')
    result = invoke("ensemble", other, "-q")
    assert result.exit_code == 2 and "--force" in result.output
    assert (case.results("guarded") / "summary.nc").read_bytes() == before
    assert invoke("ensemble", other, "-q", "--force").exit_code == 0
    assert (case.results("guarded") / "summary.nc").read_bytes() != before


def test_the_same_config_and_seed_give_identical_summaries(case):
    config = case.config("repeat", method="gaussian")
    assert invoke("ensemble", config, "-q").exit_code == 0
    first = _summary(case.results("repeat"))
    # Without --force the finished results would be recognised and kept, not recomputed.
    assert invoke("ensemble", config, "-q", "--force").exit_code == 0
    second = _summary(case.results("repeat"))
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    record = json.loads((case.results("repeat") / "run.json").read_text())
    assert record["seed"] == 0 and record["status"] == "complete"


def test_an_ensemble_needs_two_members(case):
    config = case.config("single", inference="", method="gaussian")
    config.write_text(config.read_text().replace("members = 4", "members = 1"))
    result = invoke("ensemble", config, "-q")
    assert result.exit_code == 2 and "members" in result.output
    assert not case.results("single").exists()
