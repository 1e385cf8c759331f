"""exportcast: the command-line face over features/, models/ and flows/."""
__version__ = "0.1.0"
