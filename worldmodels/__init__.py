"""worldmodels: tiny, real-time game world models trained with Hydra + Lightning and played in the browser."""

import warnings

import gymnasium  # ~0.25 s: every command pays it, for `gymnasium.make` to work after `import worldmodels`

__version__ = "0.1.0"

# Lightning calls a torch pytree API that torch 2.13 deprecates, once per fit; nothing a user can act on.
warnings.filterwarnings("ignore", message=".*LeafSpec.*")
# We export with the TorchScript exporter on purpose (fast, and it handles the KV-cache graphs); torch announces its
# deprecation on every call.
warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")


def register_envs() -> None:
    """Register `worldmodels/Breakout-v0` (the simulator) and the dreams `worldmodels/FlappyDream-v0` and
    `worldmodels/BreakoutDream-v0` (`worldmodels.dream`), each with its vector env, so that `import worldmodels` is
    enough for `gymnasium.make` and `gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`. Entry points
    by name: nothing loads until an env is made. Safe to call again."""
    for env_id, entry, vector in (
            (BREAKOUT_ENV_ID, "worldmodels.breakout.sim:BreakoutEnv", "worldmodels.breakout.sim:BreakoutVectorEnv"),
            (FLAPPY_DREAM_ID, "worldmodels.dream.flappy:FlappyDreamEnv", "worldmodels.dream.vector:FlappyDreamVecEnv"),
            (BREAKOUT_DREAM_ID, "worldmodels.dream.breakout:BreakoutDreamEnv",
             "worldmodels.dream.breakout:BreakoutDreamVecEnv")):
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry, vector_entry_point=vector)


BREAKOUT_ENV_ID = "worldmodels/Breakout-v0"
FLAPPY_DREAM_ID = "worldmodels/FlappyDream-v0"
BREAKOUT_DREAM_ID = "worldmodels/BreakoutDream-v0"
register_envs()
