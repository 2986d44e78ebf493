"""Running a command line: parse, check, then work; one-line errors (exit 2) and Ctrl-C (exit 130)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import warnings
from typing import Callable, Optional, Sequence, Union

from cellfit.data.errors import CellDataError
from cellfit.cli.checks import UsageError
from cellfit.cli.flags import check_lazy_choices

#: set this environment variable to see the traceback of an error instead of its one line
TRACEBACK_ENV = "CELLFIT_TRACEBACK"

#: what a Ctrl-C prints: a fixed line, or one built from the parsed arguments
Interrupted = Union[str, Callable[[argparse.Namespace], str]]



# --------------------------------------------------------------------------
# the frame of every command line
# --------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _quiet_after_ctrl_c():
    """On the first Ctrl-C, mute warnings and log records below ERROR, then raise KeyboardInterrupt.

    What a library prints while it tears down after an interrupt (Dask closing its workers,
    leaked-resource warnings) is not news to the user; the one line of :func:`run_main` is.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # someone else handles Ctrl-C (or it cannot be handled here)
        return
    muted = []

    def on_sigint(signum, frame):
        if not muted:
            muted.append(True)
            logging.disable(logging.WARNING)
            warnings.simplefilter("ignore")
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if muted:
            logging.disable(logging.NOTSET)


def run_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Optional[int]],
             argv: Optional[Sequence[str]] = None, *,
             validate: Optional[Callable[[argparse.Namespace], None]] = None,
             interrupted: Interrupted = "interrupted; nothing to resume, rerun the command to start again",
             errors: tuple[type[BaseException], ...] = ()) -> int:
    """Parse ``argv``, ``validate`` the arguments, then ``run(args)``; return the exit code.

    - ``--help``: its exit code (0); a parse error: argparse's one line, 2;
    - :class:`UsageError`, :class:`cellfit.data.CellDataError`, ``ValueError`` and the
      command line's own ``errors``, from the checks or from ``run``: one line
      ``<prog>: error: ...`` on stderr, 2 (no traceback);
    - Ctrl-C (``KeyboardInterrupt``) at any point: one line ``<prog>: <interrupted>``, 130
      (warnings and log records below ERROR printed while the work winds down are muted);
    - otherwise what ``run`` returns (None counts as 0).

    ``interrupted`` says what stopped and how to resume: a string, or a function of the
    parsed arguments. With ``$CELLFIT_TRACEBACK`` set, errors keep their traceback (for
    reporting a bug).
    """
    args = None
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, or a parse error already printed as one line
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if validate is not None:
            validate(args)
        check_lazy_choices(parser, args)
        with _quiet_after_ctrl_c():
            code = run(args)
        return 0 if code is None else int(code)
    except KeyboardInterrupt:
        if callable(interrupted):
            message = interrupted(args) if args is not None else "interrupted"
        else:
            message = interrupted
        print(f"{parser.prog}: {message}", file=sys.stderr)
        return 130
    except (UsageError, CellDataError, ValueError, *errors) as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"{parser.prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


