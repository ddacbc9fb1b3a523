"""Gymnasium environments that run inside exported world models: `worldmodels/FlappyDream-v0` (`flappy.py`, its
batched vector form in `vector.py`) and `worldmodels/BreakoutDream-v0` (`breakout.py`); `sb3.py` adapts a vector
dream to stable-baselines3. Registered with gymnasium when `worldmodels` is imported."""
