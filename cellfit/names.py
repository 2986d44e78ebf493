"""Names shared by the library and its command lines, importable without torch.

The command lines offer these as choices while parsing, before any heavy import
(see :mod:`cellfit.cli`); the library modules that implement them are the registry
(``tests/test_cli.py`` checks that the two agree).
"""

__all__ = ["ENGINE_NAMES", "DEFAULT_ENGINE"]

#: the simulation engines, the keys of :data:`cellfit.functional.ENGINES`:
#: ``blocks`` (the Block algorithm) and ``standard`` (step by step, the reference)
ENGINE_NAMES = ("blocks", "standard")
DEFAULT_ENGINE = "blocks"
