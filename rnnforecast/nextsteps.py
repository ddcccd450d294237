"""What a person reads after a command: the forecast rounded to the data's precision, the ``<name>-latest`` link,
and the "what now" block ``train`` ends with.

Files keep full precision (forecast.csv, predict --output, --json); only the text a person reads is rounded here.
"""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from .text import dates_only, decimals_for, table, time_text

if TYPE_CHECKING:
    import pandas as pd

LATEST = "latest"  # runs/<name>-latest: a symbolic link to the newest finished run of that name
MAX_ROWS = 12  # forecast rows shown in the terminal; forecast.csv holds them all
MAX_DATA_DECIMALS = 6


# --------------------------------------------------------------------------- the <name>-latest link


def latest_link(final: Path, name: str) -> Path:
    """``runs/<name>-latest`` beside the run ``runs/<name>-<time>[-N]`` (``name``: the config's name as a slug)."""
    return final.with_name(f"{name}-{LATEST}")


def _ours(link: Path) -> bool:
    """A link rnnforecast made: a symbolic link to a bare sibling name (never a file, a folder, or a path elsewhere)."""
    if not link.is_symlink():
        return False
    target = os.readlink(link)
    return "/" not in target and target not in ("", ".", "..")


def update_latest(final: Path, name: str) -> tuple[Path | None, str | None]:
    """Point ``runs/<name>-latest`` at ``final`` (relative link, so the runs folder can move).

    Only a missing name or a link this tool made is (re)placed, atomically: a new link under a temporary name, then
    a rename over the old link. Anything else there (a user's file, folder or own link) is left alone and a note
    says so.

    Returns:
        ``(link, None)`` when the link now points at ``final``, else ``(None, note)``.
    """
    link = latest_link(final, name)
    if link.exists() or link.is_symlink():
        if not _ours(link):
            return None, f"note: {link} exists and was not made by rnnforecast; left as it is (no latest link)"
        return _replace_link(link, final)
    try:
        os.symlink(final.name, link)  # fails, never replaces, if the name appeared meanwhile
    except OSError as e:
        return None, f"note: cannot create {link} ({e.strerror or e})"
    return link, None


def _replace_link(link: Path, final: Path) -> tuple[Path | None, str | None]:
    """Our ``link`` pointed at ``final`` atomically: a new link under a temporary name renamed over it."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True) if tmp.is_symlink() else None  # a leftover of this pid's earlier crash
        os.symlink(final.name, tmp)
        if not _ours(link):  # replaced by someone else a moment ago: leave theirs
            tmp.unlink()
            return None, f"note: {link} changed while writing; left as it is"
        os.replace(tmp, link)
    except OSError as e:
        tmp.unlink(missing_ok=True) if tmp.is_symlink() else None
        return None, f"note: cannot update {link} ({e.strerror or e})"
    return link, None


# --------------------------------------------------------------------------- rounding to the data's precision


def data_decimals(values) -> int:
    """Decimals the data is recorded with: the fewest (0..6) that reproduce 99 % of the values (float32 noise and a few
    interpolated gaps ignored).

    A temperature column like ``12.8, 10.6`` gives 1; counts give 0; measurements with noise give 6 (the cap).
    """
    import numpy as np

    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)][:20_000]
    if not len(v):
        return MAX_DATA_DECIMALS
    for d in range(MAX_DATA_DECIMALS + 1):
        # float32 noise (a millionth of the value), but never a tenth of the last decimal kept: 1000000531.25 is
        # recorded with 2 decimals, not 0 (a millionth of it is 1000)
        tol = np.minimum(1e-6 * np.maximum(1.0, np.abs(v)), 0.1 * 10.0**-d)
        if np.mean(np.abs(np.round(v, d) - v) <= tol) >= 0.99:
            return d
    return MAX_DATA_DECIMALS


def target_decimals(data) -> dict[str, int]:
    """Per target of ``data`` (a SeriesData), the decimals its observed values are recorded with (``data_decimals``):
    the values the tool filled in (gap rows, interpolated cells) are left out, so gaps never change the rounding."""
    out = {}
    filled = data.frame.filled  # (N, T) in target order, or None
    for j, (t, i) in enumerate(zip(data.targets, data.target_idx)):
        values = data.raw[:, i]
        out[t] = data_decimals(values if filled is None else values[~filled[:, j]])
    return out


def shown_decimals(forecast_values, data_dec: int) -> int:
    """The data's decimals, or fewer when 4 significant digits of the forecast need fewer."""
    return min(data_dec, decimals_for([float(x) for x in forecast_values if math.isfinite(float(x))]))


def printable_forecast(frame: pd.DataFrame, targets: list[str], decimals: dict[str, int]) -> pd.DataFrame:
    """The forecast as printed: no ``quantile`` column (the point forecast's kind is said once, in the note), no
    ``<target>_p50`` when it repeats the point forecast, values rounded per target, daily times as dates."""
    out = frame.drop(columns=[c for c in ("quantile",) if c in frame])
    out = out.drop(columns=[f"{t}_p50" for t in targets if _median_repeats_point(out, t)])
    if "timestamp" in out:
        dates = dates_only(out["timestamp"])
        out["timestamp"] = [time_text(v, dates) for v in out["timestamp"]]
    for t in targets:
        cols = value_columns(t, out.columns)
        d = shown_decimals(out[cols].to_numpy().ravel(), decimals.get(t, MAX_DATA_DECIMALS)) if cols else 0
        for c in cols:
            out[c] = out[c].round(d)
        out.attrs.setdefault("decimals", {})[t] = d
    return out


def value_columns(target: str, columns) -> list[str]:
    """The forecast columns of ``target``: its point forecast and its quantiles (``<target>_p10``, ...)."""
    return [c for c in columns if c == target or c.startswith(f"{target}_p")]


def _median_repeats_point(frame: pd.DataFrame, t: str) -> bool:
    """``<t>_p50`` holds the point forecast ``t`` again (to 1e-9 of its size)."""
    p50 = f"{t}_p50"
    return p50 in frame and t in frame and (frame[p50] - frame[t]).abs().max() <= 1e-9 * max(1.0, frame[t].abs().max())


def forecast_lines(frame: pd.DataFrame, targets: list[str], decimals: dict[str, int], limit: int = MAX_ROWS) -> list:
    """The rounded forecast as an aligned text table (at most ``limit`` rows, the rest counted)."""
    shown = printable_forecast(frame, targets, decimals)
    header = list(shown.columns)
    value_cols = {c for t in targets for c in value_columns(t, header)}
    specs = [f".{_decimals_of(c, targets, shown)}f" if c in value_cols else None for c in header]
    rows = [[(r[c] if c in value_cols else str(r[c])) for c in header] for _, r in shown.head(limit).iterrows()]
    lines = table(header, rows, specs)
    if len(shown) > limit:
        lines.append(f"... {len(shown) - limit} more rows")
    return lines


def _decimals_of(column: str, targets: list[str], shown: pd.DataFrame) -> int:
    owner = next(t for t in targets if column in value_columns(t, [column]))
    return shown.attrs["decimals"][owner]


def rounding_note(frame: pd.DataFrame, targets: list[str], decimals: dict[str, int], where: str) -> str:
    """Says how the printed numbers are rounded, what the point column is, and where full precision is."""
    shown = printable_forecast(frame, targets, decimals)
    d = shown.attrs["decimals"]
    how = ", ".join(f"{t} to {d[t]} decimal{'s' if d[t] != 1 else ''}" for t in targets)
    # fewer decimals than the data's when 4 significant digits need fewer (shown_decimals): say which rule rounded
    data_precision = all(d[t] == decimals.get(t, MAX_DATA_DECIMALS) for t in targets)
    why = "the data's precision" if data_precision else "the data's precision or 4 significant digits, the coarser"
    kind = ""
    if "quantile" in frame and len(frame):
        kind = f"; {', '.join(targets)} = the {frame['quantile'].iloc[0]} forecast"
    return f"rounded ({how}, {why}){kind}; {where} keeps full precision"


def printed_forecast_csv(frame: pd.DataFrame, data) -> tuple[str, str]:
    """``predict`` without ``--output``: the forecast as CSV rounded to the data's precision (``printable_forecast``),
    and the note for stderr that says so and where full precision is."""
    decimals = target_decimals(data)
    shown = printable_forecast(frame, data.targets, decimals)
    return shown.to_csv(index=False), "note: " + rounding_note(
        frame, data.targets, decimals, "--output FILE (or --json)"
    )


# --------------------------------------------------------------------------- what now, after train


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it lies below it, else absolute: what to type next."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _forecast_block(forecast: pd.DataFrame, targets: list[str], decimals: dict, where: str) -> list[str]:
    """The rounded forecast ``train`` prints, its rounding note and a blank line."""
    first = forecast["timestamp"].iloc[0]
    lines = [f"forecast after the data's last row (from {time_text(first, dates_only([first]))}):"]
    lines += ["  " + line for line in forecast_lines(forecast, targets, decimals)]
    return [*lines, "  " + rounding_note(forecast, targets, decimals, where), ""]


def train_next(run_dir: Path, decimals: dict, latest) -> str:
    """The block ``train`` ends with: the forecast (rounded), where the plots and the report go, the next commands.

    Args:
        run_dir: the finished run directory (its forecast.csv is shown; empty when the run needs future inputs).
        decimals: per target, in target order, the data's decimals (``data_decimals``).
        latest: ``(link, note)`` from ``update_latest``, or None when no link was made (``--run-dir``).
    """
    import pandas as pd

    run, targets = shown_path(run_dir), list(decimals)
    path = run_dir / "forecast.csv"
    forecast = pd.read_csv(path) if path.exists() else None
    lines = [""]
    if forecast is not None and len(forecast):
        lines += _forecast_block(forecast, targets, decimals, f"{run}/forecast.csv")
    plots = sorted(p.name for p in (run_dir / "plots").glob("*.png")) if (run_dir / "plots").is_dir() else []
    name = run
    link, note = latest if latest else (None, None)
    lines.append("what now:")
    if plots:
        lines.append(f"  plots      {run}/plots/ ({', '.join(plots)})")
    if link is not None:
        name = shown_path(link)
        lines.append(f"  latest     {name} -> {run_dir.name} (any command that takes a run accepts it)")
    arg = shlex.quote(str(name))  # the commands paste into a shell: a path with spaces or quotes stays one word
    lines += [
        f"  report     rnnforecast report {arg}      writes {run}-report.html",
        f"  forecast   rnnforecast predict {arg} --data NEW.csv",
        f"  score      rnnforecast evaluate {arg}",
        f"  look in    rnnforecast inspect {arg}",
    ]
    if note:
        lines.append(note)
    return "\n".join(lines)
