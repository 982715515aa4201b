"""shared-mcts: auto-tune TVM tensor programs with one MCTS tree shared by several models.

Python API: `shared_mcts.tune("llama-mlp", trials=32, models=["expert", "mutate"], out="runs/x")`
returns a `TuneResult` (see shared_mcts/tuning.py).
"""

from .tuning import TuneResult, tune
from .version import __version__

__all__ = ["tune", "TuneResult", "__version__"]
