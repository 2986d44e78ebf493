"""The one exception type of the data layer."""

__all__ = ["CellDataError"]


class CellDataError(Exception):
    """A data problem the user can fix: missing, corrupt or unusable input.

    The message is one line that names the thing (specimen, file, sweep,
    directory) and says how to fix it. Command-line tools print it and exit
    with status 2; they never print a traceback for it.
    """
