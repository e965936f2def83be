"""``gravuq report``: one self-contained HTML page for a finished run.

The page holds the run's numbers (``metrics.json``), the prior and noise model it learned, its
figures (embedded as base64 PNG, so the file can be mailed or archived and opens with no
network), the collar ranking when ``gravuq drill --collars`` wrote one, and beside each figure
what it can and cannot be trusted for. It reads only what the run wrote; nothing is recomputed
except a few counts from ``summary.nc`` (cells not resolved, how many draws the maps rest on).

Conventions (the same as every gravuq output): x easting, y northing, z elevation positive up,
metres; density contrast in kg/m^3; gz in mGal (1 mGal = 1e-5 m/s^2), positive downward;
probabilities in [0, 1].
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .io import write_text_atomic

#: The file ``gravuq report`` writes by default, inside the results folder.
REPORT_FILE = "report.html"

#: metrics.json keys shown in the table: (label, unit, what it means).
METRICS = {
    "chi2_per_datum": ("chi²/N of the mean model", "", ("misfit of the mean model's gz against the stated std; "
                       "about 1 fits the data to their noise, far below 1 fits the noise too")),
    "chi2_per_datum_learned": ("chi²/N against the learned noise", "", ("the same against the noise model the "
                               "method learned (stated std times a factor, plus a floor)")),
    "rms_mgal": ("RMS residual", "mGal", "root-mean-square of predicted minus observed gz"),
    "members": ("draws", "", "posterior draws (ensemble members, SVGD particles or exact draws)"),
    "members_chi2_mean": ("members' chi²/N, mean", "", "each draw's own data fit"),
    "runtime_s": ("runtime", "s", "wall time of the method (not of reading and writing)"),
    "model_rmse": ("model RMSE", "kg/m³", "root-mean-square difference of the mean from the truth"),
    "coverage_90": ("coverage of the 90 % interval", "", ("fraction of cells whose true density lies in "
                    "[q05, q95]; 0.90 is calibrated")),
    "coverage_90_above_threshold": ("coverage, cells above threshold", "", ("the same over the cells whose "
                                    "truth exceeds the threshold (the body a drill would target)")),
    "crps": ("CRPS", "kg/m³", "continuous ranked probability score, mean over cells (lower is better)"),
    "exceedance_auc": ("exceedance AUC", "", ("ROC area of P(density > threshold) against the true cells above "
                       "it (1 ranks every body cell first, 0.5 is chance)")),
}


@dataclass(frozen=True)
class Figure:
    """A figure of a run: its file, heading, what it can and cannot be trusted for."""

    file: str
    heading: str
    trust: str
    caveat: str


def _sampling(draws: int | None) -> tuple[str, float, float]:
    """(a phrase on the draws, the sd of a probability at p = 0.5, the resolution noise floor)."""
    if draws is None:
        return "exact Gaussian moments", 0.0, 0.0
    n = max(int(draws), 2)
    return f"{n} Monte-Carlo draws", 0.5 / math.sqrt(n), math.sqrt(2.0 / (n - 1))


def figures(method: str, draws: int | None, threshold: float, has_truth: bool) -> list[Figure]:
    """The figures a run may have written, in reading order, with what each can be trusted for.

    ``draws`` is the number of Monte-Carlo draws behind the spread maps, or None when they come
    from exact Gaussian moments (method ``gaussian``); ``threshold`` in kg/m^3.
    """
    source, p_error, floor = _sampling(draws)
    exact = draws is None
    probability_trust = ("Exact probabilities under the Gaussian prior and noise model." if exact else
                         f"Which regions are likely or unlikely to exceed {threshold:g} kg/m³, to within about "
                         f"±{p_error:.2f} (one sd at p = 0.5, from {source}); the colour bands are as fine as "
                         "the draws allow.")
    probability_caveat = ("Only as good as the Gaussian prior: a compact body with a sharp edge is smoother in "
                          "the prior than in the ground." if exact else
                          f"Probabilities within one band of each other cannot be told apart. A probability "
                          f"of 0 or 1 means none or all of "
                          f"{draws} draws, not certainty: with {draws} draws a true probability as low as "
                          f"{max(0.0, 1 - 3 / draws):.2f} can show as 1 (rule of three).")
    std_trust = ("Exact posterior sd under the Gaussian model." if exact else
                 f"Where the model is better or worse constrained, broadly; each sd is uncertain by about "
                 f"±{100 / math.sqrt(2 * (max(draws, 2) - 1)):.0f} % from {source}.")
    return [
        Figure("data_residuals.png", "Data fit: observed, predicted and residual gz",
               "Whether the mean model explains the data: residual/std should look like noise, mostly "
               "within ±2, with no pattern.",
               "A good fit says nothing about uniqueness: many density models fit gravity data equally well."),
        Figure("mean_slices.png", "Mean density contrast, depth slices",
               "The average of the posterior: where mass excess and deficit sit laterally"
               + (", compared with the truth outline (black)" if has_truth else "") + ".",
               "The mean is smoother and weaker than any one plausible model, and its depth is the least "
               "constrained part; do not read the mean as a picture of the ground."),
        Figure("truth_slices.png", "True density contrast (synthetic test)",
               "The model the data were made from, on the same colour scale as the mean.",
               "It is the answer of a synthetic test; a real survey has none, and a method that recovers "
               "one synthetic body well may do worse on another."),
        Figure("section.png", "Vertical section and profile with the 90 % band",
               "How the density varies with depth through the strongest anomaly, and the range the "
               "posterior allows (the band).",
               "The band of a cell is a marginal: neighbouring cells do not vary independently within it."),
        Figure("std_slices.png", "Posterior standard deviation, depth slices", std_trust,
               "Hatched grey cells are not resolved ("
               + ("posterior sd within 5 % of the prior sd" if exact else
                  f"posterior sd not distinguishable from the prior sd with {draws} draws")
               + "): their small or large sd is the prior's, not information from the data."),
        Figure("resolution_depth.png", "Resolution versus depth",
               "How much the data reduce the prior variance at each depth"
               + ("." if exact else f"; values below {floor:.2f} cannot be told from 0 with {source}."),
               "A layer average: a small resolved body can hide in a poorly resolved layer."),
        Figure("exceedance_slices.png", f"P(density > {threshold:g} kg/m³), depth slices", probability_trust,
               probability_caveat),
        Figure("drilling_map.png", "Drilling map", "Where in plan a target above the threshold is likely, and "
               "the depth below the surface (the ground under [mesh] topography, else the mesh top) to the "
               "first cell with P > 0.5.",
               "Depths to a target are the least certain part of a gravity inversion"
               + ("" if exact else "; with few draws a column's largest P is biased upward") + ". "
               + probability_caveat),
        Figure("training_curve.png", "Training misfit",
               "Whether each network reached the target misfit, and when it stopped.",
               "A low final misfit alone does not make a draw a good posterior sample."),
    ]


def _encoded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _number(value) -> str:
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, (int, float)):
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    return html.escape(str(value))


def _flatten(value, prefix: str = "") -> list[tuple[str, str]]:
    """``metrics.json`` nested values as (dotted key, text) rows; long lists summarised."""
    rows: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            rows += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        numbers = [item for item in value if isinstance(item, (int, float)) and not isinstance(item, bool)]
        if value and len(numbers) == len(value) and len(value) > 6:
            rows.append((prefix, f"{len(value)} values, {min(numbers):.4g} .. {max(numbers):.4g}"))
        elif all(not isinstance(item, (dict, list)) for item in value):
            rows.append((prefix, ", ".join(_number(item) for item in value)))
        else:
            rows.append((prefix, f"{len(value)} entries"))
    else:
        rows.append((prefix, _number(value)))
    return rows


def _table(rows, header=None) -> str:
    parts = ["<table>"]
    if header:
        parts.append("<tr>" + "".join(f"<th>{html.escape(cell)}</th>" for cell in header) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid JSON ({error}); was it written by gravuq?") from None


def _summary_facts(path: Path, draws: int | None) -> dict:
    """Counts from ``summary.nc``: method, threshold, cells, and the fraction of cells not
    resolved by the rule the figures hatch (:func:`gravuq.io.plots.unresolved_ratio` of ``draws``,
    None for exact moments)."""
    import xarray as xr

    from .io.plots import unresolved_ratio

    facts: dict = {}
    try:
        with xr.open_dataset(path) as summary:
            facts["method"] = str(summary.attrs.get("method", ""))
            facts["threshold"] = float(summary.attrs.get("threshold", float("nan")))
            facts["cells"] = int(summary["mean"].size) if "mean" in summary else 0
            facts["shape"] = tuple(int(summary.sizes[name]) for name in ("x", "y", "z") if name in summary.sizes)
            if "std" in summary and "prior_std" in summary:
                std, prior = summary["std"].values, summary["prior_std"].values
                valid = np.isfinite(std) & np.isfinite(prior) & (prior > 0)
                if valid.any():
                    facts["unresolved"] = float(np.mean(std[valid] >= unresolved_ratio(draws) * prior[valid]))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot be read as a gravuq summary ({error})") from None
    return facts


def _ranking(path: Path, draws: int | None) -> str:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        return "<p>The ranking file holds no holes.</p>"
    header, body = rows[0], rows[1:21]
    note = ("" if draws is None else
            f"<p class='caveat'>probability_hit is the fraction of the {draws} draws in which the hole meets "
            f"density above the threshold: 1.0 means {draws} of {draws}, not certainty (a true probability as "
            f"low as {max(0.0, 1 - 3 / draws):.2f} is consistent with it), and ranks that differ by less than "
            f"about {0.5 / math.sqrt(draws):.2f} in probability_hit are not distinguishable.</p>")
    cells = [[html.escape(cell) for cell in row] for row in body]
    more = f"<p>First 20 of {len(rows) - 1} holes; all are in {html.escape(path.name)}.</p>" if len(rows) > 21 else ""
    return note + _table(cells, header) + more


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
.trust { background: #eef7ee; border-left: 4px solid #4a4; padding: 0.4em 0.8em; margin: 0.3em 0; }
.caveat { background: #fbf1e6; border-left: 4px solid #d80; padding: 0.4em 0.8em; margin: 0.3em 0; }
.meta { color: #555; }
"""


def build_report(directory: str | Path) -> str:
    """The HTML text of the report of the results folder ``directory``.

    Raises
    ------
    InputError
        ``directory`` is missing, is a file, or holds neither ``summary.nc`` nor
        ``metrics.json`` (it is not the output folder of a gravuq run).
    """
    directory = Path(directory)
    if not directory.exists():
        raise InputError(f"{directory}: results folder not found (expected the [output] directory of a gravuq "
                         "ensemble, invert or demo run)")
    if not directory.is_dir():
        raise InputError(f"{directory}: expected a results folder, found a file")
    summary_path, metrics_path = directory / "summary.nc", directory / "metrics.json"
    if not summary_path.is_file() and not metrics_path.is_file():
        hint = ""
        if (directory / "comparison.csv").is_file():
            hint = " (this is a gravuq compare folder: report one method's subfolder, e.g. its ensemble/)"
        elif (directory / "results" / "summary.nc").is_file():
            hint = f" (did you mean {directory / 'results'}?)"
        raise InputError(f"{directory}: not a gravuq results folder: it holds neither summary.nc nor metrics.json"
                         + hint)
    metrics = _read_json(metrics_path)
    run = _read_json(directory / "run.json")
    method = str(metrics.get("method") or run.get("method") or "unknown")
    draws_total = metrics.get("members")
    probabilistic = isinstance(draws_total, int) and draws_total > 1
    exact = method == "gaussian"  # its maps come from the exact moments
    draws = None if exact else (draws_total if probabilistic else None)
    facts = _summary_facts(summary_path, draws) if summary_path.is_file() else {}
    if method == "unknown" and facts.get("method"):
        method = facts["method"]
    threshold = facts.get("threshold", float("nan"))
    has_truth = "model_rmse" in metrics

    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>gravuq report: {html.escape(method)}, {html.escape(directory.name)}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>gravuq run report: {html.escape(method)}</h1>"]
    meta = [f"folder {html.escape(str(directory.resolve()))}"]
    for key, label in (("started_at", "started"), ("finished_at", "finished"), ("status", "status"),
                       ("config_hash", "config SHA-256")):
        if key in run:
            meta.append(f"{label} {html.escape(str(run[key]))}")
    version = run.get("versions", {}).get("gravuq") if isinstance(run.get("versions"), dict) else None
    if version:
        meta.append(f"gravuq {html.escape(str(version))}")
    parts.append(f"<p class='meta'>{' · '.join(meta)}</p>")
    parts.append("<p>Units: density contrast in kg/m³; gz in mGal (1 mGal = 10⁻⁵ m/s²), positive downward; "
                 "x east, y north, z elevation positive up, in m. Probabilities lie in [0, 1]. "
                 "The gravuq manual (docs/ in the gravuq repository) describes every file and method.</p>")

    # What the spread rests on: the most important caveat of all, first.
    if probabilistic:
        source, p_error, _ = _sampling(draws)
        line = (f"The spread of this run comes from <b>{source}</b>." if not exact else
                "The spread of this run comes from <b>exact Gaussian moments</b> (no sampling error).")
        if draws is not None:
            line += (f" Probabilities are uncertain by about ±{p_error:.2f}; {math.ceil(1 / 0.05**2 / 4)} "
                     "draws would bring that to ±0.05.")
        if "unresolved" in facts:
            rule = ("posterior sd within 5 % of the prior sd" if draws is None else
                    f"posterior sd not distinguishable from the prior sd with {draws} draws")
            line += (f" {facts['unresolved']:.0%} of the cells are <b>not resolved</b> ({rule}): there the maps "
                     "show the prior, not the data.")
        parts.append(f"<p class='caveat'>{line}</p>")
    elif metrics or facts:
        parts.append("<p class='caveat'>This run has a single model and no posterior draws: it says nothing about "
                     "how uncertain the model is.</p>")

    parts.append("<h2>Run metrics</h2>")
    rows = []
    for key, (label, unit, meaning) in METRICS.items():
        if key in metrics and metrics[key] is not None:
            value = _number(metrics[key])
            if key == "members_chi2_mean" and "members_chi2_min" in metrics:
                value += f" (range {_number(metrics['members_chi2_min'])} .. {_number(metrics['members_chi2_max'])})"
            rows.append([html.escape(label), value, html.escape(unit), html.escape(meaning)])
    if not math.isnan(threshold):
        rows.append(["threshold", _number(threshold), "kg/m³", "density contrast of the exceedance maps"])
    for key in ("trainer", "ensemble_mode", "encoding", "warm_start", "kept_state"):
        if key in metrics:
            rows.append([html.escape(key), _number(metrics[key]), "", "how the method ran"])
    parts.append(_table(rows, ["quantity", "value", "unit", "meaning"]) if rows else "<p>No metrics.json.</p>")
    diverged = metrics.get("diverged_members") or []
    if diverged:
        parts.append(f"<p class='caveat'>{len(diverged)} member(s) diverged and were left out of the posterior.</p>")

    prior = metrics.get("prior")
    if isinstance(prior, dict) and prior:
        parts.append("<h2>Learned settings (prior and noise model)</h2>")
        parts.append("<p>What the run chose or learned from the data (empirical Bayes: the prior's scale, depth "
                     "weighting and correlation lengths and the noise model by maximising the evidence). Lengths "
                     "in m, prior sd in kg/m³, noise floor in mGal (with several components, each component's floor "
                     "in its unit: Eotvos for gradients).</p>")
        main = {key: prior[key] for key in ("chosen", "prior_scale", "noise", "hyperparameters") if key in prior}
        if isinstance(prior.get("hierarchical"), dict):
            main["per-cell prior sd"] = {key: prior["hierarchical"][key] for key in ("prior_std_min", "prior_std_max",
                                                                                    "correlation_length")
                                         if key in prior["hierarchical"]}
        parts.append(_table([[html.escape(key), value] for key, value in _flatten(main or prior)],
                            ["setting", "value"]))
        parts.append("<details><summary>Everything metrics.json records about the prior (evidences, "
                     "leave-one-out scores, timings)</summary>"
                     + _table([[html.escape(key), value] for key, value in _flatten(prior)], ["setting", "value"])
                     + "</details>")

    parts.append("<h2>Maps</h2>")
    shown = set()
    for figure in figures(method, draws, threshold, has_truth):
        path = directory / figure.file
        if not path.is_file():
            continue
        shown.add(figure.file)
        parts.append(f"<figure><h3>{html.escape(figure.heading)}</h3>"
                     f"<img alt='{html.escape(figure.heading)}' src='data:image/png;base64,{_encoded(path)}'>"
                     f"<figcaption><p class='trust'><b>Can be trusted for:</b> {html.escape(figure.trust)}</p>"
                     f"<p class='caveat'><b>Cannot be trusted for:</b> {html.escape(figure.caveat)}</p>"
                     "</figcaption></figure>")
    others = sorted(path for path in directory.glob("*.png") if path.name not in shown)
    if others:
        parts.append("<h2>Drill holes and other figures</h2>")
        for path in others:
            parts.append(f"<figure><h3>{html.escape(path.name)}</h3>"
                         f"<img alt='{html.escape(path.name)}' src='data:image/png;base64,{_encoded(path)}'>"
                         "<figcaption><p class='caveat'>A log along a planned hole samples the same posterior as "
                         "the maps: its band and probabilities carry the same sampling error.</p></figcaption>"
                         "</figure>")
    rankings = sorted(directory.glob("*ranking*.csv"))
    if rankings:
        parts.append("<h2>Collar ranking</h2>")
        for path in rankings:
            parts.append(f"<h3>{html.escape(path.name)}</h3>" + _ranking(path, draws))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(directory: str | Path, output: str | Path | None = None) -> Path:
    """Write :func:`build_report` of ``directory`` to ``output`` (default
    ``directory/report.html``), atomically; returns its path."""
    text = build_report(directory)
    path = Path(output) if output is not None else Path(directory) / REPORT_FILE
    write_text_atomic(path, text)
    return path


__all__ = ["REPORT_FILE", "Figure", "build_report", "figures", "write_report"]
