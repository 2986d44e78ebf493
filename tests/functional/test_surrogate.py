"""Surrogate derivatives against their textbook formulas, and the known-spike shortcut of the replay."""

import math

import pytest
import torch

from cellfit.functional.surrogate import fast_sigmoid, get_surrogate, known_spikes, multi_gaussian

F64 = torch.float64


def normal_pdf(x, mu, sigma):
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def surrogate_grad(spike_fn, x):
    x = x.clone().requires_grad_()
    spike_fn(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("s, h, k, gamma", [(0.5, 0.15, 6.0, 0.5), (0.2, 0.3, 2.0, 1.0), (1.0, 0.0, 3.0, 2.0)])
def test_multi_gaussian_derivative_is_the_formula(s, h, k, gamma):
    x = torch.cat([torch.linspace(-1e4, 1e4, 20001, dtype=F64), torch.linspace(-5, 5, 1001, dtype=F64)])
    want = gamma * ((1 + h) * normal_pdf(x, 0, s) - h * normal_pdf(x, s, k * s) - h * normal_pdf(x, -s, k * s))
    got = surrogate_grad(multi_gaussian(s, h, k, gamma), x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    assert torch.isfinite(surrogate_grad(multi_gaussian(s, h, k, gamma), x.float())).all()


def test_fast_sigmoid_derivative_and_heaviside_forward():
    x = torch.linspace(-50, 50, 1001, dtype=F64)
    torch.testing.assert_close(surrogate_grad(fast_sigmoid(7.0), x), 1 / (7.0 * x.abs() + 1) ** 2)
    assert fast_sigmoid()(torch.tensor([-1.0, 0.0, 1e-7])).tolist() == [0.0, 0.0, 1.0]  # strict threshold


@pytest.mark.parametrize("name", ["multi_gaussian", "fast_sigmoid", "custom"])
def test_known_spikes_equals_the_generic_straight_through_form(name):
    spike_fn = (lambda x: (x > 0).to(x.dtype) + 0.1 * (x - x.detach()) * torch.sigmoid(x)) if name == "custom" \
        else get_surrogate(name)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 50, dtype=F64, generator=g)
    spikes = (torch.rand(3, 4, 50, generator=g) < 0.2).to(F64)
    gate = (torch.rand(3, 4, 50, generator=g) < 0.8).to(F64)
    weights = torch.randn(3, 4, 50, dtype=F64, generator=g)
    grads = []
    for fast in (True, False):
        x = x0.clone().requires_grad_()
        if fast:
            out = known_spikes(x, spikes, gate, spike_fn)
        else:
            h = spike_fn(x)
            out = (h - h.detach() + spikes) * gate
        assert torch.equal(out.detach(), spikes * gate)
        (out * weights).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-15)
    assert (grads[0][gate == 0] == 0).all() and grads[0].abs().sum() > 0
