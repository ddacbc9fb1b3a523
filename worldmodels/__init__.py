"""worldmodels: tiny, real-time game world models trained with Hydra + Lightning and played in the browser."""

__version__ = "0.1.0"
