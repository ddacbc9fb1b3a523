"""`task=gym_pixels`: the Breakout pixel diffusion world model over any gymnasium environment or recorded episodes."""
