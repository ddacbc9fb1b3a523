"""The worlds the models learn: our Breakout simulator (registered with gymnasium on import) and Flappy Bird."""

from worldmodels.games.breakout import register_envs

register_envs()
