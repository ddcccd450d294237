"""intervals: conformal coverage on known noise, hand-computed scores, ACI under drift, CQR, naming."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnforecast import intervals as iv
from rnnforecast import metrics

H = 4
PHI = 0.7


def _ar1(n: int, seed: int, sigma: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = sigma * rng.standard_normal(n)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = PHI * x[t - 1] + e[t]
    return x


def _windows(x: np.ndarray, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """Every stride-1 window's actual and AR(1) forecast from its last observed row: ``(B, H, 1)`` each."""
    origins = np.arange(0, len(x) - H)  # last observed row of each window
    leads = np.arange(1, H + 1)
    actual = x[origins[:, None] + leads]  # (B, H)
    point = x[origins][:, None] * phi**leads  # (B, H)
    return actual[..., None], point[..., None]


@pytest.fixture(scope="module")
def ar1():
    """Train/val/test AR(1) stretches; phi estimated by least squares on the training stretch."""
    x = _ar1(9000, seed=3)
    train, val, test = x[:3000], x[3000:5500], x[5500:]
    phi = float(train[1:] @ train[:-1] / (train[:-1] @ train[:-1]))
    return phi, _windows(val, phi), _windows(test, phi)


# --------------------------------------------------------------------------- axis and names


def test_quantile_axis_and_names():
    qs = iv.quantile_levels([95, 80])
    np.testing.assert_allclose(qs, [0.025, 0.1, 0.5, 0.9, 0.975])
    assert [iv.quantile_column("temp_max", q) for q in qs] == [
        "temp_max_p2.5",
        "temp_max_p10",
        "temp_max_p50",
        "temp_max_p90",
        "temp_max_p97.5",
    ]
    assert iv.bound_indices([80, 95]) == [(1, 3), (0, 4)]
    assert iv.median_index([80, 95]) == 2
    with pytest.raises(ValueError, match="strictly between 0 and 100. Received: levels=\\[80, 100\\]"):
        iv.check_levels([80, 100])


# --------------------------------------------------------------------------- finite-sample quantile


def test_conformal_quantile_matches_hand_computation():
    scores = np.array([7.0, 1, 9, 3, 10, 2, 5, 4, 8, 6])[:, None]  # n = 10
    # alpha 0.2: rank ceil(11 * 0.8) = ceil(8.8) = 9 -> 9th smallest = 9
    assert iv.conformal_quantile(scores, 0.2)[0] == 9.0
    # That is numpy's inverted_cdf at level k/n. numpy's "higher" at k/n interpolates at position
    # (n-1) k/n and so returns the (k+1)-th smallest: one rank more conservative than the theorem needs.
    assert iv.conformal_quantile(scores, 0.2)[0] == np.quantile(scores[:, 0], 9 / 10, method="inverted_cdf")
    assert np.quantile(scores[:, 0], 9 / 10, method="higher") == 10.0
    # alpha 0.1: rank ceil(9.9) = 10 -> 10; alpha 0.09: rank ceil(10.01) = 11 > 10 -> unbounded
    assert iv.conformal_quantile(scores, 0.1)[0] == 10.0
    assert iv.conformal_quantile(scores, 0.09)[0] == np.inf
    # alpha 0.5: rank ceil(5.5) = 6, exact arithmetic edge ceil((n+1)(1-a)) with (n+1)(1-a) integral: n=9, a=0.1 -> 9
    assert iv.conformal_quantile(scores, 0.5)[0] == 6.0
    assert iv.conformal_quantile(np.arange(1.0, 10)[:, None], 0.1)[0] == 9.0
    assert iv.conformal_rank(9, 0.1) == 9
    assert iv.min_calibration_windows(0.05) == 19 and iv.min_calibration_windows(0.2) == 4


def test_too_few_windows_is_unbounded_and_said():
    res = np.random.default_rng(0).normal(size=(10, 2, 1))
    cal = iv.calibrate(res, [80, 95])
    assert np.isfinite(cal.width[0]).all() and np.isinf(cal.width[1]).all()
    assert cal.warnings() == [
        "95% interval is unbounded: 10 validation windows, at least 19 needed. "
        "Fix: enlarge the validation split or lower the level."
    ]
    q = iv.apply_bands(np.zeros((3, 2, 1)), cal.width, cal.levels)
    assert np.isinf(q[..., 0]).all() and np.isinf(q[..., 4]).all()  # never a silently narrow band
    back = iv.Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(back.width, cal.width)
    assert back.levels == (80.0, 95.0) and back.n == 10


# --------------------------------------------------------------------------- coverage on known noise


def test_conformal_coverage_on_ar1_within_4_points(ar1):
    _, (va, vp), (ta, tp) = ar1
    q, cal = iv.conformal_bands(va, vp, tp, [80, 95])
    assert q.shape == (len(ta), H, 1, 5) and cal.n == len(va)
    m = iv.interval_metrics(ta, q, [80, 95], ["y"])
    for level in ("80", "95"):
        per_lead = m["levels"][level]["coverage"]["per_lead"]
        assert len(per_lead) == H and len(ta) > 3000
        for cov in per_lead:
            assert abs(cov - float(level)) <= 4, (level, per_lead)
    # Widths grow with the lead (AR(1) forecast error variance grows with h).
    w = m["levels"]["80"]["width"]["per_lead"]
    assert all(a < b for a, b in zip(w, w[1:]))
    # The 80% half-width at lead 1 is close to the Gaussian quantile 1.2816 * sigma (sigma = 1).
    assert abs(cal.width[0, 0, 0] - 1.2816) < 0.1


def test_bonferroni_joint_coverage(ar1):
    _, (va, vp), (ta, tp) = ar1
    per_step, _ = iv.conformal_bands(va, vp, tp, [80])
    joint, cal = iv.conformal_bands(va, vp, tp, [80], joint=True)
    m_step = iv.interval_metrics(ta, per_step, [80], ["y"])
    m_joint = iv.interval_metrics(ta, joint, [80], ["y"])
    assert m_step["levels"]["80"]["joint_coverage"]["overall"] < 75  # per-step bands miss whole paths
    assert m_joint["levels"]["80"]["joint_coverage"]["overall"] >= 80
    assert (cal.width > iv.calibrate(va - vp, [80]).width).all()


def test_persistence_baseline_gets_a_band(ar1):
    """The same call bands persistence (metrics.baseline_forecasts) on the same windows."""
    _, _, _ = ar1
    x = _ar1(6000, seed=5)[:, None]  # (N, 1)
    lo_val, lo_test = 1000, 3500
    val_starts = np.arange(lo_val, lo_test - 8 - H)
    test_starts = np.arange(lo_test, len(x) - 8 - H)

    def actual_and_persistence(starts):
        f = metrics.baseline_forecasts(x, starts, 8, H, season=1, series_lo=np.zeros_like(starts))["persistence"]
        return x[starts[:, None] + 8 + np.arange(H)], f

    va, vp = actual_and_persistence(val_starts)
    ta, tp = actual_and_persistence(test_starts)
    q, _ = iv.conformal_bands(va, vp, tp, [80])
    cov = iv.interval_metrics(ta, q, [80], ["y"])["levels"]["80"]["coverage"]["per_lead"]
    assert all(abs(c - 80) <= 4 for c in cov), cov
    np.testing.assert_array_equal(q[..., 1], tp[..., 0])  # persistence is the median


# --------------------------------------------------------------------------- adaptive conformal inference


def test_aci_recovers_coverage_after_variance_shift():
    rng = np.random.default_rng(11)
    cal = np.abs(rng.normal(size=(500, 1, 1)))
    test = np.abs(rng.normal(scale=2.5, size=(3000, 1, 1)))  # the test period drifted from validation
    static = iv.calibrate(cal, [80]).width  # (1, 1, 1)
    static_cov = 100 * np.mean(test <= static[0])
    aci = iv.adaptive_conformal(cal, test, [80], gamma=0.02, lag=1, window=500)
    aci_cov = 100 * np.mean(test[:, None] <= aci.width)
    late_cov = 100 * np.mean(test[1000:, None] <= aci.width[1000:])
    assert static_cov < 50
    assert abs(aci_cov - 80) <= 4 and abs(late_cov - 80) <= 4, (aci_cov, late_cov)
    # Right after the shift the rolling pool alone (gamma 0) still holds validation scores; ACI's level does the work.
    pool_only = iv.adaptive_conformal(cal, test, [80], gamma=0.0, lag=1, window=500)
    assert 100 * np.mean(test[:300, None] <= pool_only.width[:300]) < 60
    assert 100 * np.mean(test[:300, None] <= aci.width[:300]) > 72
    # The level moved below 0.2 while the pool still held validation scores, and back toward 0.2 after.
    assert aci.alpha[:200].min() < 0.15 and abs(aci.alpha[-500:].mean() - 0.2) < 0.05


def test_aci_lag_waits_for_outcomes():
    cal = np.ones((50, 3, 1))
    test = np.full((10, 3, 1), 5.0)  # every window is missed
    aci = iv.adaptive_conformal(cal, test, [80], gamma=0.1, lag=3)
    a = aci.alpha[:, 0, 0, 0]
    np.testing.assert_allclose(a[:3], 0.2)  # no outcome known for the first H windows
    np.testing.assert_allclose(a[3:6], [0.2 + 0.1 * (0.2 - 1) * k for k in (1, 2, 3)])
    assert np.isinf(aci.width[5, 0, 0, 0]) and a[5] < 0  # alpha_t <= 0: infinite band
    with pytest.raises(ValueError, match="lag must be >= 1"):
        iv.adaptive_conformal(cal, test, [80], lag=0)


# --------------------------------------------------------------------------- scores against hand computations


def test_pinball_crps_interval_score_by_hand():
    y = np.array([[[1.0]], [[4.0]]])  # (B=2, H=1, T=1)
    q = np.array([[[[0.0, 2.0, 3.0]]], [[[0.0, 2.0, 3.0]]]])  # levels [50] -> quantiles .25 .5 .75
    qs = iv.quantile_levels([50])
    np.testing.assert_allclose(qs, [0.25, 0.5, 0.75])
    # pinball: y=1: q.25 f=0 -> .25*1=.25; q.5 f=2 -> .5*1=.5; q.75 f=3 -> .25*2=.5
    #          y=4: q.25 -> .25*4=1;       q.5 -> .5*2=1;     q.75 -> .75*1=.75
    m = iv.interval_metrics(y, q, [50], ["y"], scale=np.array([2.0]))
    assert m["quantiles"]["p25"]["overall"] == pytest.approx((0.25 + 1) / 2)
    assert m["quantiles"]["p50"]["overall"] == pytest.approx((0.5 + 1) / 2)
    assert m["quantiles"]["p75"]["overall"] == pytest.approx((0.5 + 0.75) / 2)
    # CRPS weights (midpoint rule on [0, 1]): .375, .25, .375
    np.testing.assert_allclose(iv.crps_weights(qs), [0.375, 0.25, 0.375])
    crps1 = 2 * (0.375 * 0.25 + 0.25 * 0.5 + 0.375 * 0.5)
    crps2 = 2 * (0.375 * 1 + 0.25 * 1 + 0.375 * 0.75)
    assert m["crps"]["overall"] == pytest.approx((crps1 + crps2) / 2)
    # interval score, alpha 0.5, band [0, 3]: y=1 inside -> 3; y=4 above -> 3 + 2/0.5 * 1 = 7
    lv = m["levels"]["50"]
    assert lv["interval_score"]["overall"] == pytest.approx(5.0)
    assert lv["msis"]["overall"] == pytest.approx(2.5)
    assert lv["coverage"]["overall"] == 50.0 and lv["width"]["overall"] == 3.0
    assert lv["joint_coverage"] == {"overall": 50.0, "per_target": {"y": 50.0}}


def test_crps_of_a_point_forecast_is_absolute_error():
    y = np.array([1.0, -2.0, 5.0])
    f = np.array([0.0, 0.5, 5.0])
    np.testing.assert_allclose(iv.crps_from_quantiles(y, f[:, None], np.array([0.5])), np.abs(y - f))


def test_crps_approximation_approaches_gaussian_closed_form():
    """Many quantiles of N(0, 1) scored at y = 0: the closed form is 2 phi(0) - 1/sqrt(pi) ~ 0.2337."""
    from statistics import NormalDist

    qs = np.linspace(0.005, 0.995, 199)
    quant = np.array([NormalDist().inv_cdf(q) for q in qs])
    crps = iv.crps_from_quantiles(np.zeros(1), quant[None], qs)[0]
    assert crps == pytest.approx(2 * NormalDist().pdf(0) - 1 / np.sqrt(np.pi), abs=0.005)


def test_seasonal_naive_scale_by_hand():
    x = np.array([[1.0], [3.0], [2.0], [6.0], [10.0], [0.0], [1.0]])
    # season 2 over one series: |2-1|, |6-3|, |10-2|, |0-6|, |1-10| -> mean 27/5
    assert iv.seasonal_naive_scale(x, 2)[0] == pytest.approx(27 / 5)
    # two series [0, 4) and [4, 7): |2-1|, |6-3| and |1-10| -> 13/3
    assert iv.seasonal_naive_scale(x, 2, [(0, 4), (4, 7)])[0] == pytest.approx(13 / 3)


def test_coverage_warning_only_past_five_points():
    y = np.zeros((100, 1, 1))
    q = np.zeros((100, 1, 1, 3))
    q[..., 0], q[..., 2] = -1, 1
    q[:30, ..., 0] = 0.5  # 30 windows missed below -> 70% coverage
    m = iv.interval_metrics(y, q, [80], ["y"])
    assert m["levels"]["80"]["coverage"]["overall"] == 70.0
    [line] = iv.coverage_warnings(m)
    assert line.startswith("warning: 80% interval covers 70.0% of test values (10.0 points below nominal")
    q[:30, ..., 0] = -1
    q[:24, ..., 0] = 0.5  # 76%: within 5 points
    assert iv.coverage_warnings(iv.interval_metrics(y, q, [80], ["y"])) == []


# --------------------------------------------------------------------------- bands and CQR


def test_apply_bands_orders_and_nests():
    point = np.array([[[10.0]]])
    width = np.array([[[2.0]], [[1.5]]])  # the 95% half-width tied below the 80% one: nesting enforced
    q = iv.apply_bands(point, width, [80, 95])
    np.testing.assert_allclose(q[0, 0, 0], [8.0, 8.0, 10.0, 12.0, 12.0])
    per_window = np.array([[[[1.0]], [[3.0]]]])  # (B, L, H, T) from adaptive
    np.testing.assert_allclose(iv.apply_bands(point, per_window, [80, 95])[0, 0, 0], [7, 9, 10, 11, 13])


def test_cqr_widens_a_too_narrow_head_to_nominal():
    rng = np.random.default_rng(2)
    n, b = 2000, 4000
    qs = iv.quantile_levels([80])  # .1 .5 .9
    z = np.array([-1.2816, 0.0, 1.2816])

    def head(size):  # a head that believes sigma = 0.6 while the noise has sigma = 1
        mu = rng.normal(size=(size, 2, 1))
        return mu, mu[..., None] + 0.6 * z

    mu_v, qv = head(n)
    yv = mu_v + rng.normal(size=mu_v.shape)
    mu_t, qt = head(b)
    yt = mu_t + rng.normal(size=mu_t.shape)
    cal = iv.calibrate_cqr(qv, yv, [80])
    assert cal.method == "cqr" and cal.width.shape == (1, 2, 1)
    assert abs(cal.width[0, 0, 0] - 0.4 * 1.2816) < 0.1
    before = iv.interval_metrics(yt, qt, [80], ["y"])["levels"]["80"]["coverage"]["overall"]
    fixed = iv.apply_cqr(qt, cal)
    after = iv.interval_metrics(yt, fixed, [80], ["y"])["levels"]["80"]["coverage"]["overall"]
    assert before < 60 and abs(after - 80) <= 4
    np.testing.assert_array_equal(fixed[..., 1], qt[..., 1])
    assert qs.shape == (3,)


def test_cqr_negative_correction_never_crosses():
    q = np.array([[[[-1.0, 0.0, 1.0]]]])
    cal = iv.Calibration((80.0,), np.array([[[-3.0]]]), n=100, method="cqr")
    np.testing.assert_allclose(iv.apply_cqr(q, cal)[0, 0, 0], [0.0, 0.0, 0.0])


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_levels=st.integers(1, 4),
    negative=st.booleans(),
)
def test_bands_and_cqr_never_cross(seed, n_levels, negative):
    rng = np.random.default_rng(seed)
    levels = sorted(rng.choice(np.arange(5, 100, 5), n_levels, replace=False).tolist())
    point = rng.normal(size=(6, 3, 2))
    width = np.abs(rng.normal(size=(n_levels, 3, 2)))  # unsorted across levels on purpose
    q = iv.apply_bands(point, width, levels)
    assert q.shape == (6, 3, 2, 2 * n_levels + 1) and (np.diff(q, axis=-1) >= 0).all()
    corr = rng.normal(size=(n_levels, 3, 2)) * (3 if negative else 1)
    fixed = iv.apply_cqr(q, iv.Calibration(tuple(float(c) for c in levels), corr, n=50, method="cqr"))
    assert (np.diff(fixed, axis=-1) >= 0).all()
    np.testing.assert_array_equal(fixed[..., n_levels], point)
    m = iv.interval_metrics(point + rng.normal(size=point.shape), q, levels, ["a", "b"])
    assert set(m["levels"]) == {f"{c:g}" for c in levels} and len(m["quantiles"]) == 2 * n_levels + 1
    assert set(m["levels"][f"{levels[0]:g}"]["joint_coverage"]["per_target"]) == {"a", "b"}
