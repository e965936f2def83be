"""``gravuq validate``: the held-out check refits without a random quarter of the stations and
scores its predictions of them against Harmonica's equivalent sources in the same run.

The case is the tiny one of ``helpers.Case`` (64 stations over a +400 kg/m^3 block, gz in mGal
positive down, 1 % noise), method ``gaussian`` with the learned prior and noise.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import check_success, invoke

from gravuq.validate import split_stations


def test_the_split_is_seeded_and_disjoint():
    kept, held = split_stations(64, 0.25, seed=3)
    assert held.size == 16 and kept.size == 48
    assert np.intersect1d(kept, held).size == 0 and np.union1d(kept, held).size == 64
    again_kept, again_held = split_stations(64, 0.25, seed=3)
    assert np.array_equal(held, again_held)
    assert not np.array_equal(held, split_stations(64, 0.25, seed=4)[1])


def test_validate_predicts_held_out_stations_and_scores_the_peer(case):
    pytest.importorskip("harmonica")
    config = case.config("validate", method="gaussian", inference="members = 8\n", formats=("netcdf",))
    result = invoke("validate", config, "--holdout", "0.25", "-q")
    check_success(result)
    assert "held-out RMSE" in result.output and "equivalent sources" in result.output
    folder = case.results("validate") / "validate"
    report = json.loads((folder / "validation.json").read_text())
    assert report["held_out"] == 16 and report["stations"] == 64
    scores = report["gravuq"]
    # The block's anomaly is smooth at the station spacing: a model of it predicts unseen
    # stations far better than their mean (R^2 = 0) and about as well as an interpolator.
    assert scores["r2"] > 0.9, scores
    assert 0.0 <= scores["coverage_90"] <= 1.0 and scores["crps_mgal"] > 0
    peer = report["equivalent_sources"]
    assert peer["r2"] > 0.5 and peer["depth_m"] > 0
    lines = (folder / "held_out.csv").read_text().splitlines()
    assert lines[0].split(",") == ["row", "x", "y", "z", "gz_observed", "gz_mean", "gz_obs_std",
                                   "gz_equivalent_sources"]
    assert len(lines) == 17
    held_rows = [int(line.split(",")[0]) for line in lines[1:]]
    assert held_rows == report["held_out_rows"]


def test_a_holdout_outside_zero_to_one_is_an_input_error(case):
    config = case.config("validate_bad", method="gaussian")
    result = invoke("validate", config, "--holdout", "1.5", "-q")
    assert result.exit_code == 2 and "--holdout" in result.output
