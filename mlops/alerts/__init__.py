"""GitHub issues as the alert channel: one issue per problem (fingerprint), kept current, closed on recovery.

Delivery goes through PyGithub to GITHUB_REPOSITORY at GITHUB_API_URL. Transport retries are off
(urllib3 would retry POSTs blindly and sleep any Retry-After); this package retries instead, with a
cap on total waiting, and re-checks by fingerprint before retrying a create that may have reached
GitHub. What cannot be delivered goes to the outbox in metadata/alerts/outbox/, which
`mlops alerts flush` sends later; without GITHUB_TOKEN the outbox is the dry run. See docs/alerts.md.

- `model`: the alert, its fingerprint and labels, the issue body it renders to;
- `client`: where alerts go (GITHUB_* variables) and the PyGithub client with its retry policy;
- `delivery`: `raise_alert`, `resolve` and `flush` (issues on GitHub, or the outbox);
- `outbox`: the queued actions on disk;
- `retrain`: `dispatch_retrain`.
A gate record becomes an alert in `mlops.gate.alert_from_gate`.
"""

from mlops.alerts.client import Target, Undeliverable, scrub, target_from_env
from mlops.alerts.delivery import flush, raise_alert, resolve
from mlops.alerts.model import (
    FINGERPRINT_RE,
    KIND_LABELS,
    KIND_NAMES,
    LABELS,
    SEVERITIES,
    Alert,
    fingerprint_marker,
    make_fingerprint,
    render_body,
    run_marker,
)
from mlops.alerts.outbox import outbox_dir, read_outbox
from mlops.alerts.retrain import dispatch_retrain, retrain_state_path

__all__ = [
    "FINGERPRINT_RE",
    "KIND_LABELS",
    "KIND_NAMES",
    "LABELS",
    "SEVERITIES",
    "Alert",
    "Target",
    "Undeliverable",
    "dispatch_retrain",
    "fingerprint_marker",
    "flush",
    "make_fingerprint",
    "outbox_dir",
    "raise_alert",
    "read_outbox",
    "render_body",
    "resolve",
    "retrain_state_path",
    "run_marker",
    "scrub",
    "target_from_env",
]
