"""Plots as files (matplotlib Agg): loss, forecast, error by lead time, residuals, predict view."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"model": "C0", "persistence": "C1", "seasonal_naive": "C2", "window_mean": "C3"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)


def loss(history: dict, best_epoch: int, path: Path, loss_name: str = "loss") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if key in history:
            ax.plot(epochs, history[key], marker="o", ms=3, label=label)
    if best_epoch:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
    vals = [v for k in ("loss", "val_loss") for v in history.get(k, []) if v == v and v > 0]
    if vals and max(vals) / min(vals) > 30:
        ax.set_yscale("log")
    ax.set(title=f"Training and validation {loss_name} per epoch", xlabel="epoch", ylabel=f"{loss_name} (scaled units)")
    ax.legend()
    _save(fig, path)


def forecast(
    times,
    actual: np.ndarray,
    pred: np.ndarray,
    target: str,
    path: Path,
    n_fans: int = 5,
    max_points: int = 400,
    unit: str = "data units",
) -> None:
    """Actual vs one-step-ahead forecast on the split, plus a few full-horizon fans.

    Args:
        times: ``(B, H)`` timestamps of each window's targets.
        actual: ``(B, H)`` observed values of one target; ``pred``: ``(B, H)`` forecasts.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    n = min(len(actual), max_points)
    ax.plot(times[:n, 0], actual[:n, 0], color="black", lw=1.2, label="actual")
    ax.plot(times[:n, 0], pred[:n, 0], color="C0", lw=1, label="forecast t+1")
    if actual.shape[1] > 1:
        for k, i in enumerate(np.linspace(0, n - 1, n_fans).astype(int)):
            ax.plot(
                times[i],
                pred[i],
                color="C3",
                lw=2.2,
                marker="o",
                ms=3.5,
                label="full-horizon forecasts" if k == 0 else None,
            )
    ax.set(title=f"{target}: actual vs forecast on the test split", xlabel="time", ylabel=f"{target} ({unit})")
    ax.legend()
    fig.autofmt_xdate()
    _save(fig, path)


def error_by_horizon(per_lead: dict, path: Path, units: str = "data units") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, scores in per_lead.items():
        mse = scores["mse"]
        ax.plot(
            np.arange(1, len(mse) + 1),
            mse,
            marker="o",
            label=name,
            color=COLORS.get(name),
            lw=2.2 if name == "model" else 1.2,
        )
    ax.set(title="Test MSE by lead time", xlabel="lead time (steps ahead)", ylabel=f"MSE ({units}²)")
    ax.legend()
    _save(fig, path)


def residuals(errors: np.ndarray, target: str, path: Path, unit: str = "data units") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    errors = errors[np.isfinite(errors)]
    ax.hist(errors, bins=50, color="C0", alpha=0.8)
    ax.axvline(0, color="black", lw=1)
    ax.set(
        title=f"Test errors (forecast - actual), all lead times: mean {errors.mean():.3g}, std {errors.std():.3g}",
        xlabel=f"error in {target} ({unit})",
        ylabel="count",
    )
    _save(fig, path)


def run_plots(directory: Path, history: dict, best_epoch: int, ev, data) -> list[Path]:
    """The four plots of a run, for the first target."""
    loss(history, best_epoch, directory / "loss.png")
    rows = ev.starts[:, None] + data.input_length + np.arange(data.horizon)  # (B, H)
    t_all = data.frame.df[data.frame.time_column].to_numpy()
    times = t_all[rows]
    seg0 = data.series_index(ev.starts) == 0  # one series is shown: the first
    target = data.targets[0]
    unit = data.frame.unit(target)
    forecast(
        times[seg0],
        ev.actual[seg0][..., 0],
        ev.forecasts["model"][seg0][..., 0, 0],
        target,
        directory / "forecast.png",
        unit=unit,
    )
    error_by_horizon(ev.metrics["original"]["per_lead"], directory / "error_by_horizon.png", units=unit)
    residuals(
        (ev.forecasts["model"][..., 0, 0] - ev.actual[..., 0]).ravel(), target, directory / "residuals.png", unit=unit
    )
    return sorted(directory.glob("*.png"))


def predict_plot(
    history_times,
    history: np.ndarray,
    future_times,
    future: np.ndarray,
    target: str,
    path: Path,
    unit: str = "data units",
) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(history_times, history, color="black", lw=1.2, label="history")
    ax.plot(future_times, future, color="C3", marker="o", ms=3, lw=1.5, label="forecast")
    ax.axvline(history_times[-1], color="grey", ls=":", lw=1)
    ax.set(title=f"{target}: last observations and forecast", xlabel="time", ylabel=f"{target} ({unit})")
    ax.legend()
    fig.autofmt_xdate()
    _save(fig, path)
