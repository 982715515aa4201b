"""What a model is, independent of how it is run: its spec (models.toml or a short name) and its
call budget. A leaf: it imports nothing of this package but its error type."""

from .budget import CallBudget
from .spec import BackendDefaults, ModelSpec, load_models_file, parse_model_specs, spec_from_text

__all__ = ["BackendDefaults", "CallBudget", "ModelSpec", "load_models_file", "parse_model_specs", "spec_from_text"]
