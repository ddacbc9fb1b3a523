"""The KV-cache window's bookkeeping, shared by the backends and the decoders (rule 2 of `rules.py`).

A backend's cache holds `context` tokens. A ring (sliding-window attention) always holds the newest `context`
tokens and never slides; an ordered window starts on a frame boundary and slides by re-prefilling the newest frames.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from worldmodels.flappy.tokens import TokenSpec


class Cache(Protocol):
    """What the bookkeeping reads of a backend: its cache size and whether the cache is a ring."""

    context: int
    ring: bool


def cache_length(length, added: int, backend: Cache):
    """Filled slots after `added` more tokens (a numpy array, or a torch tensor, which has `clamp`; this module
    imports no torch): the ring never holds more than `context`."""
    grown = length + added
    if not backend.ring:
        return grown
    return grown.clamp(max=backend.context) if hasattr(grown, "clamp") else np.minimum(grown, backend.context)


def check_room(length: int, tokens: int, backend: Cache) -> None:
    """An ordered window must have room for a whole frame's tokens before the frame graph's call."""
    if not backend.ring and length + tokens > backend.context:
        raise ValueError(f"frame graph: the window holds {length} of {backend.context} tokens, no room for a "
                         f"{tokens}-token frame (slide first)")


def window_start(length: int, context: int, spec: TokenSpec) -> int:
    """History index of the oldest token of the newest whole frames that fit in `context` tokens."""
    n = spec.tokens_per_frame
    return -(-max(0, length - context) // n) * n
