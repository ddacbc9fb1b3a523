"""Fixtures shared by the Flappy tests."""

from __future__ import annotations

import pytest

from worldmodels.flappy.game import FlappyGame


@pytest.fixture(scope="module")
def game():
    """One real flappy-bird-gymnasium game per test module (reset it with a seed before use)."""
    game = FlappyGame()
    yield game
    game.close()
