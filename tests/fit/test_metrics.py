"""Tests for cellfit.fit.metrics: exponential filter, van Rossum distance, ETV."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.signal import lfilter

from cellfit.fit.metrics import (
    ETVResult,
    etv_components,
    exp_filter,
    explained_temporal_variance,
    explained_variance,
    gaussian_smooth,
    van_rossum_distance,
)

# ---------------------------------------------------------------------------
# helpers: slow reference formulas and synthetic recordings
# ---------------------------------------------------------------------------


def slow_exp_filter(s: np.ndarray, tau_ms: float, dt_ms: float) -> np.ndarray:
    """Direct O(T^2) sum f[t] = sum_{j<=t} exp(-(t-j) dt/tau) s[j], float64."""
    n = s.shape[-1]
    lag = np.arange(n)[:, None] - np.arange(n)[None, :]
    kernel = np.where(lag >= 0, np.exp(-np.clip(lag, 0, None) * dt_ms / tau_ms), 0.0)
    return s @ kernel.T


def slow_van_rossum(p: np.ndarray, t: np.ndarray, tau_ms: float, dt_ms: float) -> float:
    """Exact (1/tau) integral of the squared difference of the piecewise exponentials,
    integrating each bin numerically on a fine sub-grid (midpoint rule, 200 points)."""
    diff = slow_exp_filter(p - t, tau_ms, dt_ms)
    u = (np.arange(200) + 0.5) / 200 * dt_ms  # time since the bin start
    decay2 = np.exp(-2 * u / tau_ms).mean() * dt_ms  # integral of exp(-2u/tau) over one bin
    return float((diff**2).sum(-1) * decay2 / tau_ms)


def bin_times(times_ms: np.ndarray, dt_ms: float, n_bins: int) -> np.ndarray:
    """Spike counts per bin (floor to the bin start)."""
    idx = np.floor(times_ms / dt_ms + 1e-9).astype(int)
    idx = idx[(idx >= 0) & (idx < n_bins)]
    return np.bincount(idx, minlength=n_bins).astype(np.float64)


def make_recordings(rng, n_repeats=4, duration_ms=20_000.0, dt_ms=1.0, jitter_ms=2.0, p_drop=0.2, rate_hz=20.0):
    """A common inhomogeneous-Poisson 'true' train, then per repeat Gaussian jitter,
    random drops and a few spurious spikes, so repeats differ like real recordings.
    Returns (base_train, repeats) binned at dt_ms: shapes (T,) and (R, T)."""
    n_bins = int(round(duration_ms / dt_ms))
    # rate modulated on ~50 ms scales so the smoothed (10 ms) trains have structure
    t = np.arange(0.0, duration_ms, 1.0)
    mod = np.convolve(rng.standard_normal(t.size), np.ones(50) / np.sqrt(50), mode="same")
    rate = rate_hz * np.exp(mod - 0.5)  # Hz, per ms grid
    base = t[rng.random(t.size) < rate / 1000.0]  # spike times in ms, 1 ms grid
    base = np.sort(base + rng.random(base.size))  # sub-ms position
    repeats = []
    for _ in range(n_repeats):
        keep = base[rng.random(base.size) > p_drop]
        jittered = keep + rng.normal(0.0, jitter_ms, keep.size)
        extra = rng.random(int(0.05 * base.size)) * duration_ms
        repeats.append(bin_times(np.concatenate([jittered, extra]), dt_ms, n_bins))
    return bin_times(base, dt_ms, n_bins), np.stack(repeats)


def random_trains(rng, shape, rate_hz, dt_ms):
    return (rng.random(shape) < rate_hz * dt_ms / 1000.0).astype(np.float64)


# ---------------------------------------------------------------------------
# exp_filter
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dt_ms", [0.05, 0.1, 1.0, 4.0])
@pytest.mark.parametrize("tau_ms", [2.0, 10.0, 100.0])
def test_exp_filter_matches_direct_sum(dt_ms, tau_ms):
    rng = np.random.default_rng(1)
    s = random_trains(rng, (2, 3, 257), 200.0, dt_ms)
    s[0, 0, 0] = 2.0  # a count > 1 and a spike in the first bin
    got = exp_filter(torch.from_numpy(s), tau_ms, dt_ms)
    assert got.shape == s.shape and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), slow_exp_filter(s, tau_ms, dt_ms), rtol=0, atol=1e-12)


def test_exp_filter_float32_long_trace_accuracy():
    """T = 30,000 at 0.1 ms (3 s), float32 FFT vs a float64 recursion.
    Observed max abs error ~8e-7 with peaks ~5, i.e. ~2e-7 of the peak."""
    rng = np.random.default_rng(2)
    dt_ms, tau_ms = 0.1, 10.0
    s = random_trains(rng, (4, 30_000), 60.0, dt_ms)
    ref = lfilter([1.0], [1.0, -math.exp(-dt_ms / tau_ms)], s, axis=-1)
    got = exp_filter(torch.from_numpy(s).float(), tau_ms, dt_ms)
    assert got.dtype == torch.float32
    err = np.abs(got.double().numpy() - ref).max()
    assert err < 5e-6 and err / ref.max() < 1e-6


def test_exp_filter_keeps_dtype_and_casts_ints():
    s = torch.zeros(5, dtype=torch.int64)
    s[1] = 1
    out = exp_filter(s, 10.0, 1.0)
    assert out.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(out.numpy(), [0, 1, *np.exp(-np.arange(1, 4) / 10.0)], atol=1e-6)
    half = exp_filter(s.to(torch.bfloat16), 10.0, 1.0)
    assert half.dtype == torch.bfloat16
    assert exp_filter(torch.zeros(3, 0), 10.0, 1.0).shape == (3, 0)


def test_exp_filter_gradcheck():
    torch.manual_seed(0)
    s = torch.rand(2, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: exp_filter(x, 3.0, 0.7), (s,))


def test_exp_filter_gradient_is_anticausal_filter():
    """d/ds_j of sum_t w_t f_t = sum_{t>=j} a^(t-j) w_t."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal(64)
    s = torch.zeros(64, dtype=torch.float64, requires_grad=True)
    (exp_filter(s, 5.0, 1.0) * torch.from_numpy(w)).sum().backward()
    expected = slow_exp_filter(w[::-1].copy(), 5.0, 1.0)[::-1]
    np.testing.assert_allclose(s.grad.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_exp_filter_rejects_bad_time_constants(bad):
    with pytest.raises(ValueError, match="tau_ms must be a positive"):
        exp_filter(torch.zeros(4), bad, 0.1)
    with pytest.raises(ValueError, match="dt_ms must be a positive"):
        exp_filter(torch.zeros(4), 10.0, bad)


@settings(max_examples=30, deadline=None)
@given(
    a=arrays(np.float64, 40, elements=st.floats(-10, 10)),
    b=arrays(np.float64, 40, elements=st.floats(-10, 10)),
    c=st.floats(-5, 5),
    tau_ms=st.floats(0.1, 100.0),
    dt_ms=st.floats(0.01, 5.0),
)
def test_exp_filter_is_linear(a, b, c, tau_ms, dt_ms):
    f = lambda x: exp_filter(torch.from_numpy(x), tau_ms, dt_ms).numpy()  # noqa: E731
    np.testing.assert_allclose(f(a + c * b), f(a) + c * f(b), atol=1e-9 * (1 + tau_ms / dt_ms))


# ---------------------------------------------------------------------------
# van Rossum distance
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dt_ms", [0.1, 1.0, 4.0])
def test_van_rossum_matches_integral(dt_ms):
    rng = np.random.default_rng(4)
    p = random_trains(rng, (3, 300), 100.0, dt_ms)
    t = random_trains(rng, (3, 300), 100.0, dt_ms)
    got = van_rossum_distance(torch.from_numpy(p), torch.from_numpy(t), 10.0, dt_ms, reduction="none")
    assert got.shape == (3,)
    expected = [slow_van_rossum(p[i], t[i], 10.0, dt_ms) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)  # midpoint rule on 200 points


@pytest.mark.parametrize("dt_ms", [0.05, 0.1, 1.0, 4.0])
def test_van_rossum_closed_forms(dt_ms):
    tau_ms, n = 10.0, int(round(400.0 / dt_ms))  # 400 ms: 40 tau, tail exp(-80) negligible
    a = math.exp(-dt_ms / tau_ms)
    empty = torch.zeros(n, dtype=torch.float64)
    one = empty.clone()
    one[0] = 1.0
    # one spike vs nothing: 1/2, independent of dt
    d = van_rossum_distance(one, empty, tau_ms, dt_ms)
    assert d.item() == pytest.approx(0.5, rel=1e-12)
    # spike near the end of the window: only the part inside [0, T dt) counts
    late = empty.clone()
    late[n - 3] = 1.0
    d_late = van_rossum_distance(late, empty, tau_ms, dt_ms)
    assert d_late.item() == pytest.approx(0.5 * (1 - a**6), rel=1e-12)
    # two single spikes k bins apart: 1 - exp(-k dt / tau) (van Rossum 2001)
    k = 7
    other = empty.clone()
    other[k] = 1.0
    d2 = van_rossum_distance(one, other, tau_ms, dt_ms)
    assert d2.item() == pytest.approx(1 - math.exp(-k * dt_ms / tau_ms), rel=1e-10)
    # identical trains: 0
    assert van_rossum_distance(one, one, tau_ms, dt_ms).item() == 0.0


def test_van_rossum_is_dt_invariant():
    """Same spike times binned at 0.1 and 0.05 ms; differences come only from
    rounding times to bin starts (observed 8e-5 relative; 1 ms bins 0.4 %, 4 ms 3 %)."""
    rng = np.random.default_rng(5)
    dur = 2000.0
    p_times = np.sort(rng.random(60) * dur)
    t_times = np.sort(np.concatenate([p_times[::2] + rng.normal(0, 3, 30), rng.random(10) * dur]))
    ds = []
    for dt_ms in (0.1, 0.05):
        n = int(round(dur / dt_ms))
        p = torch.from_numpy(bin_times(p_times, dt_ms, n)).float()
        t = torch.from_numpy(bin_times(t_times, dt_ms, n)).float()
        ds.append(van_rossum_distance(p, t, 10.0, dt_ms).item())
    assert ds[0] == pytest.approx(ds[1], rel=1e-3)
    # coarse grids stay close too: spikes move by up to one bin, and the exact
    # (1 - exp(-2 dt/tau)) / 2 weight removes the O(dt/tau) quadrature bias
    for dt_ms, rel in ((1.0, 2e-2), (4.0, 1e-1)):
        n = int(round(dur / dt_ms))
        p = torch.from_numpy(bin_times(p_times, dt_ms, n))
        t = torch.from_numpy(bin_times(t_times, dt_ms, n))
        assert van_rossum_distance(p, t, 10.0, dt_ms).item() == pytest.approx(ds[1], rel=rel)


def test_van_rossum_reductions_and_broadcasting():
    rng = np.random.default_rng(6)
    p = torch.from_numpy(random_trains(rng, (2, 3, 200), 100.0, 1.0))
    t = torch.from_numpy(random_trains(rng, (3, 200), 100.0, 1.0))  # broadcast over the first axis
    none = van_rossum_distance(p, t, 10.0, 1.0, reduction="none")
    assert none.shape == (2, 3)
    assert van_rossum_distance(p, t, 10.0, 1.0, reduction="mean").item() == pytest.approx(none.mean().item())
    assert van_rossum_distance(p, t, 10.0, 1.0, reduction="sum").item() == pytest.approx(none.sum().item())
    with pytest.raises(ValueError, match="reduction must be one of"):
        van_rossum_distance(p, t, reduction="max")
    with pytest.raises(ValueError, match="same number of time bins"):
        van_rossum_distance(p, t[..., :-1])


def test_van_rossum_repeats_equal_explicit_mean():
    rng = np.random.default_rng(7)
    dt_ms, tau_ms = 0.5, 10.0
    _, rec = make_recordings(rng, n_repeats=5, duration_ms=500.0, dt_ms=dt_ms)
    rec = torch.from_numpy(rec)  # (R, T)
    targets = torch.stack([rec, rec.roll(40, dims=-1)], dim=1)  # (R, 2 cells, T)
    pred = torch.from_numpy(random_trains(rng, (2, rec.shape[-1]), 40.0, dt_ms)).requires_grad_()

    got = van_rossum_distance(pred, targets, tau_ms, dt_ms, reduction="none", repeat_dim=0)
    explicit = torch.stack(
        [van_rossum_distance(pred, targets[r], tau_ms, dt_ms, reduction="none") for r in range(5)]
    ).mean(0)
    assert got.shape == (2,)
    torch.testing.assert_close(got, explicit, rtol=1e-10, atol=1e-12)
    # the mean-target shortcut differs by a constant that does not depend on pred
    shortcut = van_rossum_distance(pred, targets.mean(0), tau_ms, dt_ms, reduction="none")
    pred2 = torch.from_numpy(random_trains(rng, (2, rec.shape[-1]), 40.0, dt_ms))
    c1 = got - shortcut
    c2 = van_rossum_distance(pred2, targets, tau_ms, dt_ms, "none", repeat_dim=-3) - van_rossum_distance(
        pred2, targets.mean(0), tau_ms, dt_ms, "none"
    )
    torch.testing.assert_close(c1.detach(), c2, rtol=1e-10, atol=1e-12)
    assert (c1 > 0).all()
    # and the same gradient as the explicit mean
    (g_fast,) = torch.autograd.grad(got.sum(), pred)
    (g_slow,) = torch.autograd.grad(explicit.sum(), pred)
    torch.testing.assert_close(g_fast, g_slow)
    with pytest.raises(ValueError, match="must not be the last"):
        van_rossum_distance(pred, targets, repeat_dim=-1)


@settings(max_examples=30, deadline=None)
@given(
    p=arrays(np.float64, (2, 50), elements=st.sampled_from([0.0, 1.0])),
    t=arrays(np.float64, (2, 50), elements=st.sampled_from([0.0, 1.0])),
    dt_ms=st.floats(0.05, 5.0),
)
def test_van_rossum_symmetric_nonnegative(p, t, dt_ms):
    d_pt = van_rossum_distance(torch.from_numpy(p), torch.from_numpy(t), 10.0, dt_ms, reduction="none")
    d_tp = van_rossum_distance(torch.from_numpy(t), torch.from_numpy(p), 10.0, dt_ms, reduction="none")
    torch.testing.assert_close(d_pt, d_tp)
    assert (d_pt >= 0).all()
    assert ((d_pt == 0) == torch.from_numpy((p == t).all(-1))).all()


def test_van_rossum_gradcheck():
    torch.manual_seed(1)
    p = torch.rand(2, 9, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 9, dtype=torch.float64) < 0.3).double()
    assert torch.autograd.gradcheck(lambda x: van_rossum_distance(x, t, 4.0, 0.5), (p,))


# ---------------------------------------------------------------------------
# Gaussian smoothing and explained variance
# ---------------------------------------------------------------------------


def test_gaussian_smooth_kernel_and_shape():
    s = np.zeros((2, 301))
    s[0, 150] = 1.0
    y = gaussian_smooth(s, sigma_ms=2.0, dt_ms=0.5)  # sigma = 4 bins, radius 16
    assert y.shape == s.shape and y.dtype == np.float64
    assert y[0].sum() == pytest.approx(1.0)
    k = np.arange(-16, 17)
    g = np.exp(-0.5 * (k / 4.0) ** 2)
    np.testing.assert_allclose(y[0, 134:167], g / g.sum(), atol=1e-15)
    assert np.abs(y[0, :134]).max() < 1e-15 and np.abs(y[1]).max() < 1e-15
    np.testing.assert_allclose(gaussian_smooth(torch.from_numpy(s), 2.0, 0.5), y)


def test_explained_variance_hand_case():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, 3.0, 2.0, 4.0])
    # var x = var y = 1.25, x - y = [0, -1, 1, 0], var(x - y) = 0.5: EV = (2.5 - 0.5) / 2.5
    assert explained_variance(x, y) == pytest.approx(0.8)
    assert explained_variance(x, x + 7.0) == pytest.approx(1.0)
    assert explained_variance(x, -x) == pytest.approx(-1.0)
    assert explained_variance(x, np.zeros(4)) == 0.0
    np.testing.assert_allclose(explained_variance(np.stack([x, y]), y), [0.8, 1.0])


finite = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.float64, 16, elements=finite), y=arrays(np.float64, 16, elements=finite))
def test_explained_variance_symmetric_and_bounded(x, y):
    assume(x.std() > 1e-3 and y.std() > 1e-3)  # constant signals give 0/0
    ev = explained_variance(x, y)
    assert ev == pytest.approx(explained_variance(y, x), abs=1e-12)
    assert -1.0 - 1e-12 <= ev <= 1.0 + 1e-12
    # literal definition
    vx, vy, vd = x.var(), y.var(), (x - y).var()
    assert ev == pytest.approx((vx + vy - vd) / (vx + vy), abs=1e-9)


# ---------------------------------------------------------------------------
# Explained temporal variance
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recordings():
    """Four 20 s repeats at 1 ms (jitter 2 ms, 20 % drops, 5 % spurious spikes)."""
    return make_recordings(np.random.default_rng(8), n_repeats=4, duration_ms=20_000.0, dt_ms=1.0)


def test_etv_mean_of_repeats_scores_about_one(recordings):
    """The repeats' mean includes the repeat it is scored against and is less noisy
    than one repeat, so it scores above 1 (observed 1.12 with reliability 0.83; the
    noise-free rate would score 2(S+N)/(2S+N) in [1, 2)). The common train the repeats
    were made from scores 1.09."""
    base, rec = recordings
    res = etv_components(rec.mean(0), rec, dt_ms=1.0)
    assert isinstance(res, ETVResult)
    assert 0.5 < res.reliability < 0.9
    assert 1.0 < res.etv < 1.4
    assert res.etv == pytest.approx(res.model_ev / res.reliability)
    etv_base = explained_temporal_variance(base, rec, dt_ms=1.0)
    assert 0.9 < etv_base < 1.3


def test_etv_chance_predictions_score_about_zero(recordings):
    """No spikes: exactly 0. Constant rate: ~0 (the zero padding of the smoothing makes
    the edges non-constant; observed 5e-4). Time-shuffled repeat: ~0 (20 s of 10 ms-smoothed
    data is ~500 independent samples, sd ~0.05)."""
    _, rec = recordings
    assert abs(explained_temporal_variance(np.full(rec.shape[-1], 0.02), rec, dt_ms=1.0)) < 1e-2
    assert explained_temporal_variance(np.zeros(rec.shape[-1]), rec, dt_ms=1.0) == 0.0
    rng = np.random.default_rng(9)
    shuffled = rng.permutation(rec[0])
    assert abs(explained_temporal_variance(shuffled, rec, dt_ms=1.0)) < 0.15


def test_etv_noiseless_identical_prediction_is_one():
    rng = np.random.default_rng(10)
    train = random_trains(rng, 5000, 30.0, 1.0)
    rec = np.stack([train, train, train])
    res = etv_components(train, rec, dt_ms=1.0)
    assert res.etv == pytest.approx(1.0, abs=1e-12)
    assert res.reliability == pytest.approx(1.0, abs=1e-12)


def test_etv_epochs_are_concatenated(recordings):
    """(n_repeats, n_epochs, T) gives the same score as smoothing each epoch and
    concatenating them by hand."""
    base, rec = recordings
    rec_e = rec.reshape(4, 4, -1)  # 4 epochs of 5 s
    pred_e = base.reshape(4, -1)
    res = etv_components(pred_e, rec_e, dt_ms=1.0)
    ps = gaussian_smooth(pred_e, 10.0, 1.0).reshape(-1)
    rs = gaussian_smooth(rec_e, 10.0, 1.0).reshape(4, -1)
    model_ev = np.mean([explained_variance(ps, rs[r]) for r in range(4)])
    rel = np.mean([explained_variance(rs[i], rs[j]) for i in range(4) for j in range(i + 1, 4)])
    assert res.model_ev == pytest.approx(model_ev)
    assert res.reliability == pytest.approx(rel)
    assert res.etv == pytest.approx(model_ev / rel)
    # torch inputs are accepted too
    assert explained_temporal_variance(torch.from_numpy(pred_e), torch.from_numpy(rec_e), 1.0) == pytest.approx(res.etv)


def test_etv_realistic_dt():
    """Same spike times binned at 0.1 ms (T = 30,000 per epoch) score like 1 ms bins."""
    rng = np.random.default_rng(11)
    base, rec = make_recordings(rng, n_repeats=4, duration_ms=3000.0, dt_ms=0.1)
    assert rec.shape == (4, 30_000)
    coarse = lambda x: x.reshape(*x.shape[:-1], -1, 10).sum(-1)  # noqa: E731
    fine = explained_temporal_variance(base, rec, dt_ms=0.1)
    assert fine == pytest.approx(explained_temporal_variance(coarse(base), coarse(rec), dt_ms=1.0), abs=0.02)


def test_etv_errors():
    rec = np.zeros((3, 100))
    rec[:, 50] = 1.0
    with pytest.raises(ValueError, match="at least 2 recorded repeats"):
        etv_components(np.zeros(100), rec[:1], dt_ms=1.0)
    with pytest.raises(ValueError, match="does not match pred_spikes"):
        etv_components(np.zeros(99), rec, dt_ms=1.0)
    with pytest.raises(ValueError, match="must be \\(n_repeats"):
        etv_components(np.zeros(100), rec[None], dt_ms=1.0)
    with pytest.raises(ValueError, match="pred_spikes must be"):
        etv_components(np.zeros((1, 1, 100)), rec[None, None], dt_ms=1.0)
    with pytest.raises(ValueError, match="no repeat-to-repeat reliability.*contains spikes"):
        etv_components(np.zeros(100), np.zeros((3, 100)), dt_ms=1.0)
    with pytest.raises(ValueError, match="sigma_ms must be a positive"):
        etv_components(np.zeros(100), rec, dt_ms=1.0, sigma_ms=0.0)
