"""Shared pytest configuration: hypothesis profile, the gpu/network markers, and stack-dependent skips."""

import os

# Without a GPU, Triton kernels run in Triton's interpreter (NumPy), so CI tests the fused
# block kernel too. This must be set before anything imports Triton.
if "triton" not in __import__("sys").modules and not os.environ.get("TRITON_INTERPRET"):
    import torch as _torch

    if not _torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

import importlib.metadata
import importlib.util
import signal

import pytest
import torch
from hypothesis import HealthCheck, settings

# A shell that starts pytest as a background job (`cmd &` without job control) ignores SIGINT, and
# an ignored signal stays ignored in every process started from it: the Ctrl-C tests, which send
# SIGINT to a command line they start, would see it ignored (exit 0). Catching it here makes the
# children start with the default disposition again (a caught signal is reset by exec).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Triton's interpreter up to 3.6 turns 1-element arrays into Python scalars, which numpy 2.4 made
# an error ("only 0-dimensional arrays can be converted to Python scalars"; a deprecation warning
# from numpy 1.25 to 2.3). Measured here with the kernel tests: Triton 3.6.0 passes under numpy
# 1.23 and 2.3.5 and fails under 2.4.6; Triton 3.7.1, 3.8.0 and 3.9.0 pass under 2.4.6. On such
# a stack those tests are skipped with this reason (the compiled kernel on a GPU needs no
# interpreter).
_INTERPRETER_BROKEN = (
    "Triton < 3.7's interpreter fails under numpy >= 2.4 (TypeError: only 0-dimensional arrays can be "
    "converted to Python scalars); install triton >= 3.7 or numpy < 2.4 to run these tests"
)


def _version(dist: str) -> tuple:
    try:
        return tuple(int(x) for x in importlib.metadata.version(dist).split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return ()


_TRITON_VS_NUMPY = bool(_version("triton")) and _version("triton") < (3, 7) and _version("numpy") >= (2, 4)

# Property tests simulate neurons; wall time per example varies with machine load.
settings.register_profile(
    "cellfit", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cellfit"))


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_net = pytest.mark.skip(reason="needs network access (set CELLFIT_NETWORK_TESTS=1)")
    no_detector = _no_detector_installed()
    interpreter_broken = (_TRITON_VS_NUMPY and os.environ.get("TRITON_INTERPRET") == "1"
                          and not torch.cuda.is_available())
    for item in items:
        if interpreter_broken and any(str(m.kwargs.get("reason", "")).startswith("needs Triton (and a GPU")
                                      for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.skip(reason=_INTERPRETER_BROKEN))
        if no_detector and item.nodeid.split("::")[0] in _LOAD_CELLS_ELSEWHERE:
            item.add_marker(pytest.mark.skip(reason=f"{_NO_DETECTOR} (pip install 'cellfit[ipfx]'); this test "
                                                    "loads cells in another process"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "network" in item.keywords and not os.environ.get("CELLFIT_NETWORK_TESTS"):
            item.add_marker(skip_net)


# The core install (`pip install -e ".[test]"`, no extra) has no spike extractor: tests that
# detect spikes on recorded sweeps (Allen caches, NWB 2 files, the demo cell) then stop with the
# data layer's one-line CellDataError, which is reported as a skip with that line as the reason.
# Tests that load cells in another process (CLIs, Dask workers, notebook kernels) cannot be
# caught that way: their modules are skipped as a whole on such an install.
_NO_DETECTOR = "spike detection on recorded sweeps needs a spike extractor"
_LOAD_CELLS_ELSEWHERE = ("tests/batch/test_batch.py", "tests/fit/test_fit_cli.py", "tests/test_notebooks.py",
                         "tests/pipelines/test_ephys_sweep.py")


def _no_detector_installed() -> bool:
    return all(importlib.util.find_spec(name) is None for name in ("ipfx", "allensdk"))


def _skip_without_detector(outcome):
    """Skip when the test stopped on the missing extractor: its CellDataError, or a
    ``pytest.raises(CellDataError, match=...)`` that got that error instead of the one it checks."""
    from cellfit.data import CellDataError

    if isinstance(outcome, (CellDataError, AssertionError)) and _NO_DETECTOR in str(outcome) \
            and _no_detector_installed():
        pytest.skip(f"{_NO_DETECTOR} (pip install 'cellfit[ipfx]')")


def _detector_guard():
    """The body of the two hook wrappers below: run the phase, skip a failure caused by the missing extractor."""
    try:
        return (yield)
    except Exception as exc:
        _skip_without_detector(exc)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _detector_guard())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _detector_guard())
