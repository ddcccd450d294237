"""Short series do not stop a long file: named in a warning, forecast by the better baseline, marked; init finds
the series column of a file of many series.

Daily series with a period-4 pattern (season_length 4): seasonal naive beats persistence on the long series, so the
short ones are forecast by seasonal naive. Series "C" has 10 rows: its training split (7 rows) cannot hold one
window of 7 + 2; "D" has 8. With horizon 2, seasonal naive repeats rows 6 and 7 of "C" (10 - 1 + h - 4).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rnnforecast.cli import cli
from tests.conftest import run_cli, write_config

PATTERN = np.array([0.0, 5.0, 1.0, 8.0])


def _series(sid: str, n: int, start: str, level: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = level + np.resize(PATTERN, n) + 0.2 * rng.standard_normal(n)
    return pd.DataFrame({"id": sid, "day": pd.date_range(start, periods=n, freq="D"), "y": y})


def _config(d, df: pd.DataFrame, name: str):
    df.to_csv(d / f"{name}.csv", index=False)
    cfg = {
        "name": name,
        "data": {"path": str(d / f"{name}.csv"), "target": "y", "time_column": "day", "series_id": "id"}
        | {"season_length": 4},
        "window": {"input_length": 7, "horizon": 2},
        "model": {"cell": "gru", "units": [8]},
        "training": {"epochs": 1, "batch_size": 64},
        "output": {"plots": False},
    }
    return write_config(d, cfg, f"{name}.yaml")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("short")
    df = pd.concat(
        [
            _series("A", 160, "2021-01-01", 10.0, 1),
            _series("B", 120, "2021-03-05", 20.0, 2),  # another length and start
            _series("C", 10, "2021-02-01", 30.0, 3),
            _series("D", 8, "2021-04-01", 40.0, 4),
        ]
    )
    config = _config(d, df, "long")
    run = d / "run"
    result = run_cli("train", str(config), "--run-dir", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    return {"run": run, "train": result, "df": df}


@pytest.mark.slow
def test_short_series_are_named_and_forecast_by_the_better_baseline(short_run):
    err = short_run["train"].stderr
    assert "warning: 2 of 4 series are too short" in err and "'C', 'D'" in err, err
    m = json.loads((short_run["run"] / "metrics.json").read_text())
    overall = m["test"]["original"]["overall"]
    assert overall["seasonal_naive"]["mae"] < overall["persistence"]["mae"]  # the data makes it so
    assert m["short_series"] == {
        "count": 2,
        "series": ["C", "D"],
        "rows": {"C": 10, "D": 8},
        "forecast_by": "seasonal_naive",
    }
    c = short_run["df"].query("id == 'C'")["y"].to_numpy()
    for source in (pd.read_csv(short_run["run"] / "forecast.csv"), _predict(short_run["run"])):
        rows = source[source["series"] == "C"]
        assert rows["forecast_by"].tolist() == ["seasonal_naive"] * 2
        np.testing.assert_allclose(rows["y"].to_numpy(), [c[6], c[7]], rtol=1e-12)
        assert rows["timestamp"].tolist()[0].startswith("2021-02-11")
        assert set(source.loc[source["series"].isin(["A", "B"]), "forecast_by"]) == {"model"}
        assert sorted(source["series"].unique()) == ["A", "B", "C", "D"]


def _predict(run) -> pd.DataFrame:
    path = run.parent / f"{run.name}-predicted.csv"  # -o keeps full precision (the printed table is rounded)
    path.unlink(missing_ok=True)
    out = run_cli("predict", str(run), "-o", str(path))
    assert out.returncode == 0, out.stderr
    return pd.read_csv(path)


def test_a_file_of_only_short_series_is_one_clear_error(tmp_path):
    df = pd.concat([_series("C", 10, "2021-02-01", 30.0, 3), _series("D", 8, "2021-04-01", 40.0, 4)])
    config = _config(tmp_path, df, "short")
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code != 0
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "every one of the 2 series is too short" in result.stderr and "longest has 10 rows" in result.stderr


def test_init_finds_the_series_column_of_many_series(tmp_path):
    # 60 series: more distinct ids than a category may have (50); ids repeat, so they name series
    df = pd.concat([_series(f"s{k:02d}", 60, "2021-01-01", float(k), k) for k in range(60)])
    df["note"] = [f"free text {i}" for i in range(len(df))]  # unique per row: never a series column
    df.to_csv(tmp_path / "many.csv", index=False)
    out = tmp_path / "many.yaml"
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "many.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    import yaml

    assert yaml.safe_load(out.read_text())["data"]["series_id"] == "id"


def test_filled_actuals_stay_with_their_rows_when_a_short_series_is_set_apart(tmp_path):
    """A short series A (10 rows) before a long B with 3 missing values in its test split: the values the tool
    filled are B's rows at those dates, never scored as actuals. Setting A apart left the filled mask 10 rows off,
    so no filled actual was found and the interpolated values were scored."""
    from rnnforecast import windows
    from rnnforecast.config import load_config
    from rnnforecast.pipeline import load_data

    b = _series("B", 160, "2021-01-01", 10.0, 1)
    b.loc[[150, 153, 157], "y"] = np.nan  # B's test split: its last 24 rows
    config = _config(tmp_path, pd.concat([_series("A", 10, "2021-02-01", 30.0, 3), b]), "gaps")
    cfg = load_config(str(config))
    data = load_data(cfg)
    assert [s.series for s in data.segments] == ["B"]
    starts = data.starts("test", stride=1)
    rows = windows.target_rows(starts, cfg.window.input_length, cfg.window.horizon)
    flagged = sorted({str(t.date()) for t in data.timestamps(rows[data.filled(starts)[..., 0]])})
    assert flagged == ["2021-05-31", "2021-06-03", "2021-06-07"]  # 2021-01-01 + 150, 153, 157 days
