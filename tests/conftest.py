"""Shared pytest configuration: hypothesis profile and the gpu/network markers."""

import os

# Without a GPU, Triton kernels run in Triton's interpreter (NumPy), so CI tests the fused
# block kernel too. This must be set before anything imports Triton.
if "triton" not in __import__("sys").modules and not os.environ.get("TRITON_INTERPRET"):
    import torch as _torch

    if not _torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

import pytest
import torch
from hypothesis import HealthCheck, settings

# Property tests simulate neurons; wall time per example varies with machine load.
settings.register_profile(
    "cellfit", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cellfit"))


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_net = pytest.mark.skip(reason="needs network access (set CELLFIT_NETWORK_TESTS=1)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "network" in item.keywords and not os.environ.get("CELLFIT_NETWORK_TESTS"):
            item.add_marker(skip_net)
