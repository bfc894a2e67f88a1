"""`setup`: the whole pipeline (see model.py for the overview); `run.setup` is the entry point."""

from localcodex.core.setup.model import STEPS, TITLES, SetupHooks, SetupReport, SetupRequest, Step, StepStatus
from localcodex.core.setup.run import STEP_LIMITS, exit_code, setup

__all__ = ["STEPS", "STEP_LIMITS", "TITLES", "SetupHooks", "SetupReport", "SetupRequest", "Step", "StepStatus",
           "exit_code", "setup"]
