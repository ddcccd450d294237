"""Data loading, splits and scaling on tiny real files."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnforecast import series
from rnnforecast.config import from_dict
from rnnforecast.data import load_frame, season_length
from rnnforecast.errors import DataError
from rnnforecast.scaling import Scaler


def cfg_for(path, **data):
    raw = {
        "data": {"path": str(path), "target": "y", "time_column": "time", **data},
        "window": {"input_length": 3, "horizon": 2},
    }
    return from_dict(raw)


def write_csv(tmp_path, df, name="d.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_gaps_become_rows_and_are_interpolated(tmp_path):
    t = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-04", "2020-01-05"])
    p = write_csv(tmp_path, pd.DataFrame({"time": t, "y": [1.0, 2.0, 4.0, 5.0]}))
    frame = load_frame(cfg_for(p).data, p)
    assert frame.frequency == "D" and frame.gap_rows == 1
    assert frame.df["y"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_missing_policies(tmp_path):
    t = pd.date_range("2020-01-01", periods=5, freq="D")
    p = write_csv(tmp_path, pd.DataFrame({"time": t, "y": [1.0, np.nan, np.nan, 4.0, 5.0]}))
    assert load_frame(cfg_for(p, missing="ffill").data, p).df["y"].tolist() == [1, 1, 1, 4, 5]
    assert load_frame(cfg_for(p, missing="drop").data, p).df["y"].tolist() == [1, 4, 5]
    with pytest.raises(DataError, match="2 missing values"):
        load_frame(cfg_for(p, missing="error").data, p)


def test_steps_calendar_keeps_rows(tmp_path):
    t = pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"])  # Thu Fri Mon Tue
    p = write_csv(tmp_path, pd.DataFrame({"time": t, "y": [1.0, 2, 3, 4]}))
    frame = load_frame(cfg_for(p, frequency="B", calendar="steps").data, p)
    assert len(frame.df) == 4 and frame.gap_rows == 0


def test_categorical_and_time_features(tmp_path):
    t = pd.date_range("2020-01-01", periods=4, freq="D")
    p = write_csv(tmp_path, pd.DataFrame({"time": t, "y": [1.0, 2, 3, 4], "kind": ["a", "b", "a", "c"]}))
    frame = load_frame(cfg_for(p, categorical=["kind"], time_features=["day_of_week"]).data, p)
    assert frame.categories == {"kind": ["a", "b", "c"]}
    assert frame.df["kind=b"].tolist() == [0, 1, 0, 0]
    assert {"day_of_week_sin", "day_of_week_cos"} <= set(frame.features)
    # 2020-01-01 is a Wednesday (dayofweek 2)
    assert frame.df["day_of_week_sin"].iloc[0] == pytest.approx(np.sin(2 * np.pi * 2 / 7))


def test_unsorted_is_an_error_unless_sort(tmp_path):
    t = pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-02"])
    p = write_csv(tmp_path, pd.DataFrame({"time": t, "y": [1.0, 3, 2]}))
    with pytest.raises(DataError, match=r"d.csv:4.*out of order.*data.sort: true"):
        load_frame(cfg_for(p).data, p)
    assert load_frame(cfg_for(p, sort=True).data, p).df["y"].tolist() == [1, 2, 3]


def test_scaler_sees_training_rows_only(tmp_path):
    # Training rows are 0..99; val/test hold huge values that must not reach the scaler.
    n = 200
    y = np.concatenate([np.arange(140, dtype=float), 1e6 + np.arange(60)])
    p = write_csv(tmp_path, pd.DataFrame({"time": pd.date_range("2020", periods=n, freq="h"), "y": y}))
    cfg = cfg_for(p, split={"train": 0.7, "val": 0.15, "test": 0.15}, scaling="standard")
    data = series.build(load_frame(cfg.data, p), cfg)
    train = y[:140]
    assert data.segments[0].bounds == {"train": (0, 140), "val": (140, 170), "test": (170, 200)}
    assert data.scaler.shift[0, 0] == pytest.approx(train.mean())
    assert data.scaler.scale[0, 0] == pytest.approx(train.std())
    # Save/load/invert round trip
    path = tmp_path / "s.json"
    data.scaler.save(path)
    again = Scaler.load(path)
    assert json.loads(path.read_text())["kind"] == "standard"
    x = np.array([[5.0]])
    assert again.inverse(again.transform(x)) == pytest.approx(x)


def test_invert_returns_original_units(tmp_path):
    n = 120
    y = np.sin(np.arange(n) / 5) * 10 + 50
    p = write_csv(tmp_path, pd.DataFrame({"time": pd.date_range("2020", periods=n, freq="h"), "y": y}))
    for scaling in ("standard", "minmax", "window", "none"):
        for transform in ("none", "diff", "log_diff", "pct_change"):
            cfg = cfg_for(p, scaling=scaling, transform=transform)
            data = series.build(load_frame(cfg.data, p), cfg)
            starts = data.starts("test")
            _, yb = data.batch(starts)
            back = data.invert(starts, yb[..., None])  # feeding the true targets back must give the data
            assert np.allclose(back[..., 0], data.actual(starts), atol=1e-4), (scaling, transform)


def test_constant_feature_does_not_divide_by_zero(tmp_path):
    n = 60
    p = write_csv(
        tmp_path,
        pd.DataFrame({"time": pd.date_range("2020", periods=n, freq="h"), "y": np.arange(n, dtype=float), "c": 3.0}),
    )
    cfg = cfg_for(p)
    data = series.build(load_frame(cfg.data, p), cfg)
    assert np.isfinite(data.values).all()
    assert data.scaler.scale[0, data.columns.index("c")] == 1.0


def test_several_series_never_share_a_window(tmp_path):
    t = pd.date_range("2020", periods=50, freq="D")
    df = pd.concat([pd.DataFrame({"time": t, "ticker": k, "y": np.arange(50) + 1000 * i}) for i, k in enumerate("AB")])
    p = write_csv(tmp_path, df)
    cfg = cfg_for(p, series_id="ticker")
    data = series.build(load_frame(cfg.data, p), cfg)
    assert [s.series for s in data.segments] == ["A", "B"]
    assert data.scaler.groups == ["A", "B"]  # one scaler per series by default
    for split in ("train", "val", "test"):
        starts = data.starts(split)
        seg = data.series_index(starts)
        end = data.series_index(starts + 3 + 2 - 1)
        assert (seg == end).all()
    glob = series.build(
        load_frame(cfg_for(p, series_id="ticker", scale_per_series=False).data, p),
        cfg_for(p, series_id="ticker", scale_per_series=False),
    )
    assert glob.scaler.groups == ["*"]


def test_filter_selects_one_series(tmp_path):
    t = pd.date_range("2020", periods=30, freq="D")
    df = pd.concat([pd.DataFrame({"time": t, "ticker": k, "y": np.arange(30.0) + 100 * i}) for i, k in enumerate("AB")])
    p = write_csv(tmp_path, df.sample(frac=1, random_state=0).sort_values("time", kind="stable"))  # A and B interleaved
    frame = load_frame(cfg_for(p, filter={"ticker": "B"}).data, p)
    assert frame.df["y"].tolist() == list(np.arange(30.0) + 100)  # B's values, in time order, none of A's
    assert frame.df["time"].tolist() == list(t)
    frame = load_frame(cfg_for(p, filter={"ticker": "A"}).data, p)
    assert frame.df["y"].tolist() == list(np.arange(30.0))


def test_season_length_from_frequency():
    assert season_length("h", None) == 24 and season_length("D", None) == 7 and season_length("D", 30) == 30


def test_load_frame_composes_its_steps_in_order(tmp_path):
    """Filter, parse time (tz dropped), series, one-hot with a run's categories, time features: the columns in order."""
    t = pd.date_range("2020-01-01", periods=4, freq="D", tz="Europe/Berlin").astype(str)
    df = pd.DataFrame({"time": list(t) * 2, "y": [1.0, 2, 3, 4] * 2, "x": [5, 6, 7, 8] * 2, "kind": list("abzb") * 2})
    df["site"] = [7] * 4 + [8] * 4  # the YAML number 7 matches the CSV's "7"
    p = write_csv(tmp_path, df)
    cfg = cfg_for(p, filter={"site": 7}, categorical=["kind"], time_features=["month_of_year"], features=["x"])
    frame = load_frame(cfg.data, p, categories={"kind": ["a", "b"]})  # "z" is unknown to the run: all zeros
    assert frame.df.columns.tolist() == [
        "time", "__series__", "x", "kind=a", "kind=b", "month_of_year_sin", "month_of_year_cos", "y"
    ]  # fmt: skip
    assert frame.features == ["x", "kind=a", "kind=b", "month_of_year_sin", "month_of_year_cos"]
    assert frame.columns == frame.features + ["y"]
    # Berlin midnights keep their local dates (the zone rule), not 23:00 UTC of the day before
    assert frame.df["time"].dt.tz is None and frame.df["time"].iloc[0] == pd.Timestamp("2020-01-01")
    assert frame.df["kind=a"].tolist() == [1, 0, 0, 0] and frame.df["kind=b"].tolist() == [0, 1, 0, 1]
    assert frame.categories == {"kind": ["a", "b"]} and frame.series == ["all"]
    assert frame.numeric_source["x"] == "int64" and frame.missing_before == {"y": 0, "x": 0}


def test_tsv_and_parquet_are_read_and_lines_are_counted_per_format(tmp_path):
    df = pd.DataFrame({"time": ["2020-01-01", "2020-01-02", "bad"], "y": [1.0, 2.0, 3.0]})
    tsv = tmp_path / "d.tsv"
    df.iloc[:2].to_csv(tsv, sep="\t", index=False)
    assert load_frame(cfg_for(tsv, frequency="D").data, tsv).df["y"].tolist() == [1.0, 2.0]
    csv = write_csv(tmp_path, df)
    with pytest.raises(DataError, match=r"d.csv:4: cannot parse time value 'bad'"):  # header is line 1
        load_frame(cfg_for(csv).data, csv)
    pq = tmp_path / "d.parquet"
    df.to_parquet(pq)
    with pytest.raises(DataError, match=r"d.parquet:2: cannot parse time value 'bad'"):  # Parquet: the row number
        load_frame(cfg_for(pq).data, pq)


@pytest.mark.parametrize(
    "body, phrase",
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"PAR1time,y\n", "looks binary, not CSV text"),
        (b"time,y\n2020-01-01,\xff\xfe1\n" + b"2020-01-02,2\n" * 10, "not UTF-8: byte 0xff at offset 18 (line 2)"),
        (b"time,y\n", "the file has a header but no rows"),
        (b'time,y\n"2020-01-01,1\n', "cannot parse CSV"),
    ],
)
def test_unreadable_csv_says_why(tmp_path, body, phrase):
    p = tmp_path / "d.csv"
    p.write_bytes(body)
    with pytest.raises(DataError, match="Fix:") as e:
        load_frame(cfg_for(p).data, p)
    assert phrase in str(e.value) and str(p) in str(e.value)


_STAMPS = st.one_of(
    st.tuples(
        st.sampled_from(["2020-01-01", "01/02/2020", "2020-1-2", ""]),
        st.sampled_from([" ", "T", ""]),
        st.sampled_from(["12:00", "12:00:00", "12:00:00.5", "12", ""]),
        st.sampled_from(["", " ", "  "]),
        st.sampled_from(["", "Z", "z", "+01:00", "-0500", "+05", "+1", "-03:30", "+01:00x", "-", "+0100 "]),
    ).map("".join),
    st.text(alphabet="0123456789:-+ .TZz", max_size=16),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_STAMPS, min_size=1, max_size=20))
def test_offset_prefilter_finds_exactly_what_the_regex_finds(texts):
    """``_with_offset`` skips the regex where no offset can end the text; on any text it agrees with the regex."""
    from rnnforecast.data import TZ_SUFFIX, _with_offset

    s = pd.Series(texts, dtype="str")
    assert _with_offset(s).tolist() == s.str.contains(TZ_SUFFIX, regex=True).to_numpy(dtype=bool).tolist()


def _series_table(step: str, start: str, lengths: list[int], seed: int = 0) -> pd.DataFrame:
    """Series ``s<k>`` of ``lengths[k]`` rows on ``step``, each its own level, written newest id first (the file's
    order is not the series' order); series 1 ends with two missing targets, series 2 with one."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, n in enumerate(lengths):
        t = pd.date_range(pd.Timestamp(start) + k * pd.tseries.frequencies.to_offset(step), periods=n, freq=step)
        y = 10.0 * k + rng.standard_normal(n)
        if k in (1, 2):
            y[n - (3 - k) :] = np.nan
        parts.append(pd.DataFrame({"id": f"s{k}", "time": t.astype(str), "y": y, "x": rng.standard_normal(n)}))
    return pd.concat(parts[::-1], ignore_index=True)


def _tails_by_groupby(df: pd.DataFrame) -> tuple[dict, dict]:
    """The trailing missing and all-empty target rows of each series, one group at a time (pandas' groupby)."""
    from rnnforecast.data import LINE, SERIES

    missing, empty = {}, {}
    for sid, g in df.groupby(SERIES, sort=False):
        na = g["y"].isna().to_numpy()
        n = len(na) - (np.flatnonzero(~na).max() + 1 if (~na).any() else 0)
        empty[str(sid)] = n
        if n:
            missing[str(sid)] = [int(x) for x in g[LINE].to_numpy()[len(g) - n :]]
    return missing, empty


@pytest.mark.parametrize(
    "step, start", [("h", "2020-03-01 00:30"), ("15min", "2019-12-31 23:00"), ("D", "2020-02-27"), ("2D", "2021-01-01")]
)
def test_series_checked_at_once_equal_one_group_at_a_time(tmp_path, step, start, monkeypatch):
    """load_frame checks the order, grid and tails of every series at once when each is already on its grid: the
    frame, gap count and tails equal those of the per-series loop (forced), and the tails a groupby finds."""
    from rnnforecast import data as D

    table = _series_table(step, start, [9, 6, 12, 1, 7])
    cfg = cfg_for(tmp_path / "t.csv", series_id="id", frequency=step, missing="interpolate").data
    fast = load_frame(cfg, "t", table=table.copy())
    monkeypatch.setattr(D, "_on_grid", lambda *a: False)
    loop = load_frame(cfg, "t", table=table.copy())
    pd.testing.assert_frame_equal(fast.df, loop.df)
    assert fast.series == loop.series == ["s0", "s1", "s2", "s3", "s4"]
    assert fast.gap_rows == loop.gap_rows == 0
    assert (fast.missing_tail, fast.open_tail) == (loop.missing_tail, loop.open_tail)
    df = table.assign(**{D.LINE: np.arange(len(table))})  # a table's rows are numbered from 0, as sent
    df = D._order_by_time(D._label_series(D._parse_time(df, "time", "t")[0], cfg, "t"), cfg, "t")
    missing, empty = _tails_by_groupby(df)
    # the table holds s4 (7 rows), s3 (1), s2 (12: rows 8-19), s1 (6: rows 20-25), s0 (9)
    assert missing == {"s1": [24, 25], "s2": [19]} == fast.missing_tail
    assert empty == fast.open_tail == {"s0": 0, "s1": 2, "s2": 1, "s3": 0, "s4": 0}
    offset = pd.tseries.frequencies.to_offset(step)
    looped = D._regularise(df.copy(), "time", offset, "t", step)
    monkeypatch.undo()
    assert D._on_grid(df, "time", offset)
    at_once = D._regularise(df.copy(), "time", offset, "t", step)
    pd.testing.assert_frame_equal(at_once[0], looped[0])  # columns in the loop's order too
    assert at_once[1] == looped[1] == 0


def test_a_gap_or_disorder_in_one_series_still_takes_the_loop(tmp_path):
    """The at-once checks only pass the clean case: a gap in one series of five becomes a row (and is counted),
    disorder in another is refused with that series and line named, as before."""
    table = _series_table("h", "2020-03-01", [9, 6, 12, 1, 7])
    cfg = cfg_for(tmp_path / "t.csv", series_id="id", frequency="h").data
    gap = table.drop(index=table.index[(table["id"] == "s2")][4])
    frame = load_frame(cfg, "t", table=gap)
    assert frame.gap_rows == 1 and len(frame.df) == len(table)
    swapped = table.copy()
    rows = swapped.index[swapped["id"] == "s4"][[2, 3]]
    swapped.loc[rows, "time"] = swapped.loc[rows[::-1], "time"].to_numpy()
    with pytest.raises(DataError, match=r"timestamps of series 's4' are out of order") as e:
        load_frame(cfg, "t", table=swapped)
    assert e.value.where == f"t:{rows[1]}"


@pytest.mark.parametrize(
    "ids,codes,contiguous",
    [
        (["a", "a", "b", "b", "c"], [0, 0, 1, 1, 2], True),
        (["b", "b", "a"], [0, 0, 1], True),  # order of appearance, not sorted
        (["a", "b", "a"], [0, 1, 0], False),  # a came back after b
        ([], [], True),
    ],
)
def test_series_codes_by_hand(ids, codes, contiguous):
    from rnnforecast.data import SERIES, series_blocks, series_codes

    df = pd.DataFrame({SERIES: pd.Series(ids, dtype=object)})
    got, names, together = series_codes(df)
    assert got.tolist() == codes and together is contiguous
    assert list(names) == list(dict.fromkeys(ids))
    if contiguous and ids:
        blocks = series_blocks(df)[1].tolist()
        starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]
        assert blocks == [[lo, hi] for lo, hi in zip(starts, [*starts[1:], len(ids)])]
    elif ids:
        with pytest.raises(AssertionError):
            series_blocks(df)


def _dates_csv(tmp_path, text: list[str], name="d.csv"):
    p = tmp_path / name
    p.write_text("time,y\n" + "".join(f"{t},{i % 7 + 0.5 * i}\n" for i, t in enumerate(text)))
    return p


def test_day_first_dates_are_read_day_first_in_every_row(tmp_path):
    """pandas reads each D/M/Y cell on its own, month first where it can: 01/08/2021 became January 8 beside
    19/07/2021's July 19, and a business-day file turned into a daily one with half its rows invented. The column
    is read one way: here business days from Monday 19 July 2021, written day first."""
    days = pd.bdate_range("2021-07-19", periods=60)
    p = _dates_csv(tmp_path, [d.strftime("%d/%m/%Y") for d in days])
    frame = load_frame(cfg_for(p).data, p)
    assert frame.frequency == "B" and frame.gap_rows == 0
    assert frame.df["time"].tolist() == list(days)
    assert frame.df["y"].tolist() == [i % 7 + 0.5 * i for i in range(60)]  # the rows in file order: nothing sorted
    # dots and a time of day too (European exports)
    p2 = _dates_csv(tmp_path, [d.strftime("%d.%m.%Y 09:30") for d in days], "dots.csv")
    assert load_frame(cfg_for(p2).data, p2).df["time"].tolist() == list(days + pd.Timedelta("9h30min"))


def test_month_first_dates_stay_month_first_and_monthly_dates_on_the_first_are_decided(tmp_path):
    days = pd.date_range("2021-07-01", periods=40, freq="D")
    us = _dates_csv(tmp_path, [d.strftime("%m/%d/%Y") for d in days], "us.csv")
    assert load_frame(cfg_for(us).data, us).df["time"].tolist() == list(days)
    months = pd.date_range("2019-01-01", periods=30, freq="MS")  # no number above 12 in either field
    eu = _dates_csv(tmp_path, [d.strftime("%d/%m/%Y") for d in months], "eu_monthly.csv")  # the day is always 01
    frame = load_frame(cfg_for(eu).data, eu)
    assert frame.df["time"].tolist() == list(months) and frame.frequency == "MS"
    us_m = _dates_csv(tmp_path, [d.strftime("%m/%d/%Y") for d in months], "us_monthly.csv")
    assert load_frame(cfg_for(us_m).data, us_m).df["time"].tolist() == list(months)


def test_dates_written_both_ways_or_undecidable_are_refused_with_the_line(tmp_path):
    text = [d.strftime("%d/%m/%Y") for d in pd.date_range("2021-07-10", periods=10)] + ["07/25/2021"]
    p = _dates_csv(tmp_path, text)
    with pytest.raises(DataError) as both:
        load_frame(cfg_for(p).data, p)
    msg = str(both.value)
    assert "both day first ('13/07/2021') and month first ('07/25/2021')" in msg and "d.csv:12" in msg
    assert "ISO dates" in msg
    yearly = _dates_csv(tmp_path, [f"01/01/{y}" for y in range(1990, 2020)], "yearly.csv")  # either way the same
    assert load_frame(cfg_for(yearly).data, yearly).df["time"].tolist() == list(
        pd.date_range("1990", periods=30, freq="YS")
    )
    few = _dates_csv(tmp_path, ["01/02/2021", "02/03/2021", "03/04/2021", "04/05/2021"], "few.csv")
    with pytest.raises(
        DataError,
        match=r"few.csv:2: column 'time' holds dates like '01/02/2021' that read as day/month and as month/day alike.*ISO dates",
    ):
        load_frame(cfg_for(few).data, few)


def test_a_one_column_header_says_which_separator_is_missing_and_names_semicolons(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("value\n1\n2\n3\n")
    with pytest.raises(DataError) as e:
        load_frame(cfg_for(one).data, one)
    assert str(e.value) == (
        f"{one}:1: not a table: the header line has no comma separating columns (1 column). "
        "Fix: point data.path at a CSV with a header like date,value (a tab-separated file needs the suffix .tsv)."
    )
    tsv = tmp_path / "one.tsv"
    tsv.write_text("time,y\n2020-01-01,1\n")
    with pytest.raises(DataError, match=r"one.tsv:1: not a table: the header line has no tab separating columns \(1"):
        load_frame(cfg_for(tsv).data, tsv)
    eu = tmp_path / "eu.csv"  # a European spreadsheet export
    eu.write_text("time;y\n01.01.2020;1,5\n02.01.2020;2,5\n")
    with pytest.raises(DataError) as e:
        load_frame(cfg_for(eu).data, eu)
    msg = str(e.value)
    assert "the header line has no comma separating columns, but semicolons ('time;y')" in msg
    assert "pd.read_csv(path, sep=';', decimal=',')" in msg and "eu.csv:1" in msg


def test_dates_no_number_above_12_decides_are_read_on_the_more_regular_calendar(tmp_path):
    """01/03 .. 12/03/2021 are twelve days of March (a daily calendar without gaps), not the 3rd of twelve months
    (no regular step): they were read month first, a 31-day 'irregular' series that validated. The same holds for
    200 hourly rows within nine days written 01.03.2021 00:00."""
    days = pd.date_range("2021-03-01", periods=12, freq="D")
    p = _dates_csv(tmp_path, [d.strftime("%d/%m/%Y") for d in days], "twelve.csv")
    frame = load_frame(cfg_for(p).data, p)
    assert frame.df["time"].tolist() == list(days) and frame.frequency == "D"
    hours = pd.date_range("2021-03-01", periods=200, freq="h")
    h = _dates_csv(tmp_path, [d.strftime("%d.%m.%Y %H:%M") for d in hours], "hours.csv")
    assert load_frame(cfg_for(h).data, h).df["time"].tolist() == list(hours)
    us = _dates_csv(tmp_path, [d.strftime("%m/%d/%Y") for d in days], "twelve_us.csv")  # the same days, month first
    assert load_frame(cfg_for(us).data, us).df["time"].tolist() == list(days)


def test_dates_in_two_formats_are_refused_with_the_line(tmp_path):
    text = ["05/03/2021", "2021-03-06", "07/03/2021", "2021-03-08"] + [f"{d:02d}/03/2021" for d in range(9, 20)]
    p = _dates_csv(tmp_path, text, "mixed.csv")
    with pytest.raises(DataError, match=r"mixed.csv:3: column 'time' writes dates in two formats \('05/03/2021' and "):
        load_frame(cfg_for(p).data, p)
