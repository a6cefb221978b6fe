"""The one "did you mean" helper for error messages about misspelt names and keys."""

import difflib
from typing import Iterable


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'closest'?)`` for the closest of ``options``, or "" when none is close."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
