"""Shared pytest configuration: hypothesis profile and the gpu/network markers."""

import os

# Without a GPU, Triton kernels run in Triton's interpreter (NumPy), so CI tests the fused
# block kernel too. This must be set before anything imports Triton.
if "triton" not in __import__("sys").modules and not os.environ.get("TRITON_INTERPRET"):
    import torch as _torch

    if not _torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

# Triton's interpreter (3.6) turns 1-element arrays into Python scalars, which numpy 2.4 made an
# error ("only 0-dimensional arrays can be converted to Python scalars"; a deprecation warning
# from numpy 1.25 to 2.3). Measured here: the kernel tests pass under numpy 1.23 and 2.3.5 and
# fail under 2.4.6. On such a stack they are skipped with this reason (the compiled kernel on a
# GPU does not use the interpreter).
_INTERPRETER_BROKEN = (
    "Triton's interpreter fails under numpy >= 2.4 (TypeError: only 0-dimensional arrays can be "
    "converted to Python scalars); the pinned stack of .ci/run (numpy 1.23) runs these tests"
)
_NUMPY_2_4 = tuple(int(x) for x in np.__version__.split(".")[:2]) >= (2, 4)

# Property tests simulate neurons; wall time per example varies with machine load.
settings.register_profile(
    "cellfit", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cellfit"))


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_net = pytest.mark.skip(reason="needs network access (set CELLFIT_NETWORK_TESTS=1)")
    interpreter_broken = _NUMPY_2_4 and os.environ.get("TRITON_INTERPRET") == "1" and not torch.cuda.is_available()
    for item in items:
        if interpreter_broken and any(str(m.kwargs.get("reason", "")).startswith("needs Triton (and a GPU")
                                      for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.skip(reason=_INTERPRETER_BROKEN))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "network" in item.keywords and not os.environ.get("CELLFIT_NETWORK_TESTS"):
            item.add_marker(skip_net)
