"""Helpers shared by the generator models."""

from __future__ import annotations

import math

__all__ = ["require_positive"]


def require_positive(params, *names: str) -> None:
    """ValueError naming the first of ``names`` that is not a positive finite number."""
    for name in names:
        value = getattr(params, name)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{type(params).__name__}.{name} must be positive, got {value}")
