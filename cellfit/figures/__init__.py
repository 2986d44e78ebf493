"""Figures: every plot cellfit draws, in one place (matplotlib's object-oriented API only).

Functions here take data (arrays, tables, result records) and return a
:class:`matplotlib.figure.Figure`; they never switch matplotlib's backend or change
its global state, so they are safe in notebooks, servers and batch jobs alike.

- :mod:`cellfit.figures.fit`: one fitted cell (held-out data vs model, training record).
"""
