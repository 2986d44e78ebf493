"""The fused Triton block kernel against the step-by-step engine, and how the kernel is chosen.

Without a GPU the kernel runs in Triton's interpreter (``tests/conftest.py`` sets
``TRITON_INTERPRET=1`` before Triton is imported), so these tests check the kernel's
arithmetic on every machine; the ``gpu`` test checks the compiled kernel on CUDA.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cellfit.functional import ALIFParameters, ALIFState, ALIFStepParameters, ALIFTrace, alif_blocks, alif_standard
from cellfit.functional.alif import block_spikes, resolve_block_kernel
from cellfit.functional.triton_blocks import available

from test_alif import scenarios
from test_glif import assert_same_spikes_up_to_ties, assert_same_state, first_near_tie, glif_scenarios

# The interpreter runs each program's block loop in Python: keep sequences short
# (still several blocks, lengths not multiples of T_R, every T_R from 1 to 50).
short_scenarios = scenarios(max_T=lambda t_ref: 3 * t_ref + 40)
short_glif_scenarios = glif_scenarios(max_T=lambda t_ref: 3 * t_ref + 40)

F64 = torch.float64
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_kernel = pytest.mark.skipif(
    not (HAS_TRITON and (torch.cuda.is_available() or available("cpu"))),
    reason="needs Triton (and a GPU, or TRITON_INTERPRET=1)",
)
# where the kernel runs: the GPU when there is one (compiled), else the CPU (interpreter)
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def on_device(x):
    """Tensors (also inside NamedTuples such as parameters and states) moved to DEVICE."""
    if torch.is_tensor(x):
        return x.to(DEVICE)
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*map(on_device, x))
    return x


def assert_same_as_standard(current, params, w_rec=None, state=None):
    ref = alif_standard(current, params, w_rec=w_rec, state=state)
    out = block_spikes(*map(on_device, (current, params)), w_rec=on_device(w_rec), state=on_device(state),
                       kernel="triton")
    fused = ALIFTrace(out.spikes.cpu(), None, None, ALIFState(*(x if x is None else x.cpu() for x in out.state)))
    assert torch.equal(fused.spikes, ref.spikes.detach())
    assert torch.equal(fused.state.spikes, ref.state.spikes)
    torch.testing.assert_close(fused.state.v, ref.state.v, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fused.state.a, ref.state.a, rtol=1e-9, atol=1e-9)
    return ref, fused


@needs_kernel
@settings(max_examples=40)
@given(short_scenarios, st.floats(0.1, 0.9))
def test_fused_kernel_equals_standard(scenario, split):
    current, params, w_rec = scenario
    ref, fused = assert_same_as_standard(current, params, w_rec)
    n = int(ref.spikes.sum())
    event("no spikes" if n == 0 else "1-9 spikes" if n < 10 else "10+ spikes")
    # continuing from a state (refractory prefix, carried potential and adaptation)
    T = current.shape[-1]
    cut = max(1, int(split * T))
    if cut < T:
        first = alif_standard(current[..., :cut], params, w_rec=w_rec)
        assert_same_as_standard(current[..., cut:], params, w_rec, state=first.state)


@needs_kernel
@pytest.mark.parametrize("t_ref", [1, 2, 20, 33])
@pytest.mark.parametrize("recurrent", [False, True])
def test_fused_kernel_busy_neurons(t_ref, recurrent):
    # strong drive: a spike in most blocks, so refractory prefixes and resets are exercised
    g = torch.Generator().manual_seed(t_ref)
    n = 3
    params = ALIFParameters(torch.tensor([2.0, 10.0, 40.0], dtype=F64), torch.tensor([5.0, 50.0, 500.0], dtype=F64),
                            torch.tensor([0.0, 0.3, 1.0], dtype=F64), arp_ms=t_ref * 0.1).discretise(0.1)  # fmt: skip
    current = 4.0 + 3.0 * torch.randn(2, n, 7 * t_ref + 40, dtype=F64, generator=g)
    w_rec = torch.randn(n, n, dtype=F64, generator=g) if recurrent else None
    ref, _ = assert_same_as_standard(current, params, w_rec)
    assert ref.spikes.sum() >= 6


@needs_kernel
def test_fused_kernel_float32_and_gradients_through_replay(monkeypatch):
    g = torch.Generator().manual_seed(0)
    params = ALIFParameters(torch.tensor([8.0, 20.0]), torch.tensor([80.0, 300.0]), torch.tensor([0.2, 0.5]),
                            arp_ms=2.0).discretise(0.1)  # fmt: skip
    params = on_device(params)
    current = (1.2 + 1.5 * torch.randn(3, 2, 400, generator=g)).to(DEVICE).requires_grad_()
    # float32 kernels round differently (prefix scan vs convolution, CPU vs GPU); exact equality is
    # only promised where no decision is a near tie: the float64 reference keeps every |V - theta|
    # above 1e-4 on this input, > 100x float32's rounding over 400 steps
    p64 = ALIFStepParameters(*(t.double() if torch.is_tensor(t) else t for t in params))
    ref = alif_standard(current.detach().double(), p64, record=("v", "theta"))
    assert (ref.v - ref.theta).abs().min() > 1e-4
    torch_loop = block_spikes(current, params, kernel="torch")
    fused = block_spikes(current, params, kernel="triton")
    assert torch.equal(torch_loop.spikes, ref.spikes.float())
    assert fused.spikes.dtype == torch.float32
    assert torch.equal(fused.spikes, torch_loop.spikes)
    # the engine picks the kernel from $CELLFIT_BLOCK_KERNEL; gradients come from the same replay
    grads = {}
    for kernel in ("torch", "triton"):
        monkeypatch.setenv("CELLFIT_BLOCK_KERNEL", kernel)
        current.grad = None
        alif_blocks(current, params).spikes.sum().backward()
        grads[kernel] = current.grad.clone()
    torch.testing.assert_close(grads["triton"], grads["torch"])
    assert grads["torch"].abs().sum() > 0


def test_kernel_choice(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("CELLFIT_BLOCK_KERNEL", raising=False)
    assert resolve_block_kernel(None, cpu) == "blockwise"  # auto: the CPU path, even under the interpreter
    assert resolve_block_kernel("torch", cpu) == "torch"
    assert resolve_block_kernel("blockwise", cpu) == "blockwise"
    monkeypatch.setenv("CELLFIT_BLOCK_KERNEL", "TORCH")
    assert resolve_block_kernel(None, cpu) == "torch"
    monkeypatch.setenv("CELLFIT_BLOCK_KERNEL", "fast")
    with pytest.raises(ValueError, match="unknown block kernel 'fast'.*CELLFIT_BLOCK_KERNEL"):
        resolve_block_kernel(None, cpu)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="runs on CUDA tensors"):
        resolve_block_kernel("triton", cpu)
    with pytest.raises(RuntimeError, match="runs on CUDA tensors"):
        block_spikes(torch.ones(1, 1, 5), ALIFParameters(torch.ones(1) * 10, torch.ones(1) * 50,
                                                         torch.ones(1), 0.2).discretise(0.1), kernel="triton")  # fmt: skip


@pytest.mark.skipif(not HAS_TRITON, reason="needs Triton")
def test_kernel_compiles_for_hopper_without_a_gpu():
    """Ahead-of-time compilation to sm_90 machine code (Triton's own ptxas): catches what the
    interpreter cannot (types of loop-carried values, unsupported operations), with no GPU."""
    code = textwrap.dedent(
        """
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from cellfit.functional._triton_kernel import block_kernel

        # plain ALIF, and with the extension (reset potential, JP after-spike current lanes)
        for dt, has_rec, block, ext, jp in (("fp32", False, 32, False, 1), ("fp64", True, 2, False, 1),
                                            ("fp32", False, 64, True, 2), ("fp64", True, 2, True, 1),
                                            ("fp32", True, 4, True, 4)):
            names = ["cur", "rec", "out", "beta", "bpow", "dppow", "ppow", "v0", "a1", "r", "vend", "aend"]
            sig = {f"{n}_ptr": "*i32" if n == "r" else f"*{dt}" for n in names}
            sig.update({n: "i32" for n in ("T", "L", "N", "n_start", "n_end", "last_block", "j_last", "extra", "out_stride")})
            sig.update({f"{n}_ptr": f"*{dt}" for n in ("vrpow", "amp", "rpow", "c1", "cend")})
            sig.update(HAS_REC="constexpr", BLOCK="constexpr", EXT="constexpr", JP="constexpr")
            src = ASTSource(block_kernel, sig, constexprs={"HAS_REC": has_rec, "BLOCK": block, "EXT": ext, "JP": jp})
            compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 1})
            assert compiled.asm["cubin"], (dt, has_rec, block, ext, jp)
        print("compiled")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-3000:]


@pytest.mark.gpu
def test_auto_picks_fused_kernel_on_cuda_and_agrees():
    assert resolve_block_kernel("auto", torch.device("cuda")) == "triton"
    g = torch.Generator().manual_seed(1)
    params = ALIFParameters(torch.rand(8, dtype=F64, generator=g) * 30 + 5, torch.rand(8, dtype=F64, generator=g) * 300 + 20,
                            torch.rand(8, dtype=F64, generator=g), 2.0).discretise(0.1)  # fmt: skip
    current = 1 + 2 * torch.randn(4, 8, 3000, dtype=F64, generator=g)
    w_rec = 0.3 * torch.randn(8, 8, dtype=F64, generator=g)
    for w in (None, w_rec):
        ref = alif_standard(current, params, w_rec=w)
        cuda = lambda t: t.to("cuda") if torch.is_tensor(t) else t
        fused = block_spikes(cuda(current), type(params)(*map(cuda, params)), w_rec=cuda(w), kernel="auto")
        assert torch.equal(fused.spikes.cpu(), ref.spikes)
        torch.testing.assert_close(fused.state.v.cpu(), ref.state.v, rtol=1e-9, atol=1e-9)


def fused_kernel_that_fails(monkeypatch, module, name: str, message: str) -> None:
    """As on a GPU, "auto" picks the fused kernel until it has failed once; ``module.name`` (the fused
    path) raises ``message`` as a compiler error would."""
    from cellfit.functional import alif

    monkeypatch.setattr(alif, "_FUSED_FAILURE", None)
    monkeypatch.setattr(alif, "resolve_block_kernel", lambda kernel, device: kernel if kernel in ("torch", "triton")
                        else "triton" if alif._FUSED_FAILURE is None else "torch")

    def broken(*args, **kwargs):
        raise RuntimeError(message)

    monkeypatch.setattr(module, name, broken)


def test_auto_falls_back_to_the_loop_when_the_fused_kernel_fails(monkeypatch):
    from cellfit.functional import alif

    fused_kernel_that_fails(monkeypatch, alif, "_block_spikes_fused", "PTX assembly failed\n  (pretend)")
    params = ALIFParameters(torch.tensor([10.0]), torch.tensor([100.0]), torch.tensor([0.2]), 1.0).discretise(0.1)
    current = 1.5 + torch.randn(2, 1, 300, generator=torch.Generator().manual_seed(0))
    want = block_spikes(current, params, kernel="torch")
    with pytest.warns(RuntimeWarning, match=r"fused Triton block kernel failed \(RuntimeError: PTX assembly failed \(pretend\)\)"):
        got = block_spikes(current, params, kernel="auto")
    assert torch.equal(got.spikes, want.spikes)
    assert alif._FUSED_FAILURE is not None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once; later calls go straight to the loop
        assert torch.equal(block_spikes(current, params, kernel="auto").spikes, want.spikes)
    with pytest.raises(RuntimeError, match="PTX assembly failed"):
        block_spikes(current, params, kernel="triton")  # asked for by name: the error surfaces


# -- the extension: reset potential and after-spike currents (the kernel's EXT branch) ---------


def fused_ext(current, params, w_rec=None, state=None):
    out = block_spikes(*map(on_device, (current, params)), w_rec=on_device(w_rec), state=on_device(state),
                       kernel="triton")  # fmt: skip
    return ALIFTrace(out.spikes.cpu(), None, None, ALIFState(*(x if x is None else x.cpu() for x in out.state)))


@needs_kernel
def test_fused_kernel_with_extension_equals_standard():
    counts = {"examples": 0, "near ties": 0}

    @settings(max_examples=30)
    @given(short_glif_scenarios, st.floats(0.1, 0.9))
    def check(scenario, split):
        current, params, w_rec = scenario
        ref = alif_standard(current, params, w_rec=w_rec, record=("v", "theta"))
        fused = fused_ext(current, params, w_rec)
        tie_at = first_near_tie(ref)  # the near-tie rule of test_glif.py
        counts["examples"] += 1
        if (tie_at < current.shape[-1]).any():
            counts["near ties"] += 1
            assert_same_spikes_up_to_ties(fused.spikes, ref.spikes, tie_at)
            return
        assert torch.equal(fused.spikes, ref.spikes)
        assert_same_state(fused.state, ref.state)
        T = current.shape[-1]
        cut = max(1, int(split * T))
        if cut < T:  # continuing from a state: refractory prefix, potential after a reset, c_j
            first = alif_standard(current[..., :cut], params, w_rec=w_rec)
            second = fused_ext(current[..., cut:], params, w_rec, state=first.state)
            assert torch.equal(second.spikes, ref.spikes[..., cut:])
            assert_same_state(second.state, ref.state)

    check()
    print(f"\nfused kernel with the extension: {counts['examples']} examples, {counts['near ties']} with a near tie")
    assert counts["near ties"] <= max(1, counts["examples"] // 20), counts


@needs_kernel
@pytest.mark.parametrize("t_ref", [1, 2, 20, 33])
@pytest.mark.parametrize("recurrent", [False, True])
def test_fused_kernel_with_extension_busy_neurons(t_ref, recurrent):
    # strong drive, a reset above the base threshold and a negative one, after-potentials of both signs: a spike in most blocks
    g = torch.Generator().manual_seed(100 + t_ref)
    n = 3
    params = ALIFParameters(torch.tensor([2.0, 10.0, 40.0], dtype=F64), torch.tensor([5.0, 50.0, 500.0], dtype=F64),
                            torch.tensor([0.0, 0.3, 1.0], dtype=F64), arp_ms=t_ref * 0.1,
                            v_reset=torch.tensor([1.4, -0.5, 0.6], dtype=F64),
                            asc_amp=torch.tensor([[0.8, -0.3], [-1.0, 0.5], [0.4, 0.2]], dtype=F64),
                            tau_asc_ms=torch.tensor([[1.0, 30.0], [5.0, 400.0], [0.5, 2.0]], dtype=F64)).discretise(0.1)  # fmt: skip
    current = 4.0 + 3.0 * torch.randn(2, n, 7 * t_ref + 40, dtype=F64, generator=g)
    w_rec = torch.randn(n, n, dtype=F64, generator=g) if recurrent else None
    ref = alif_standard(current, params, w_rec=w_rec, record=("v", "theta"))
    assert (ref.v - ref.theta).abs().min() > 1e-9  # no near tie (see test_glif.TIE): the comparison is exact
    fused = fused_ext(current, params, w_rec)
    assert torch.equal(fused.spikes, ref.spikes)
    assert_same_state(fused.state, ref.state)
    assert ref.spikes.sum() >= 6


@needs_kernel
def test_fused_kernel_with_extension_float32():
    g = torch.Generator().manual_seed(2)
    params = ALIFParameters(torch.tensor([8.0, 20.0]), torch.tensor([80.0, 300.0]), torch.tensor([0.2, 0.5]), arp_ms=2.0,
                            v_reset=torch.tensor([0.5, -0.2]), asc_amp=torch.tensor([[0.3], [-0.4]]),
                            tau_asc_ms=torch.tensor([[5.0], [100.0]])).discretise(0.1)  # fmt: skip
    current = 1.2 + 1.5 * torch.randn(3, 2, 400, generator=g)
    # float32 rounds differently in the two kernels: exact only away from near ties; the float64
    # reference keeps every |V - theta| above 1e-4 here, > 100x float32's rounding over 400 steps
    p64 = ALIFStepParameters(*(t.double() if torch.is_tensor(t) else t for t in params))
    ref = alif_standard(current.double(), p64, record=("v", "theta"))
    assert (ref.v - ref.theta).abs().min() > 1e-4
    fused = fused_ext(current, params)
    assert fused.spikes.dtype == torch.float32 and fused.state.asc.dtype == torch.float32
    assert torch.equal(fused.spikes, block_spikes(current, params, kernel="torch").spikes)
    assert torch.equal(fused.spikes.double(), ref.spikes) and ref.spikes.sum() > 5


def test_auto_falls_back_to_the_loop_with_the_extension(monkeypatch):
    from cellfit.functional import glif

    fused_kernel_that_fails(monkeypatch, glif, "block_fused", "PTX assembly failed (pretend)")
    params = ALIFParameters(torch.tensor([10.0]), torch.tensor([100.0]), torch.tensor([0.2]), 1.0,
                            v_reset=torch.tensor([0.3])).discretise(0.1)  # fmt: skip
    current = 1.5 + torch.randn(2, 1, 300, generator=torch.Generator().manual_seed(0))
    want = block_spikes(current, params, kernel="torch")
    with pytest.warns(RuntimeWarning, match="fused Triton block kernel failed"):
        got = block_spikes(current, params, kernel="auto")
    assert torch.equal(got.spikes, want.spikes)
    with pytest.raises(RuntimeError, match="PTX assembly failed"):
        block_spikes(current, params, kernel="triton")
