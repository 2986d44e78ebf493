"""How the batch command lines set up Dask's worker processes: quiet after a Ctrl-C.

A terminal's Ctrl-C sends SIGINT to every process of the foreground group: the command
line, the local cluster's worker processes and multiprocessing's resource tracker. The
command line answers with one line and closes the cluster (:func:`cellfit.cli.run_main`),
and the worker processes are stopped by their nannies. Without care, each worker would
also print a traceback, and Dask's log of the shutdown (heartbeats to a scheduler that
has closed, workers killed while a fit runs, semaphores the tracker cleans up) would
bury that one line. So :func:`prepare_worker_processes` asks, through the environment
that the worker processes inherit:

- Dask to run this module in every worker at start-up (a Dask preload):
  :func:`dask_setup` replaces the worker's KeyboardInterrupt by muting its logging and
  warnings (the nanny stops the worker);
- Dask to log only errors from ``distributed`` unless ``verbose``;
- Python not to print the resource tracker's leaked-semaphore warning of a killed worker.

Importing this module is light (no Dask): the command lines call
:func:`prepare_worker_processes` before their heavy imports, because Dask reads its
configuration from the environment when it is first imported. Values the user has set
win.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings

__all__ = ["prepare_worker_processes", "dask_setup"]


def prepare_worker_processes(verbose: bool = False) -> None:
    """Set the environment variables described above (``DASK_*``, ``PYTHONWARNINGS``) unless set."""
    os.environ.setdefault("DASK_DISTRIBUTED__WORKER__PRELOAD", repr([__name__]))
    os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
    if not verbose:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")


def _mute(signum, frame) -> None:
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")


def dask_setup(worker=None) -> None:
    """Dask preload hook, run in each worker process: a Ctrl-C mutes the worker instead of raising."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _mute)
