"""`setup`: the whole pipeline (see model.py for the overview); `run.setup` is the entry point."""

from localcodex.core.setup.model import STEPS, TITLES, SetupHooks, SetupReport, SetupRequest, Step, StepStatus
from localcodex.core.setup.run import exit_code, setup

__all__ = ["STEPS", "TITLES", "SetupHooks", "SetupReport", "SetupRequest", "Step", "StepStatus", "exit_code", "setup"]
