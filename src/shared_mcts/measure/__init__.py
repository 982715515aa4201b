"""Building, timing and checking candidates."""

from .correctness import CheckResult, check_correctness
from .measurer import MeasureConfig, Measurement, Measurer
from .remeasure import Remeasurement, remeasure

__all__ = ["CheckResult", "check_correctness", "MeasureConfig", "Measurement", "Measurer", "Remeasurement", "remeasure"]
