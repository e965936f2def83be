"""The one error type a user can act on.

Every problem with a user's input (a config file, a data file, a command-line argument) is
raised as :class:`InputError` with a message that names the file, key or row and says what was
found and what was expected. The command line turns it into one plain line and exit code 2;
anything else is an internal error (exit code 1).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a config, a data file or an argument.

    The message must be complete on its own (file, key or row; what was found; what was
    expected), since the command line prints it without a traceback.
    """
