"""Device selection: 'auto' picks CUDA when present; code never hard-codes a GPU."""

import pathlib
import re

import pytest
import torch

import cellfit
from cellfit.device import resolve_device

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_auto_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    assert resolve_device(None).type == "cuda"


def test_auto_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-ish")


def test_a_gpu_index_beyond_the_visible_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"only 1 CUDA GPU\(s\) are visible \(cuda:0 to cuda:0\)"):
        resolve_device("cuda:7")


def test_everything_runs_on_an_explicit_cpu_device():
    layer = cellfit.ALIF(2, 3, dt_ms=0.5, arp_ms=1.0, device="cpu", recurrent=True)
    out = layer(torch.rand(1, 2, 50, device=resolve_device("cpu")))
    assert out.device.type == "cpu" and all(p.device.type == "cpu" for p in layer.parameters())


def test_no_hard_coded_cuda_in_library_code():
    pattern = re.compile(r"\.cuda\(\)|device\s*=\s*['\"]cuda")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("cellfit", "pipelines")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
