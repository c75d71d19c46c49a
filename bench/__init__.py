"""slrbench: a benchmark and leaderboard harness for isolated sign language recognition."""

__version__ = "0.1.0"
