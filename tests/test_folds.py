"""folds: rolling-origin plans with exact indices; no fold trains or validates on rows at or after its origin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnforecast import folds, windows
from rnnforecast.errors import ConfigError


def test_plan_exact_indices_on_a_tiny_series():
    plan = folds.plan_folds(20, folds=3, step=2, val_length=3, horizon=2)
    assert [(f.origin, f.train, f.val, f.test) for f in plan] == [
        (13, (0, 10), (10, 13), (13, 16)),
        (15, (0, 12), (12, 15), (15, 18)),
        (17, (0, 14), (14, 17), (17, 20)),
    ]
    starts = [folds.fold_window_starts(f, input_length=3, horizon=2) for f in plan]
    assert [s["train"].tolist() for s in starts] == [list(range(0, 6)), list(range(0, 8)), list(range(0, 10))]
    assert [s["val"].tolist() for s in starts] == [[7, 8], [9, 10], [11, 12]]
    assert [s["test"].tolist() for s in starts] == [[10, 11], [12, 13], [14, 15]]
    # The test forecasts start at rows 13..18: each once, and the last target is the last row.
    first_targets = np.concatenate([s["test"] for s in starts]) + 3
    assert first_targets.tolist() == [13, 14, 15, 16, 17, 18]
    assert windows.target_rows(starts[-1]["test"], 3, 2).max() == 19


def test_test_length_and_strided_windows():
    plan = folds.plan_folds(30, folds=2, step=5, val_length=4, horizon=3, test_length=4)
    assert [(f.origin, f.test) for f in plan] == [(19, (19, 25)), (24, (24, 30))]
    s = folds.fold_window_starts(plan[0], input_length=2, horizon=3, stride=2)
    assert s["test"].tolist() == [17, 19]  # forecast starts 19 and 21 (23 would need a stride-1 grid)
    assert s["val"].tolist() == [13]  # targets 15..17 inside [15, 19); start 14 would reach row 19 = origin


@pytest.mark.parametrize(
    "refit, trains, model_fold",
    [
        ("all", [True] * 5, [0, 1, 2, 3, 4]),
        ("none", [True, False, False, False, False], [0, 0, 0, 0, 0]),
        ("every:2", [True, False, True, False, True], [0, 0, 2, 2, 4]),
        ("EVERY:3", [True, False, False, True, False], [0, 0, 0, 3, 3]),
    ],
)
def test_refit_schedule(refit, trains, model_fold):
    plan = folds.plan_folds(100, folds=5, step=3, val_length=5, horizon=2, refit=refit)
    assert [f.refit for f in plan] == trains
    assert [f.model_fold for f in plan] == model_fold


@pytest.mark.parametrize("bad", ["some", "every:0", "every:x", "every:"])
def test_bad_refit_names_the_option_and_the_fix(bad):
    with pytest.raises(ConfigError) as e:
        folds.parse_refit(bad)
    assert e.value.one_line() == (
        f"--refit: refit must be all, none or every:N with N >= 1. Received: refit={bad!r}. "
        "Fix: use --refit all, --refit none or --refit every:2."
    )


def test_too_many_folds_is_a_config_error():
    with pytest.raises(ConfigError, match="leave 0 training rows in the first fold of a 20-row series"):
        folds.plan_folds(20, folds=8, step=2, val_length=3, horizon=2)
    with pytest.raises(ConfigError, match="step must be >= 1. Received: step=0"):
        folds.plan_folds(20, folds=2, step=0, val_length=3)


@settings(max_examples=200, deadline=None)
@given(
    n_rows=st.integers(30, 200),
    k=st.integers(1, 6),
    step=st.integers(1, 10),
    val=st.integers(3, 15),
    horizon=st.integers(1, 4),
    input_length=st.integers(1, 6),
    stride=st.integers(1, 3),
)
def test_no_fold_trains_or_validates_at_or_after_its_origin(n_rows, k, step, val, horizon, input_length, stride):
    try:
        plan = folds.plan_folds(n_rows, folds=k, step=step, val_length=val, horizon=horizon)
    except ConfigError:
        return
    assert len(plan) == k and plan[-1].test[1] == n_rows
    assert [f.origin for f in plan] == list(range(plan[0].origin, plan[-1].origin + 1, step))
    for f in plan:
        assert f.train[1] <= f.val[0] and f.val[1] == f.origin == f.test[0]
        s = folds.fold_window_starts(f, input_length, horizon, stride)
        for part in ("train", "val"):
            if len(s[part]):
                assert windows.target_rows(s[part], input_length, horizon).max() < f.origin
                assert s[part].min() >= 0
        if len(s["train"]):
            assert windows.target_rows(s["train"], input_length, horizon).max() < f.train[1]
        if len(s["val"]):
            assert windows.target_rows(s["val"], input_length, horizon).min() >= f.val[0]
        if stride == 1 and f.origin >= input_length:
            assert len(s["test"]) == step  # test_length defaults to step: one window per forecast start
        if len(s["test"]):
            rows = windows.target_rows(s["test"], input_length, horizon)
            assert rows.min() >= f.origin and rows.max() < min(f.test[1], n_rows)
