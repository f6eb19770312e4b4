"""The alert: its fields and checks, its fingerprint and labels, and the issue body it renders to.

Nothing here talks to GitHub or writes a file: `delivery` sends an alert, `outbox` keeps one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops import gha, jsonio
from mlops.errors import BadInput

if TYPE_CHECKING:
    from mlops.alerts.client import Target

# Labels per kind; `ml-ops` is on every alert issue and scopes the dedupe search.
KIND_LABELS: dict[str, tuple[str, ...]] = {
    "regression": ("regression", "needs-investigation"),
    "drift": ("drift-alert", "needs-investigation"),
    "data-quality": ("data-quality",),
    "stale-dataset": ("data-quality", "needs-attention"),
    "deployment-failure": ("needs-attention",),
}
KIND_NAMES = {
    "regression": "Model regression",
    "drift": "Data drift",
    "data-quality": "Data quality",
    "stale-dataset": "Stale dataset",
    "deployment-failure": "Deployment failure",
}
# name -> (colour, description); created when missing, never edited when present.
LABELS: dict[str, tuple[str, str]] = {
    "ml-ops": ("5319e7", "Raised by the MLOps pipeline: one issue per problem fingerprint"),
    "regression": ("d73a4a", "A candidate model scored below the production champion"),
    "drift-alert": ("fbca04", "Production data drifted from the training reference"),
    "data-quality": ("e99695", "Data failed validation or is out of date"),
    "needs-investigation": ("d876e3", "Someone should find the cause"),
    "needs-attention": ("b60205", "Action needed now"),
}
SEVERITIES = ("info", "warning", "critical")
FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/=+-]{0,199}$")
MAX_BODY = 60000  # GitHub refuses bodies over 65536 characters


def fingerprint_marker(fingerprint: str) -> str:
    return f"<!-- mlops-fingerprint: {fingerprint} -->"


def run_marker(run_key: str, action: str) -> str:
    return f"<!-- mlops-run: {run_key} {action} -->"


def make_fingerprint(kind: str, *parts: object) -> str:
    """The documented scheme: kind, then what identifies the problem (dataset, model, feature set), ':'-joined."""
    cleaned = [re.sub(r"[^A-Za-z0-9._/=+-]+", "-", str(p)).strip("-") or "x" for p in (kind, *parts)]
    return ":".join(cleaned)[:200]


@dataclass
class Alert:
    kind: str
    title: str
    summary: str
    facts: dict[str, object]
    evidence: dict
    fingerprint: str
    severity: str = "warning"
    links: dict[str, str] = field(default_factory=dict)
    extra_labels: tuple = ()

    def validate(self, where: str = "alert") -> None:
        """Raise BadInput naming the first field that cannot make an issue."""
        if self.kind not in KIND_LABELS:
            raise BadInput(f"{where}: kind", f"unknown kind {self.kind!r}", f"use one of {', '.join(KIND_LABELS)}")
        if self.severity not in SEVERITIES:
            raise BadInput(f"{where}: severity", f"unknown severity {self.severity!r}", "use info, warning or critical")
        if not isinstance(self.fingerprint, str) or not FINGERPRINT_RE.match(self.fingerprint):
            raise BadInput(
                f"{where}: fingerprint",
                f"{self.fingerprint!r} is not a fingerprint",
                "use letters, digits and . _ : / = + - (at most 200), e.g. make_fingerprint('drift', dataset)",
            )
        if not isinstance(self.title, str) or not self.title.strip():
            raise BadInput(f"{where}: title", "empty title", "give the alert a stable title without dates")
        if not isinstance(self.summary, str):
            raise BadInput(f"{where}: summary", "must be a string", "write one paragraph")
        for name in ("facts", "evidence", "links"):
            if not isinstance(getattr(self, name), dict):
                raise BadInput(f"{where}: {name}", "must be a JSON object", f"pass {name} as a dict")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.links.items()):
            raise BadInput(f"{where}: links", "must map names to paths or URLs (strings)", "fix the links dict")
        if not all(isinstance(x, str) and x for x in self.extra_labels):
            raise BadInput(f"{where}: extra_labels", "must be non-empty strings", "fix extra_labels")
        try:
            jsonio.canonical({"facts": self.facts, "evidence": self.evidence})
        except (TypeError, ValueError) as exc:
            raise BadInput(
                f"{where}: evidence", f"not JSON-serialisable ({exc})", "pass plain numbers/strings"
            ) from None

    def labels(self) -> list[str]:
        out = ["ml-ops", *KIND_LABELS[self.kind], *self.extra_labels]
        return list(dict.fromkeys(out))

    def clean_title(self) -> str:
        return " ".join(self.title.split())[:200]

    def to_dict(self) -> dict[str, Any]:
        """Every field by its name (the outbox and `--from-json` format); extra_labels as a JSON list."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**fields, "links": dict(self.links), "extra_labels": list(self.extra_labels)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Alert:
        """Build and validate an Alert from JSON (outbox entries, `mlops alerts raise --from-json`)."""
        if not isinstance(data, dict):
            raise BadInput(where, "an alert must be a JSON object", "write {kind, title, summary, fingerprint, ...}")
        missing = [k for k in ("kind", "title", "summary", "fingerprint") if k not in data]
        if missing:
            raise BadInput(f"{where}: {missing[0]}", "missing", "add it (see docs/alerts.md)")
        if not isinstance(data.get("extra_labels", []), list):
            raise BadInput(f"{where}: extra_labels", "must be a list of label names", 'write ["name", ...]')
        alert = cls(
            kind=data["kind"],
            title=data["title"],
            summary=data["summary"],
            facts=data.get("facts", {}),
            evidence=data.get("evidence", {}),
            fingerprint=data["fingerprint"],
            severity=data.get("severity", "warning"),
            links=data.get("links", {}),
            extra_labels=tuple(data.get("extra_labels", ())),
        )
        alert.validate(where)
        return alert


# ---- the issue body -------------------------------------------------------------------------------


def safe_text(text: str) -> str:
    # A summary must not smuggle a fingerprint marker (or any HTML comment) into the body.
    return str(text).replace("<!--", "&lt;!--").replace("-->", "--&gt;")


def _cell(value: object) -> object:
    if value is None:
        return "—"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return safe_text(value) if isinstance(value, str) else value


def _link(target: Target, commit: str, name: str, value: str) -> str:
    label = safe_text(name).replace("[", "(").replace("]", ")")
    if re.match(r"^https?://", value):
        return f"[{label}]({value})"
    if target.repository:
        path = urllib.parse.quote(value.lstrip("/"))
        return f"[{label}]({target.server_url}/{target.repository}/blob/{commit}/{path})"
    return f"{label}: `{value}`"


def _json_block(data: Any, limit: int) -> str:
    text = jsonio.dumps(data).rstrip("\n")
    if len(text) > limit:
        text = text[:limit] + "\n... (truncated; the full evidence is in the report files linked above)"
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}json\n{text}\n{fence}"


def render_body(alert: Alert, target: Target, commit: str, *, note: str = "") -> str:
    """The issue body: marker, summary paragraph, facts table, run/file/audit links, raw JSON in <details>."""
    lines = [fingerprint_marker(alert.fingerprint), ""]
    lines.append(f"**{KIND_NAMES[alert.kind]}** · severity **{alert.severity}** · fingerprint `{alert.fingerprint}`")
    lines += ["", safe_text(" ".join(alert.summary.split())) or "_No summary given._", ""]
    if alert.facts:
        lines += [gha.md_table(["Measure", "Value"], [(_cell(k), _cell(v)) for k, v in alert.facts.items()]), ""]
    run = f"[run {target.run_id}]({target.run_url})" if target.run_url else "not run in GitHub Actions"
    lines.append(f"- **Workflow run:** {run}")
    if alert.links:
        files = " · ".join(_link(target, commit, k, v) for k, v in alert.links.items())
        lines.append(f"- **Files:** {files}")
    seq = alert.evidence.get("audit_seq") if isinstance(alert.evidence, dict) else None
    audit = (
        f"entry #{seq} in `metadata/audit/`" if isinstance(seq, int) else "the `alert_*` events in `metadata/audit/`"
    )
    lines.append(f"- **Audit log:** {audit}")
    if note:
        lines.append(f"- **Note:** {safe_text(note)}")
    head = "\n".join(lines)
    budget = max(MAX_BODY - len(head) - 200, 1000)
    lines += ["", "<details><summary>Raw evidence (JSON)</summary>", "", _json_block(alert.evidence, budget)]
    lines += [
        "",
        "</details>",
        "",
        "<sub>Raised by `mlops alerts`; recurrences comment here, recovery closes it.</sub>",
    ]
    return "\n".join(lines) + "\n"


def fingerprint_of(body: str | None) -> str | None:
    # Only the first line counts, so evidence quoting a marker can never match.
    first = (body or "").split("\n", 1)[0].strip()
    m = re.fullmatch(r"<!-- mlops-fingerprint: (\S+) -->", first)
    return m.group(1) if m else None
