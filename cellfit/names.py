"""Names shared by the library and its command lines, importable without torch.

The command lines offer these as choices while parsing, before any heavy import
(see :mod:`cellfit.cli`); the library modules that implement them are the registry
(``tests/test_cli.py`` checks that the two agree).
"""

__all__ = ["ENGINE_NAMES", "DEFAULT_ENGINE", "PEER_NAMES", "DEFAULT_GRID", "FULL_GRID", "MODEL_NAMES"]

#: the simulation engines, the keys of :data:`cellfit.functional.ENGINES`:
#: ``blocks`` (the Block algorithm) and ``standard`` (step by step, the reference)
ENGINE_NAMES = ("blocks", "standard")
DEFAULT_ENGINE = "blocks"

#: peer libraries the speed benchmark can run beside cellfit: the keys of
#: :data:`cellfit.bench.PEERS` (installed by the ``peers`` extra)
PEER_NAMES = ("norse", "snntorch", "spikingjelly")
#: the benchmark grid run without flags (minutes on 2 CPU cores) and the paper's Figure 3 grid
#: (``--full``): names in :data:`cellfit.bench.GRIDS`
DEFAULT_GRID = "small"
FULL_GRID = "sweep"

#: the model variants of a fit (the keys of :data:`cellfit.fit.config.MODELS`); ``auto`` chooses
#: per cell among the configuration's candidate models on held-out Noise 1 data
MODEL_NAMES = ("alif", "alif_asc", "alif_reset", "alif_reset_asc", "alif_sub", "alif_sub_reset_asc")
