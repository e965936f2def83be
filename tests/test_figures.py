"""What the figures say about maps from few draws: banded probability scales, the Monte-Carlo
error in the title, "not resolved" hatching, one colour scale for truth and mean, the truth
outline, and the same section in section.png and comparison_sections.png."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from gravuq.io import plots
from gravuq.io.plots import _common, _maps, _sections
from gravuq.mesh import TensorMesh


@pytest.fixture
def captured(monkeypatch):
    """Figures handed to ``save`` are kept (and not written) so their contents can be checked."""
    figures = []

    def keep(figure, path):
        figures.append(figure)

    for module in (_maps, _sections):
        monkeypatch.setattr(module, "save", keep)
    yield figures
    for figure in figures:
        _common.plt.close(figure)


@pytest.fixture
def mesh():
    return TensorMesh.uniform((0.0, 0.0, -400.0), (100.0, 100.0, 100.0), (6, 5, 4))


def _body(mesh):
    truth = np.zeros(mesh.shape)
    truth[1:3, 2:4, 2:4] = 400.0
    return truth


@pytest.mark.parametrize("draws, bands", [(None, 10), (4, 2), (10, 3), (20, 4), (100, 10), (10_000, 10)])
def test_probability_bands_follow_the_sampling_error(draws, bands):
    assert plots.probability_bands(draws) == bands
    if draws is not None:  # a band is at least two standard errors (at p = 0.5) wide
        assert 1.0 / bands >= 2 * 0.5 / np.sqrt(draws) - 1e-12


def test_monte_carlo_notes_state_the_error():
    assert "±0.16" in plots.monte_carlo_note("probability", 10)
    assert "24 %" in plots.monte_carlo_note("std", 10)
    assert "0.47" in plots.monte_carlo_note("resolution", 10)
    assert "exact" in plots.monte_carlo_note("std", None)
    with pytest.raises(ValueError):
        plots.monte_carlo_note("mean", 10)


def test_the_unresolved_rule():
    assert plots.unresolved_ratio(None) == pytest.approx(0.95)
    assert plots.unresolved_ratio(10) == pytest.approx(np.sqrt(1 - np.sqrt(2 / 9)))
    assert plots.unresolved_ratio(10) < plots.unresolved_ratio(100) <= 0.95
    assert plots.unresolved_ratio(10**6) == pytest.approx(0.95)


def test_strongest_cell_is_the_middle_of_a_uniform_body(mesh):
    truth = _body(mesh)
    k, j, i = plots.strongest_cell(mesh, truth)
    assert truth[k, j, i] == 400.0
    assert (j, i) in {(2, 2), (2, 3), (3, 2), (3, 3)}


def test_exceedance_colour_bar_is_banded_and_the_title_names_the_error(mesh, captured):
    exceedance = np.random.default_rng(0).integers(0, 11, mesh.shape) / 10.0
    plots.depth_slices("unused.png", mesh, exceedance, "probability", "P", draws=10,
                       note=plots.monte_carlo_note("probability", 10))
    figure = captured[-1]
    image = figure.axes[0].collections[0]
    assert isinstance(image.norm, matplotlib.colors.BoundaryNorm)
    np.testing.assert_allclose(image.norm.boundaries, np.linspace(0, 1, 4))
    assert "10 draws" in figure._suptitle.get_text() and "±0.16" in figure._suptitle.get_text()


def test_truth_and_mean_share_a_scale_and_the_truth_is_outlined(mesh, captured):
    truth = _body(mesh)
    mean = 0.5 * truth  # weaker than the truth, as a mean is
    plots.depth_slices("mean.png", mesh, mean, "contrast", "mean", scale_with=truth, outline=truth, outline_level=200.0)
    plots.depth_slices("truth.png", mesh, truth, "contrast", "truth", scale_with=mean, outline=truth,
                       outline_level=200.0)
    mean_norm = captured[0].axes[0].collections[0].norm
    truth_norm = captured[1].axes[0].collections[0].norm
    assert (mean_norm.vmin, mean_norm.vmax) == (truth_norm.vmin, truth_norm.vmax) == (-400.0, 400.0)
    # The layers holding the body carry a line collection: the cell-face outline of truth > 200.
    maps = [axis for axis in captured[0].axes if axis.get_label() != "<colorbar>"]
    lines = [axis for axis in maps if any(isinstance(item, matplotlib.collections.LineCollection)
                                          for item in axis.collections)]
    assert len(lines) == 2
    assert "truth > 200" in captured[0]._suptitle.get_text()


def test_outline_follows_cell_faces():
    figure, axis = _common.plt.subplots()
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    _common.outline_cells(axis, np.arange(4.0), np.arange(4.0), mask)
    segments = axis.collections[0].get_segments()
    assert len(segments) == 4  # one square cell: four faces
    corners = {tuple(point) for segment in segments for point in segment}
    assert corners == {(1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (2.0, 2.0)}
    _common.plt.close(figure)


def test_hatching_covers_exactly_the_unresolved_cells():
    """Runs of masked cells along a row are one box each; together they cover the masked cells
    and nothing else (non-uniform widths, runs touching both edges, an empty row)."""
    rng = np.random.default_rng(2)
    mask = rng.uniform(size=(5, 9)) < 0.6
    mask[0], mask[1], mask[2, 0], mask[2, -1] = True, False, True, True
    x_nodes, y_nodes = np.cumsum(rng.uniform(1, 3, 10)), np.cumsum(rng.uniform(1, 3, 6))
    figure, axis = _common.plt.subplots()
    _common.mark_unresolved(axis, x_nodes, y_nodes, mask)
    covered = np.zeros(mask.shape, int)
    centres_x, centres_y = 0.5 * (x_nodes[1:] + x_nodes[:-1]), 0.5 * (y_nodes[1:] + y_nodes[:-1])
    for path in axis.collections[0].get_paths():
        (west, south), (east, north) = path.vertices.min(0), path.vertices.max(0)
        covered += np.outer((centres_y > south) & (centres_y < north), (centres_x > west) & (centres_x < east))
    assert np.array_equal(covered, mask.astype(int))  # every masked cell once, no other
    assert len(axis.collections[0].get_paths()) < mask.sum()
    _common.plt.close(figure)


def test_unresolved_cells_are_hatched(mesh, captured):
    std = np.full(mesh.shape, 10.0)
    unresolved = np.zeros(mesh.shape, bool)
    unresolved[0] = True  # the bottom layer
    plots.depth_slices("std.png", mesh, std, "std", "std", unresolved=unresolved)
    figure = captured[-1]
    hatched = [axis for axis in figure.axes if any(item.get_hatch() for item in axis.collections)]
    assert len(hatched) == 1 and "z = -400..-300" in hatched[0].get_title()
    assert "not resolved" in figure._suptitle.get_text()


def test_section_cuts_through_the_truth_when_there_is_one(mesh, captured):
    truth = _body(mesh)
    mean = np.zeros(mesh.shape)
    mean[3, 0, 0] = 900.0  # a spurious mean peak elsewhere
    plots.section_with_band("section.png", mesh, mean, None, None, truth, "t", 200.0)
    title = captured[-1].axes[0].get_title()
    _, j, _ = plots.strongest_cell(mesh, truth)
    assert f"y = {mesh.centers_y[j]:.0f} m" in title


def test_resolution_depth_recomputes_unclipped_and_shades_the_noise(mesh, captured):
    prior = np.full(mesh.n_cells, 100.0)
    std = np.full(mesh.n_cells, 100.0) * np.random.default_rng(1).uniform(0.8, 1.2, mesh.n_cells)
    resolution = np.clip(1 - (std / prior) ** 2, 0, 1)
    plots.resolution_depth("r.png", mesh, resolution, std, prior, draws=10)
    axis = captured[-1].axes[0]
    median = axis.lines[0].get_xdata()
    assert np.all(np.abs(median) < 0.3)  # about 0, not the mean of clipped noise
    assert axis.get_xlim()[0] < 0
    assert "10 draws" in axis.get_title()
