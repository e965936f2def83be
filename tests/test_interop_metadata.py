"""What other software reads from gravuq's files: units on every ArviZ group, a note on why r_hat
is NaN for one chain of independent draws, and the method, threshold and units in a .vtr."""

from __future__ import annotations

import logging
from xml.etree import ElementTree

import numpy as np
import xarray as xr

from gravuq.io import export_vtk
from gravuq.mesh import TensorMesh
from gravuq.posterior import inference_data
from gravuq.survey import Survey


def _idata(chains=1, draws=6):
    mesh = TensorMesh.uniform((0.0, 0.0, -60.0), (20.0, 10.0, 30.0), (3, 2, 2))
    rng = np.random.default_rng(0)
    survey = Survey.from_arrays(np.array([0.0, 10.0, 20.0]), np.array([5.0, 5.0, 5.0]), np.zeros(3),
                                np.array([0.1, 0.2, 0.15]), np.array([0.01, 0.02, 0.03]))
    return inference_data(mesh, survey, rng.normal(size=(draws, mesh.n_cells)), rng.normal(0.15, 0.02, (draws, 3)),
                          "ensemble", "9.9", "[data]\n", chains=chains)


def test_every_group_names_its_units():
    idata = _idata()
    assert idata.posterior["density"].attrs["units"] == "kg/m^3"
    assert "mGal" in idata.posterior_predictive["gz"].attrs["units"]
    assert "mGal" in idata.observed_data["gz"].attrs["units"]
    assert "nats" in idata.log_likelihood["gz"].attrs["units"]
    assert "az.loo" in idata.log_likelihood["gz"].attrs["note"]
    for name, unit in (("x", "m"), ("y", "m"), ("std", "mGal")):
        assert idata.constant_data[name].attrs["units"] == unit


def test_one_chain_of_members_explains_r_hat_and_the_quantiles():
    note = _idata().posterior.attrs["draws_note"]
    assert "one chain" in note and "r_hat" in note and "kind='stats'" in note
    assert "q05/q95" in note and "HDI" in note
    assert "MCMC chains" in _idata(chains=2).posterior.attrs["draws_note"]


def test_the_stats_summary_gives_no_shape_warning(caplog):
    import arviz as az

    with caplog.at_level(logging.WARNING):
        table = az.summary(_idata(), kind="stats", hdi_prob=0.9)
    assert "Shape validation failed" not in caplog.text
    assert {"mean", "sd", "hdi_5%", "hdi_95%"} <= set(table.columns)


class _Results:
    def __init__(self):
        self.mesh = TensorMesh.uniform((0.0, 0.0, -60.0), (20.0, 10.0, 30.0), (3, 2, 2))
        values = np.arange(self.mesh.n_cells, dtype=float).reshape(self.mesh.shape)
        self.summary = xr.Dataset({"mean": (("z", "y", "x"), values), "exceedance": (("z", "y", "x"), values / 12)},
                                  attrs={"method": "gaussian", "threshold": 150.0})


def test_vtr_carries_method_threshold_and_units(tmp_path):
    path = export_vtk(_Results(), tmp_path / "s.vtr")
    text = path.read_text()
    assert "method gaussian" in text and "mean kg/m^3" in text and "exceedance (probability" in text
    root = ElementTree.parse(path).getroot()
    field = root.find("RectilinearGrid/FieldData/DataArray")
    assert field.get("Name") == "threshold_kg_m3" and field.get("NumberOfTuples") == "1"
    assert float(field.text) == 150.0
