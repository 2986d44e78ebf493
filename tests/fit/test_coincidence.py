"""The coincidence factor Gamma and the repeat ceiling (cellfit.fit.coincidence)."""

import numpy as np
import pytest

from cellfit.fit.coincidence import coincidence_factor, coincidences, gamma_components, repeat_ceiling


def test_coincidences_are_one_to_one():
    data = np.array([10.0, 20.0, 30.0])
    # two predicted spikes near 10 ms count once; 26 ms matches 30 within 4 ms; 50 matches nothing
    assert coincidences(data, np.array([8.0, 11.0, 26.0, 50.0]), 4.0) == 2
    assert coincidences(data, data, 4.0) == 3
    assert coincidences(data, np.array([]), 4.0) == 0


def test_gamma_is_one_for_identical_trains_and_follows_the_formula():
    t = [np.array([100.0, 300.0, 600.0, 900.0])]
    assert coincidence_factor(t, t, duration=1000.0, window=4.0) == pytest.approx(1.0)
    # by hand: 2 of 4 data spikes matched, model 4 spikes in 1000 ms -> nu = 0.004/ms
    model = [np.array([102.0, 320.0, 598.0, 950.0])]
    nu, w = 4 / 1000.0, 4.0
    expected = (2 - 2 * nu * w * 4) / (0.5 * (4 + 4)) / (1 - 2 * nu * w)
    assert coincidence_factor(t, model, 1000.0, 4.0) == pytest.approx(expected)


def test_gamma_of_independent_poisson_trains_is_near_zero():
    rng = np.random.default_rng(0)
    dur = 200_000.0  # ms; long, so that chance coincidences average out (s.e. ~0.02)
    data = [np.sort(rng.uniform(0, dur, 2000))]
    model = [np.sort(rng.uniform(0, dur, 2000))]
    assert abs(coincidence_factor(data, model, dur, 4.0)) < 0.06


def test_gamma_components_normalises_by_the_repeats():
    rng = np.random.default_rng(1)
    T, dt = 20_000, 0.1
    base = np.zeros((3, T))
    base[:, rng.choice(T, 40, replace=False)] = 1
    rec = np.stack([base] * 4)
    res = gamma_components(base, rec, dt)  # a prediction equal to identical repeats
    assert res.gamma == pytest.approx(1.0) and res.gamma_reliability == pytest.approx(1.0)
    one_per_repeat = gamma_components(rec, rec, dt)  # (R, E, T): each repeat's own prediction
    assert one_per_repeat.gamma == pytest.approx(1.0)
    with pytest.raises(ValueError, match="do not agree"):
        gamma_components(base, np.zeros((4, 3, T)), dt)
    with pytest.raises(ValueError, match="n_repeats >= 2"):
        gamma_components(base, rec[:1], dt)


def test_repeat_ceiling_is_one_for_exchangeable_repeats():
    rng = np.random.default_rng(2)
    T, dt = 10_000, 0.1
    rate = 0.002 * (1 + np.sin(np.arange(T) * dt / 50.0))  # spikes per bin, slowly modulated
    same = np.stack([(rng.random((1, T)) < rate).astype(float)] * 4)
    assert repeat_ceiling(same, dt) == pytest.approx(1.0)
    # independent noisy repeats of one rate: one repeat predicts the others as well as they predict
    # each other, so the ceiling is 1 up to sampling noise (a few % with ~40 spikes per repeat)
    noisy = (rng.random((4, 1, T)) < rate).astype(float)
    assert repeat_ceiling(noisy, dt) == pytest.approx(1.0, abs=0.15)
    assert np.isnan(repeat_ceiling(noisy[:2], dt))  # needs 3 repeats: 1 predicting >= 2
