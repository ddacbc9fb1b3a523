"""Errors a user can fix, and the wrapper that prints them as one line instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem with the user's input or setup; its message says what to change."""


def one_line_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Run `fn`; on a UserError print `error: <message>` to stderr and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper
