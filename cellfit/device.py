"""Device selection: one place that decides where tensors live."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "resolve_dtype", "synchronize", "DTYPES"]

#: the floating-point types a configuration may name (fits, classifiers, benchmarks)
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"`` / ``None`` / ``"cpu"`` / ``"cuda"`` / ``"cuda:1"`` into a :class:`torch.device`.

    ``"auto"`` picks CUDA when a GPU is visible, else the CPU. Asking for CUDA on a
    machine without one, or for ``cuda:N`` beyond the visible GPUs, raises ``ValueError``
    with a one-line explanation.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA GPU is visible; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ValueError(f"device {device!r} requested but only {n} CUDA GPU(s) are visible (cuda:0 to cuda:{n - 1}); "
                         "use one of them, or --device auto")
    return dev


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"float32"``/``"float64"`` (or a torch dtype among them) -> the torch dtype; ValueError otherwise."""
    if isinstance(name, torch.dtype) and name in DTYPES.values():
        return name
    try:
        return DTYPES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dtype {name!r}; choose one of {list(DTYPES)}") from None


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on the CPU), for honest wall-clock timing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
