"""Gated deployment: the five deploy gates, health check, rollback and canary analysis.

`models/deployment.json` is the desired state of serving; `mlops.deployment_state` reads, checks
and writes it (the router, retention and the workflow commands use that module without importing
this package). Here, by concern:

- `gates`: the five deploy gates and the post-deploy health check (they decide, they write nothing);
- `canary`: canary analysis as a pure function from logged rows and tolerances to a decision;
- `transition`: the one function that writes the record, then the state, then the audit event,
  MLflow's champion alias, the alert and the step summary;
- `actions`: `deploy`, `rollback` and `analyze`, each check -> decide -> transition.

`transition` (the function) is not re-exported here: the name would hide its submodule.
See docs/deployment.md.
"""

from mlops.deploy.actions import analyze, check_request, deploy, read_errors, rollback
from mlops.deploy.canary import Analysis, decide
from mlops.deploy.gates import Gate, check_predictions, health_check, holdout_sample, one_thread, run_gates
from mlops.deploy.transition import move_champion
from mlops.deployment_state import (
    MODES,
    describe,
    plan,
    previous_production,
    read_state,
    validate_state,
    write_state,
)

__all__ = [
    "MODES",
    "Analysis",
    "Gate",
    "analyze",
    "check_predictions",
    "check_request",
    "decide",
    "deploy",
    "describe",
    "health_check",
    "holdout_sample",
    "move_champion",
    "one_thread",
    "plan",
    "previous_production",
    "read_errors",
    "read_state",
    "rollback",
    "run_gates",
    "validate_state",
    "write_state",
]
