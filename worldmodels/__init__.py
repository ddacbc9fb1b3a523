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
    """Register `worldmodels/Breakout-v0` (and its vector env) with gymnasium, so that `import worldmodels` is enough
    for `gymnasium.make`. Entry points by name: the simulator loads only when an env is made. Safe to call again."""
    if BREAKOUT_ENV_ID not in gymnasium.registry:
        gymnasium.register(id=BREAKOUT_ENV_ID, entry_point="worldmodels.breakout.sim:BreakoutEnv",
                           vector_entry_point="worldmodels.breakout.sim:BreakoutVectorEnv")


BREAKOUT_ENV_ID = "worldmodels/Breakout-v0"
register_envs()
