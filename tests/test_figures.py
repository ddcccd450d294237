"""Every figure goes through plots.py's one style (width, dpi, constrained layout) and no title overlaps an axes;
tune's own figures: history with best-so-far, importances only from enough trials, readable parameter values."""

from __future__ import annotations

import inspect
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnforecast import plots
from rnnforecast.intervals import quantile_levels, quantile_name

LEVELS = [80, 95]


def png_size_and_dpi(path: Path) -> tuple[int, int, float]:
    """Width and height in pixels from IHDR and the dpi from pHYs (pixels per metre), read from the bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    at = data.index(b"pHYs")
    ppm_x, ppm_y, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1 and ppm_x == ppm_y, path
    # the chunk's CRC covers type and data: a misread offset fails here, not as a wrong dpi
    assert struct.unpack(">I", data[at + 13 : at + 17])[0] == zlib.crc32(data[at : at + 13]), path
    return width, height, ppm_x * 0.0254


# --------------------------------------------------------------------------- synthetic inputs for every figure


def _compare_record() -> tuple[dict, dict, dict, dict]:
    rng = np.random.default_rng(1)
    cells = ["gru", "lstm", "simple_rnn"]
    keys = ("params", "seconds_per_epoch", "test_mse", "test_mae")

    def block(scale):
        return {
            "mean": {**{k: float(scale * (i + 1)) for i, k in enumerate(keys)}, "test_mse_by_lead": [scale, 2 * scale]},
            "std": {**{k: 0.1 for k in keys}, "test_mse_by_lead": [0.1, 0.2]},
        }

    record = {
        "cells": cells,
        "seeds": [1, 2],
        "targets": ["temp"],
        "target_units": {"temp": "°C"},
        "loss": "mse",
        "results": {c: block(1.0 + k) for k, c in enumerate(cells)},
        "baselines": {"persistence": {"test_mse": 2.5, "test_mae": 1.4, "test_mse_by_lead": [2.0, 3.0]}},
    }
    record["results"]["gru"]["mean"]["params"] = 50.0  # spans > 10x: a log axis
    record["results"]["simple_rnn"]["mean"]["params"] = 5000.0
    curves = {c: [list(1 / np.arange(1, 4) + k) for k in range(2)] for c in cells}
    times = pd.date_range("2020-01-01", periods=30, freq="D").to_numpy()
    actual = np.sin(np.arange(30) / 4)
    overlay = {"target": "temp", "times": times, "actual": list(actual), "starts": list(range(30))}
    forecasts = {c: list(actual + 0.1 * rng.standard_normal(30)) for c in cells}
    return record, curves, overlay, forecasts


def _backtest_inputs() -> tuple[dict, pd.DataFrame]:
    qs = quantile_levels(LEVELS)
    names = ("model", "persistence", "seasonal_naive")
    record = {
        "targets": ["y"],
        "levels": LEVELS,
        "folds": [{"origin": "2020-01-05T00:00:00"}, {"origin": "2020-01-09T00:00:00"}],
        "aggregate": {
            "scores": {
                n: {
                    "mae": {"per_fold": [1.0 + k, 1.2 + k], "per_lead": {"mean": [1.0 + k, 1.5 + k], "std": [0.1, 0.2]}}
                }
                for k, n in enumerate(names)
            }
        },
    }
    t = pd.date_range("2020-01-05", periods=8, freq="D")
    y = np.cos(np.arange(8))
    rows = {"lead": 1, "target": "y", "target_time": t, "actual": y, "forecast": y + 0.2}
    rows.update({quantile_name(q): y + 2 * (q - 0.5) for q in qs})
    return record, pd.DataFrame(rows)


def _inspect_entries() -> tuple[list[dict], plots.TimeAxis]:
    rng = np.random.default_rng(2)
    L, U = 6, 4
    entry = {"name": "lstm_1", "cell": "lstm", "units": U, "bidirectional": False}
    for key in ("hidden", "cell_state"):
        entry[key] = rng.uniform(-1, 1, (1, L, U))
    for gate in ("input_gate", "forget_gate", "output_gate"):
        entry[gate] = rng.uniform(0, 1, (1, L, U))
    entry["saturation"] = {g: {"low": [0.1, 0.2, 0.0, 0.3], "high": [0.5, 0.1, 0.2, 0.0]} for g in ("input_gate",)}
    return [entry], plots.TimeAxis(L, 3600)


def _study(n_complete: int, seed: int = 0):
    """An in-memory optuna study with ``n_complete`` complete trials and one pruned, the objective known."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    study = optuna.create_study(direction="minimize")
    dists = {
        "model.units": CategoricalDistribution(["json:[64]", "json:[32, 32]"]),
        "training.learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    }
    for i in range(n_complete):
        units = ["json:[64]", "json:[32, 32]"][i % 2]
        lr = float(10 ** rng.uniform(-4, -1))
        value = (1.0 if units == "json:[64]" else 2.0) + 0.01 * lr  # units decide the objective
        study.add_trial(
            optuna.trial.create_trial(
                params={"model.units": units, "training.learning_rate": lr}, distributions=dists, value=value
            )
        )
    study.add_trial(
        optuna.trial.create_trial(
            params={"model.units": "json:[64]", "training.learning_rate": 0.01},
            distributions=dists,
            state=optuna.trial.TrialState.PRUNED,
        )
    )
    return study


def _decode(v):
    import json

    return json.loads(v[5:]) if isinstance(v, str) and v.startswith("json:") else v


def draw_every_figure(out: Path) -> dict[str, Path]:
    """Each figure function of plots.py once, on small non-degenerate inputs; name -> the PNG it wrote."""
    rng = np.random.default_rng(0)
    B, H = 40, 3
    times = pd.date_range("2021-01-01", periods=B + H, freq="h").to_numpy()
    win_times = np.stack([times[i : i + H] for i in range(B)])  # (B, H)
    actual = np.stack([np.sin(np.arange(i, i + H) / 5) for i in range(B)])  # (B, H)
    pred = actual + 0.1 * rng.standard_normal((B, H))
    q = quantile_levels(LEVELS)
    bands = pred[..., None] + (q - 0.5)[None, None, :]  # (B, H, Q)
    plots.loss({"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.6]}, 3, out / "loss.png")
    panel = plots.ForecastPanel("temp", win_times, actual, pred, bands, "temp (°C)")
    plots.forecast([panel, panel], out / "forecast.png", "test", LEVELS, "not shown: 1 more series (b)")
    per_lead = {"model": {"mae": [0.1, 0.2, 0.3]}, "persistence": {"mae": [0.2, 0.3, 0.5]}}
    plots.error_by_horizon(per_lead, out / "error_by_horizon.png", "°C")
    plots.residuals((pred - actual).ravel(), "temp", out / "residuals.png", "°C")
    plots.predict_plot(
        times[:20], actual[:20, 0], times[20:23], pred[20], "temp", out / "forecast_next.png", "°C", bands[20], LEVELS
    )
    plots.compare_plots(out / "compare", *_compare_record())
    record, predictions = _backtest_inputs()
    plots.backtest_plots(out / "backtest", record, predictions, {"y": "kW"})
    layers, axis = _inspect_entries()
    (out / "inspect").mkdir()
    plots.layer_states(layers[0], out / "inspect", axis, 0)
    plots.layer_gates(layers[0], out / "inspect", axis, 0)
    plots.gate_saturation(layers, out / "inspect")
    plots.gradient_flow({"norm_per_step": list(np.geomspace(1e-4, 1, 6)), "ratio": 1e-4}, out / "inspect", axis, 5)
    plots.saliency(rng.uniform(0, 1, (6, 2)), ["temp", "wind"], out / "inspect", axis, 5)
    drawn = plots.tune_plots(_study(12), out / "tune", "val_mae", ["temp"], {"temp": "°C"}, _decode)
    assert all(v.startswith("plots/") for v in drawn.values()), drawn
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*.png"))}


@pytest.fixture(scope="module")
def every_figure(tmp_path_factory) -> dict[str, Path]:
    return draw_every_figure(tmp_path_factory.mktemp("figures"))


# --------------------------------------------------------------------------- one style


def test_every_figure_function_is_drawn_under_the_one_style():
    """Structural: a function that saves a figure carries ``@styled``, and ``figure`` is the only place a figure
    starts (a new plot function written with ``plt.subplots`` fails here)."""
    source = inspect.getsource(plots)
    assert source.count("subplots(") == 1 and "plt.figure(" not in source and ".figure(figsize" not in source
    savers = [
        name
        for name, fn in vars(plots).items()
        if inspect.isfunction(fn)
        and name not in ("_save", "_finish")  # the writer, and the usual end of a figure that calls it
        and ("_save(fig" in inspect.getsource(fn) or "_finish(fig" in inspect.getsource(fn))
    ]
    assert len(savers) >= 20, savers  # run, predict, compare, inspect, backtest, tune
    assert [n for n in savers if not getattr(vars(plots)[n], "styled", False)] == []


def test_every_saved_png_shares_width_and_dpi(every_figure):
    sizes = {name: png_size_and_dpi(p) for name, p in every_figure.items()}
    expected = {
        "loss.png", "forecast.png", "error_by_horizon.png", "residuals.png", "forecast_next.png",
        "compare/val_loss.png", "compare/test_error.png", "compare/error_by_lead.png",
        "compare/forecast_overlay.png", "compare/params_vs_error.png", "compare/time_per_epoch.png",
        "backtest/backtest_error_per_fold.png", "backtest/backtest_error_by_lead.png", "backtest/backtest_forecast.png",
        "inspect/hidden_lstm_1.png", "inspect/cell_state_lstm_1.png", "inspect/gates_lstm_1.png",
        "inspect/gate_saturation.png", "inspect/gradient_flow.png", "inspect/saliency.png",
        "tune/optimization_history.png", "tune/param_importances.png", "tune/param_values.png",
    }  # fmt: skip
    assert set(sizes) == expected
    # 10 in at 110 dpi: one pixel width for all (savefig's dpi, not the screen's)
    assert {w for w, _, _ in sizes.values()} == {round(plots.WIDTH * plots.DPI)}
    assert {round(dpi) for _, _, dpi in sizes.values()} == {plots.DPI}


def _overlaps(fig) -> list[str]:
    """Titles (axes titles, the figure's suptitle) that overlap another axes' drawing area, or leave the figure."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = fig.bbox
    axes = [a for a in fig.axes if a.get_visible() and a.axison]
    titles = [(t, None) for t in [fig._suptitle] if t is not None and t.get_text()]
    for ax in axes:
        titles += [(t, ax) for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
    bad = []
    for t, owner in titles:
        tb = t.get_window_extent(r)
        if tb.x0 < box.x0 - 1 or tb.x1 > box.x1 + 1 or tb.y1 > box.y1 + 1:
            bad.append(f"{t.get_text()!r} leaves the figure")
        for ax in axes:
            if ax is not owner and tb.overlaps(ax.get_window_extent(r)):
                bad.append(f"{t.get_text()!r} overlaps axes {ax.get_title()!r}")
            if ax is owner and tb.overlaps(ax.bbox) and tb.y0 < ax.bbox.y1 - 1:
                bad.append(f"{t.get_text()!r} sits inside its own axes")
    return bad


def test_no_title_overlaps_an_axes_and_every_figure_is_laid_out(tmp_path, monkeypatch):
    """A spy on the one writer: each figure, just before it is saved, has a layout engine and clear titles."""
    seen, problems = [], {}
    save = plots._save

    def checked(fig, path):
        seen.append(path.name)
        if fig.get_layout_engine() is None:
            problems[path.name] = ["no layout engine"]
        elif found := _overlaps(fig):
            problems[path.name] = found
        save(fig, path)

    monkeypatch.setattr(plots, "_save", checked)
    draw_every_figure(tmp_path)
    assert len(seen) == 23 and problems == {}


def test_the_overlap_check_catches_a_title_drawn_over_an_axes(tmp_path):
    """The check above is not vacuous: two stacked axes without a layout engine, a long two-line title on the lower."""
    plt = plots._plt()
    fig, (top, low) = plt.subplots(2, 1, figsize=(4, 3))
    low.set_title("a title\nthat climbs\ninto the axes above", fontsize=14)
    assert any("overlaps axes" in p for p in _overlaps(fig))
    plt.close(fig)


# --------------------------------------------------------------------------- tune figures


def test_tune_labels_name_the_metric_with_its_units_and_values_as_the_config_writes_them():
    assert plots.metric_label("val_mae", ["temp"], {"temp": "°C"}) == "validation MAE (temp, °C)"
    assert plots.metric_label("val_mse", ["temp"], {"temp": "°C"}) == "validation MSE (temp, °C²)"
    assert plots.metric_label("val_mae", ["a", "b"], {}) == "validation MAE (data units, mean over targets)"
    assert plots.metric_label("val_loss", ["a"], {}) == "validation loss (scaled units)"
    assert plots.metric_label("val_mase", ["a"], {}) == "validation MASE (no unit)"
    assert plots.value_text("model.units", _decode("json:[64]")) == "units [64]"
    assert plots.value_text("training.learning_rate", 0.0031234) == "learning_rate 0.00312"


def test_tune_points_decode_values_in_trial_order():
    points = plots.TrialPoints.of(_study(4), _decode)
    assert points.numbers == [0, 1, 2, 3] and points.others == 1
    assert points.params["model.units"] == [[64], [32, 32], [64], [32, 32]]
    assert points.values[0] == pytest.approx(1.0 + 0.01 * points.params["training.learning_rate"][0])
    assert points.varied == ["model.units", "training.learning_rate"]


def test_importances_need_enough_complete_trials(tmp_path):
    few = plots.tune_plots(_study(3), tmp_path / "few", "val_mae", ["t"], {}, _decode)
    assert few["param_importances"].startswith("not drawn: 3 complete trial(s)")
    assert f"at least {plots.MIN_IMPORTANCE_TRIALS}" in few["param_importances"]
    assert not (tmp_path / "few" / "param_importances.png").exists()
    assert few["optimization_history"] == "plots/optimization_history.png"
    assert (tmp_path / "few" / "param_values.png").exists()
    enough = plots.tune_plots(_study(plots.MIN_IMPORTANCE_TRIALS), tmp_path / "ok", "val_mae", ["t"], {}, _decode)
    assert enough["param_importances"] == "plots/param_importances.png"
    assert (tmp_path / "ok" / "param_importances.png").stat().st_size > 1000


def test_the_importances_drawn_are_optunas(tmp_path, monkeypatch):
    """The figure's numbers are optuna.importance.get_param_importances' with PED-ANOVA (not a second computation)."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    study = _study(20)
    imp = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    assert set(imp) == {"model.units", "training.learning_rate"} and sum(imp.values()) == pytest.approx(1)
    drawn = {}
    original = plots.tune_importances

    def spy(importances, n, label, path):
        drawn.update(importances=importances, n=n, label=label)
        original(importances, n, label, path)

    monkeypatch.setattr(plots, "tune_importances", spy)
    plots.tune_plots(study, tmp_path, "val_mae", ["t"], {"t": "kW"}, _decode)
    assert drawn["importances"] == pytest.approx(imp) and drawn["n"] == 20
    assert drawn["label"] == "validation MAE (t, kW)"


def test_a_study_without_a_complete_trial_draws_nothing(tmp_path):
    import optuna

    study = optuna.create_study()
    out = plots.tune_plots(study, tmp_path, "val_mae", ["t"], {}, _decode)
    assert set(out.values()) == {"not drawn: no trial completed"} and not list(tmp_path.glob("*.png"))


# --------------------------------------------------------------------------- captions name what figures draw

DRAWS = {  # figure -> words that name what it draws: each must be in the figure's own text AND in its caption
    "loss.png": ["validation", "epoch", "best epoch", "scaled units"],
    "forecast_next.png": ["forecast", "observations", "interval"],
    "forecast.png": ["actual", "lead", "interval", "windows"],
    "error_by_horizon.png": ["MAE", "lead time", "persistence"],
    "residuals.png": ["errors", "forecast - actual", "lead times"],
    "val_loss.png": ["validation loss", "epoch"],
    "test_error.png": ["MSE", "MAE", "persistence"],
    "error_by_lead.png": ["MSE", "lead time", "persistence", "std"],
    "forecast_overlay.png": ["actual", "one-step", "MAE"],
    "params_vs_error.png": ["parameters", "MSE", "persistence"],
    "time_per_epoch.png": ["seconds", "epoch", "median"],
    "backtest_error_per_fold.png": ["MAE", "fold"],
    "backtest_error_by_lead.png": ["MAE", "lead time", "mean over", "model"],
    "backtest_forecast.png": ["actual", "one-step", "fold origins", "band"],
    "hidden_lstm_1.png": ["hidden state", "unit", "steps before"],
    "cell_state_lstm_1.png": ["cell state", "steps before"],
    "gates_lstm_1.png": ["gate", "shut", "open", "unit"],
    "gate_saturation.png": ["saturation", "0.1", "0.9", "shut", "open"],
    "gradient_flow.png": ["gradient", "first forecast step", "oldest"],
    "saliency.png": ["saliency", "feature", "d forecast / d input"],
    "optimization_history.png": ["trial", "so far", "validation"],
    "param_importances.png": ["PED-ANOVA", "importance", "complete trials"],
    "param_values.png": ["objective", "searched key", "best", "[64]"],
}


def test_each_caption_names_what_its_figure_draws(tmp_path, monkeypatch):
    """Every text of each figure (titles, labels, legends, ticks, colour bars) is read just before it is saved; the
    words in DRAWS are in both the figure and report.caption_for's caption: a figure changed to draw something else
    (MSE for MAE, say) fails here until its caption follows."""
    from matplotlib.text import Text

    from rnnforecast.report import GENERIC, caption_for

    texts = {}
    save = plots._save

    def reading(fig, path):
        fig.canvas.draw()  # tick labels exist once drawn
        texts[path.name] = " ".join(t.get_text() for t in fig.findobj(Text)).lower()
        save(fig, path)

    monkeypatch.setattr(plots, "_save", reading)
    draw_every_figure(tmp_path)
    assert set(texts) == set(DRAWS)
    missing = {}
    for name, words in DRAWS.items():
        caption = caption_for(name)
        assert caption != GENERIC, name
        gone = [w for w in words if w.lower() not in texts[name]] + [
            f"caption: {w}" for w in words if w.lower() not in caption.lower()
        ]
        if gone:
            missing[name] = gone
    assert missing == {}
