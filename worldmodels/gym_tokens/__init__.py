"""The token world model of any recorded game: Flappy's Transformer over a Minari dataset's declared fields."""
