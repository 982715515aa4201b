"""shared-mcts: auto-tune TVM tensor programs with one MCTS tree shared by several models."""

__version__ = "0.1.0"
