"""User errors on the command line: ``error: <message>`` on stderr and exit status 2, as
argparse does for bad arguments; the traceback only with ``--debug`` or GNNFF_DEBUG=1.

A user error is an exception whose message already says what is wrong and how to fix it:
ValueError (bad config value, misspelt key, NaN label, ...), OSError (missing file, folder not
writable) and YAML syntax errors. Anything else is a bug and keeps its traceback.
"""

import functools
import os
import sys

DEBUG_ENV = "GNNFF_DEBUG"


def add_debug_flag(parser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the Python traceback of errors (also: {DEBUG_ENV}=1)",
    )


def _debugging(args) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _user_error_types():
    types = [ValueError, OSError]
    try:
        import yaml

        types.append(yaml.YAMLError)
    except ImportError:
        pass
    return tuple(types)


def message_of(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__


def user_errors(run):
    """Decorate a subcommand's ``run(args)``: user errors become ``error: ...`` and exit 2."""

    @functools.wraps(run)
    def wrapped(args):
        try:
            return run(args)
        except BrokenPipeError:
            raise
        except _user_error_types() as err:
            if _debugging(args):
                raise
            print(f"error: {message_of(err)}", file=sys.stderr)
            print(f"(run with --debug or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
            return 2

    return wrapped
