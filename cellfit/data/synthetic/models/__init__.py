"""The generator's model families, one module each.

- :mod:`.alif`: ``"alif"``, the exact ALIF equations the fitter uses (parameter recovery);
- :mod:`.adex`: ``"adex"``, adaptive exponential integrate-and-fire (Brette & Gerstner 2005);
- :mod:`.hh`: ``"hh"``, minimal Hodgkin-Huxley cortical cells (Pospischil et al. 2008).
"""

from .adex import AdExParams, simulate_adex
from .alif import ALIFParams, simulate_alif
from .hh import POSPISCHIL, HHParams, simulate_hh

#: model name -> its parameter class
PARAMS = {"alif": ALIFParams, "adex": AdExParams, "hh": HHParams}

__all__ = ["ALIFParams", "AdExParams", "HHParams", "POSPISCHIL", "PARAMS", "simulate_alif", "simulate_adex",
           "simulate_hh"]
