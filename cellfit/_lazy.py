"""Lazy package exports (PEP 562): a package's public names are imported on first use.

The command lines run as ``python -m cellfit.fit`` (``cellfit.batch``, ``cellfit.data``)
import the packages ``cellfit`` and ``cellfit.fit`` before they can parse a single
argument. Eager package imports would load torch, pandas and Dask there (seconds on
a busy machine) before a misspelt flag is reported. So the package ``__init__`` files
list their exports as ``module -> names`` and import that module when the name is first
used: ``from cellfit import ALIF`` and ``cellfit.ALIF`` give the same objects as an
eager import would, only later. Sub-modules are still reachable as attributes
(``import cellfit; cellfit.functional``), as they were when the package imported them.

This module imports nothing heavy itself; :mod:`cellfit.cli` describes the rest of
the fast start of the command lines.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list], list]:
    """``(__getattr__, __dir__, __all__)`` for the package ``package``.

    ``table`` maps each module (absolute name) to the public names it defines, separated by
    spaces; ``__all__`` lists them in that order. An attribute that is neither an export nor a
    sub-module raises ``AttributeError`` as usual.
    """
    exports = {name: module for module, names in table.items() for name in names.split()}

    def __getattr__(name: str):
        module = exports.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later look-ups skip __getattr__
        return value

    def __dir__() -> list:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, list(exports)
