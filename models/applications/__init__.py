"""Applications of the models: the institutional replays, the in-year tracking and the nowcast."""
