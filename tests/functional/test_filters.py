"""The FFT exponential filter's hand-written backward against finite differences."""

import pytest
import torch

from cellfit.functional.filters import exp_filter, exp_sum_filter, fft_length

F64 = torch.float64


@pytest.mark.parametrize(
    "shape, lam_shape, max_lag",
    [
        ((2, 3, 17), (3,), None),  # one decay per neuron (the engine's case)
        ((4, 13), (), None),  # a scalar decay; FFT length 25 is odd (no Nyquist bin)
        ((2, 3, 20), (3,), 5),  # truncated kernel (van Rossum's max_lag)
        ((5, 2, 1, 11), (2, 1), None),  # broadcast over leading and inner axes
        ((2, 1, 16), (1,), None),
    ],
)
def test_exp_filter_gradients(shape, lam_shape, max_lag):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, dtype=F64, generator=g, requires_grad=True)
    lam = (-0.05 - torch.rand(lam_shape, dtype=F64, generator=g)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: exp_filter(a, b, max_lag), (x, lam))
    # and against autograd through the direct sum
    T = shape[-1]
    lags = torch.arange(T, dtype=F64)
    lag = lags[:, None] - lags[None, :]
    keep = (lag >= 0) & (lag < (max_lag or T))
    w = torch.randn(*shape, dtype=F64, generator=g)
    direct = torch.einsum("...tj,...j->...t", torch.exp(lag.clamp(min=0) * lam[..., None, None]) * keep, x)
    gd = torch.autograd.grad((direct * w).sum(), (x, lam))
    gf = torch.autograd.grad((exp_filter(x, lam, max_lag) * w).sum(), (x, lam))
    for a, b in zip(gf, gd):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_exp_filter_no_decay_gradient_for_a_float_and_empty_input():
    x = torch.randn(2, 7, dtype=F64, requires_grad=True)
    exp_filter(x, -0.2).sum().backward()
    torch.testing.assert_close(x.grad[..., -1], torch.ones(2, dtype=F64))  # last input feeds only y[T-1]
    assert exp_filter(torch.zeros(3, 0), -0.1).shape == (3, 0)
    assert fft_length(25) == 25 and fft_length(17) == 18


def test_exp_sum_filter_is_the_weighted_sum_of_exp_filters():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 19, dtype=F64, generator=g, requires_grad=True)
    amp = torch.randn(3, 2, dtype=F64, generator=g, requires_grad=True)
    lam = (-0.02 - torch.rand(3, 2, dtype=F64, generator=g)).requires_grad_()
    want = sum(amp[:, j, None] * exp_filter(x, lam[:, j]) for j in range(2))
    got = exp_sum_filter(x, amp, lam)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)  # float64 rounding of different FFT sums
    assert torch.autograd.gradcheck(exp_sum_filter, (x, amp, lam))
    assert exp_sum_filter(x, amp[:, :0], lam[:, :0]).abs().sum() == 0  # no terms: zero
