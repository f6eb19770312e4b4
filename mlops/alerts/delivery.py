"""Delivery: open, update, reopen or close the one issue per fingerprint, or queue the action in the outbox.

`raise_alert` and `resolve` are what stages call; `flush` sends the outbox. Every API step goes
through `client.Channel`'s retry loop; a create that may have reached GitHub is re-checked by
fingerprint, never resent blindly. A delivery is recorded in the audit log before the queued
entries it supersedes are dropped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlops import audit, gha
from mlops.alerts.client import Channel, Target, Undeliverable, raw_json, scrub, target_from_env
from mlops.alerts.model import (
    FINGERPRINT_RE,
    LABELS,
    Alert,
    fingerprint_of,
    render_body,
    run_marker,
    safe_text,
)
from mlops.alerts.outbox import drop_queued, outbox_dir, queue, raise_entry, read_outbox
from mlops.errors import BadInput

RUN_COMMENT_WINDOW_HOURS = 12  # longer than any Actions run (jobs stop at 6 h); re-runs get a new attempt key
# Issue outcome -> audit event type.
AUDIT_EVENTS = {
    "opened": "alert_opened",
    "commented": "alert_updated",
    "reopened": "alert_reopened",
    "closed": "alert_closed",
}
# (API URL, repository, status) whose fix was already printed: a 410/403 names its fix once per process
# (one command), however many alerts it refuses. Process memory only: nothing is written.
_FIX_SAID: set[tuple[str, str, int]] = set()


# ---- the issue operations ------------------------------------------------------------------------------


def _issue_fingerprints(ch: Channel, fingerprint: str) -> tuple[list[Any], list[Any]]:
    """All ml-ops issues with this fingerprint, every page: (open oldest first, closed most recent first)."""

    def listing() -> list[Any]:
        found = []
        for issue in ch.repo.get_issues(state="all", labels=["ml-ops"], sort="created", direction="asc"):
            raw = raw_json(issue)
            if raw.get("pull_request") is None and fingerprint_of(raw.get("body")) == fingerprint:
                found.append(issue)
        return found

    matches = ch.call("list ml-ops issues", listing)
    opened = sorted((i for i in matches if raw_json(i).get("state") == "open"), key=lambda i: i.number)
    closed = sorted(
        (i for i in matches if raw_json(i).get("state") != "open"),
        key=lambda i: (raw_json(i).get("closed_at") or "", i.number),
        reverse=True,
    )
    return opened, closed


def _ensure_labels(ch: Channel, names: list[str]) -> list[str]:
    """Create the missing labels with our colours; existing ones are left exactly as they are."""
    from github import GithubException

    existing = ch.call("list labels", lambda: {label.name.lower() for label in ch.repo.get_labels()})
    created = []
    for name in names:
        if name.lower() in existing:
            continue
        colour, description = LABELS.get(name, ("ededed", "Added by mlops alerts"))

        def create(name: str = name, colour: str = colour, description: str = description) -> bool:
            try:
                ch.repo.create_label(name, colour, description)
            except GithubException as exc:
                if exc.status != 422:  # 422 already_exists: a concurrent run or our own landed retry
                    raise
                return False
            return True

        # Creating a label twice is harmless (422), so an uncertain POST may simply be retried.
        if ch.call(f"create label {name}", create, post=True, recheck=lambda: None):
            created.append(name)
    return created


def _upsert_comment(ch: Channel, issue: Any, marker: str, text: str) -> tuple[Any, bool]:
    """At most one comment per run and action: edit this run's comment if it exists, else add one."""
    import datetime as dt

    body = f"{marker}\n\n{text}"
    # This run's comment was written during this run, so only recently updated comments can be it;
    # `since` keeps a years-old issue with hundreds of comments to one page. Real clock on purpose:
    # it is compared with GitHub's clock, not with MLOPS_NOW.
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=RUN_COMMENT_WINDOW_HOURS)

    def find() -> Any:
        for comment in issue.get_comments(since=since):
            if (raw_json(comment).get("body") or "").startswith(marker):
                return comment
        return None

    existing = ch.call(f"list comments on #{issue.number}", find)
    if existing is not None:
        ch.call(f"edit comment on #{issue.number}", lambda: existing.edit(body))
        return existing, False
    comment = ch.call(f"comment on #{issue.number}", lambda: issue.create_comment(body), post=True, recheck=find)
    return comment, True


def _recurrence_text(alert: Alert, target: Target, commit: str, verb: str, note: str) -> str:
    body = render_body(alert, target, commit, note=note)
    # Drop the issue's own marker line; the comment carries the run marker instead.
    rest = body.split("\n", 1)[1].lstrip("\n")
    return f"**{verb}** — {alert.clean_title()}\n\n{rest}"


def _deliver_raise(ch: Channel, alert: Alert, commit: str, note: str = "") -> dict[str, Any]:
    target = ch.target
    opened, closed = _issue_fingerprints(ch, alert.fingerprint)
    result: dict[str, Any] = {"fingerprint": alert.fingerprint, "labels_created": []}
    marker = run_marker(target.run_key, "raise")
    if opened:
        issue = opened[0]
        for dup in opened[1:]:  # heal a duplicate left by an old race: keep the oldest
            _upsert_comment(ch, dup, run_marker(target.run_key, "dedupe"), f"Duplicate of #{issue.number}.")
            ch.call(f"close duplicate #{dup.number}", lambda d=dup: d.edit(state="closed", state_reason="not_planned"))
            result.setdefault("closed_duplicates", []).append(dup.number)
        comment, created = _upsert_comment(
            ch, issue, marker, _recurrence_text(alert, target, commit, "Seen again", note)
        )
        result.update(status="commented", comment_created=created, comment_url=raw_json(comment).get("html_url"))
    elif closed:
        issue = closed[0]
        result["labels_created"] = _ensure_labels(ch, alert.labels() + [n for n in LABELS if n not in alert.labels()])
        current = [label["name"] for label in raw_json(issue).get("labels", [])]
        labels = list(dict.fromkeys(current + alert.labels()))
        ch.call(f"reopen #{issue.number}", lambda: issue.edit(state="open", labels=labels))
        comment, created = _upsert_comment(ch, issue, marker, _recurrence_text(alert, target, commit, "Recurred", note))
        result.update(status="reopened", comment_created=created, comment_url=raw_json(comment).get("html_url"))
    else:
        result["labels_created"] = _ensure_labels(ch, alert.labels() + [n for n in LABELS if n not in alert.labels()])
        body = render_body(alert, target, commit, note=note)

        def still_open() -> Any:
            again, _ = _issue_fingerprints(ch, alert.fingerprint)
            return again[0] if again else None

        issue = ch.call(
            "create issue",
            lambda: ch.repo.create_issue(title=alert.clean_title(), body=body, labels=alert.labels()),
            post=True,
            recheck=still_open,
        )
        result.update(status="opened")
    result.update(issue=issue.number, url=raw_json(issue).get("html_url"), title=alert.clean_title())
    return result


def _deliver_resolve(ch: Channel, fingerprint: str, reason: str) -> dict[str, Any]:
    opened, _ = _issue_fingerprints(ch, fingerprint)
    if not opened:
        return {"status": "not-open", "fingerprint": fingerprint, "issues": []}
    closed = []
    for issue in opened:
        _upsert_comment(ch, issue, run_marker(ch.target.run_key, "resolve"), f"**Resolved** — {safe_text(reason)}")
        ch.call(f"close #{issue.number}", lambda i=issue: i.edit(state="closed", state_reason="completed"))
        closed.append(issue.number)
    first = opened[0]
    return {
        "status": "closed",
        "fingerprint": fingerprint,
        "issue": first.number,
        "issues": closed,
        "url": raw_json(first).get("html_url"),
        "reason": reason,
    }


# ---- raise, resolve, flush -----------------------------------------------------------------------------


def _commit(cfg: Any, target: Target) -> str:
    if target.sha:
        return target.sha
    sha = cfg.repo.git_commit()
    return sha if sha != "unknown" else "HEAD"


def _summary_for_outbox(alert: Alert, body: str, path: str, why: str) -> None:
    gha.add_summary(
        f"### Alert queued, not sent: {safe_text(alert.clean_title())}\n\n{safe_text(why)}. Kept in `{path}`; "
        "`mlops alerts flush` sends it.\n\n"
        f"Labels: {', '.join(f'`{n}`' for n in alert.labels())}\n\n---\n\n{body}"
    )


def refusal_fix(target: Target, status: int) -> str:
    """What a person must enable when GitHub refuses alerts with a 410 (Issues off) or 403 (no permission)."""
    then = "then the queued alerts are delivered by the next `mlops alerts flush`"
    if status == 410:
        return (
            f"GitHub answered 410: Issues are disabled on {target.repository}; enable them in "
            f"Settings -> General -> Features -> Issues, {then}"
        )
    return (
        f"GitHub answered 403: the token cannot write issues on {target.repository}; give the job "
        f"`permissions: issues: write` in the workflow (or use a token with Issues: read and write), {then}"
    )


def _note_refusal(target: Target, exc: Undeliverable) -> bool:
    """Say the fix for a 410/403 once per command (warning + step summary); True when exc is such a refusal."""
    if exc.refusal is None:
        return False
    key = (target.api_url, target.repository, exc.refusal)
    if key not in _FIX_SAID:
        _FIX_SAID.add(key)
        fix = refusal_fix(target, exc.refusal)
        gha.warn(fix)
        gha.add_summary(f"### Alerts cannot reach GitHub\n\n{safe_text(fix)}")
    return True


def raise_alert(cfg: Any, alert: Alert) -> dict:
    """Open, update or reopen the issue for alert.fingerprint; on failure or without a token, queue it in the outbox."""
    alert.validate()
    target = target_from_env()
    if target.token:
        # Before anything is sent: an issue must not be opened and then fail to be recorded for want of the key.
        audit.check_can_record(cfg.repo)
    return _raise_with(cfg, target, alert, queued_ns=None)


def _raise_with(
    cfg: Any, target: Target, alert: Alert, *, queued_ns: int | None, note: str = "", channel: Channel | None = None
) -> dict[str, Any]:
    """Deliver one raise; `queued_ns` is set when flushing that queued entry (which then stays where it is)."""
    commit = _commit(cfg, target)
    repo = cfg.repo
    started_ns = time.time_ns()
    if not target.token:
        return _raise_dry_run(repo, target, alert, commit, queued_ns=queued_ns, note=note)
    own = channel is None
    ch = channel or Channel(cfg.alerts.delivery, target)
    try:
        result = _deliver_raise(ch, alert, commit, note=note)
    except Undeliverable as exc:
        why = scrub(str(exc), target.token)
        refused = _note_refusal(target, exc)
        return _raise_undelivered(repo, target, alert, commit, why, queued_ns=queued_ns, note=note, quiet=refused)
    finally:
        if own:
            ch.close()
    result.update(delivered=True, dry_run=False)
    payload = {
        "fingerprint": alert.fingerprint,
        "kind": alert.kind,
        "severity": alert.severity,
        "issue": result["issue"],
        "url": result["url"],
        "title": alert.clean_title(),
        "facts": alert.facts,
    }
    result["audit_seq"] = audit.record(repo, AUDIT_EVENTS[result["status"]], payload)["seq"]
    # Only once the delivery is recorded: if recording fails, the queued entry stays for the next flush.
    result["superseded"] = drop_queued(repo, alert.fingerprint, queued_ns if queued_ns is not None else started_ns)
    gha.info(f"alert {alert.fingerprint}: {result['status']} issue #{result['issue']} {result['url']}")
    gha.add_summary(
        f"### Alert {result['status']}: [{safe_text(alert.clean_title())} #{result['issue']}]({result['url']})"
    )
    return result


def _raise_dry_run(
    repo: Any, target: Target, alert: Alert, commit: str, *, queued_ns: int | None, note: str
) -> dict[str, Any]:
    """No token: queue the alert (unless it is already queued) and show it in the step summary."""
    body = render_body(alert, target, commit, note=note)
    path = None
    if queued_ns is None:
        path = queue(repo, raise_entry(alert, body, "no GITHUB_TOKEN: dry run"), target)
        _summary_for_outbox(alert, body, repo.rel(path), "No GITHUB_TOKEN, so this is a dry run")
        gha.info(f"alert {alert.fingerprint}: dry run (no GITHUB_TOKEN); queued in {repo.rel(path)}")
    return {
        "status": "outbox",
        "dry_run": True,
        "delivered": False,
        "fingerprint": alert.fingerprint,
        "outbox": repo.rel(path) if path else None,
        "title": alert.clean_title(),
        "markdown": body,
    }


def _raise_undelivered(
    repo: Any, target: Target, alert: Alert, commit: str, why: str, *, queued_ns: int | None, note: str, quiet: bool
) -> dict[str, Any]:
    """GitHub gave up: queue the alert (a flushed entry stays where it is) and say so; `quiet` when the
    warning that names the fix was already given (a 410/403), so the alert itself is a plain line."""
    result = {"status": "outbox", "dry_run": False, "delivered": False, "fingerprint": alert.fingerprint}
    if queued_ns is not None:
        return {**result, "error": why}
    body = render_body(alert, target, commit, note=note)
    path = queue(repo, raise_entry(alert, body, why), target)
    (gha.info if quiet else gha.warn)(
        f"alert {alert.fingerprint} NOT delivered ({why}); queued in {repo.rel(path)}, "
        "`mlops alerts flush` will send it"
    )
    _summary_for_outbox(alert, body, repo.rel(path), f"Delivery failed: {why}")
    return {**result, "outbox": repo.rel(path), "error": why, "title": alert.clean_title()}


def resolve(cfg: Any, fingerprint: str, reason: str) -> dict:
    """Close the open issue(s) for a fingerprint with a comment giving the reason; queue it when GitHub fails."""
    if not isinstance(fingerprint, str) or not FINGERPRINT_RE.match(fingerprint):
        raise BadInput("fingerprint", f"{fingerprint!r} is not a fingerprint", "pass the fingerprint of the alert")
    if not isinstance(reason, str) or not reason.strip():
        raise BadInput("reason", "empty", "say why the problem is gone, e.g. '3 clean monitoring runs'")
    target = target_from_env()
    if target.token:
        audit.check_can_record(cfg.repo)  # before anything is sent, as for raise_alert
    return _resolve_with(cfg, target, fingerprint, reason, queued_ns=None)


def _resolve_with(
    cfg: Any,
    target: Target,
    fingerprint: str,
    reason: str,
    *,
    queued_ns: int | None,
    channel: Channel | None = None,
) -> dict[str, Any]:
    repo = cfg.repo
    started_ns = time.time_ns()
    entry = {"action": "resolve", "fingerprint": fingerprint, "reason": reason}
    if not target.token:
        path = None
        if queued_ns is None:
            path = queue(repo, {**entry, "error": "no GITHUB_TOKEN: dry run"}, target)
            gha.add_summary(f"### Alert resolve queued (dry run): `{fingerprint}`\n\n{safe_text(reason)}")
            gha.info(f"resolve {fingerprint}: dry run (no GITHUB_TOKEN); queued in {repo.rel(path)}")
        return {
            "status": "outbox",
            "dry_run": True,
            "delivered": False,
            "fingerprint": fingerprint,
            "outbox": repo.rel(path) if path else None,
        }
    own = channel is None
    ch = channel or Channel(cfg.alerts.delivery, target)
    try:
        result = _deliver_resolve(ch, fingerprint, reason)
    except Undeliverable as exc:
        why = scrub(str(exc), target.token)
        refused = _note_refusal(target, exc)
        failed = {"status": "outbox", "dry_run": False, "delivered": False, "fingerprint": fingerprint}
        if queued_ns is not None:
            return {**failed, "error": why}
        path = queue(repo, {**entry, "error": why}, target)
        (gha.info if refused else gha.warn)(f"resolve {fingerprint} NOT delivered ({why}); queued in {repo.rel(path)}")
        gha.add_summary(f"### Alert resolve queued, not sent: `{fingerprint}`\n\n{safe_text(why)}")
        return {**failed, "outbox": repo.rel(path), "error": why}
    finally:
        if own:
            ch.close()
    result.update(delivered=True, dry_run=False)
    if result["status"] == "closed":
        for number in result["issues"]:
            event = {"fingerprint": fingerprint, "issue": number, "reason": reason}
            result["audit_seq"] = audit.record(repo, "alert_closed", event)["seq"]
        gha.info(f"resolve {fingerprint}: closed #{', #'.join(str(n) for n in result['issues'])}")
        gha.add_summary(f"### Alert closed: [#{result['issue']}]({result['url']})\n\n{safe_text(reason)}")
    else:
        gha.info(f"resolve {fingerprint}: no open issue")
    # Only once the delivery is recorded: if recording fails, the queued entry stays for the next flush.
    result["superseded"] = drop_queued(repo, fingerprint, queued_ns if queued_ns is not None else started_ns)
    return result


def flush(cfg: Any) -> dict[str, Any]:
    """Send the outbox: per fingerprint, the newest queued action wins and supersedes the older ones.

    What is not delivered stays queued; that is reported (one warning, one summary line), not raised:
    the caller decides whether it is a failure (`mlops alerts flush --strict`)."""
    repo = cfg.repo
    entries = read_outbox(repo)
    target = target_from_env()
    latest: dict[str, tuple[Path, dict[str, Any], int]] = {}
    for path, data in entries:
        fp = data["fingerprint"]
        count = latest[fp][2] + 1 if fp in latest else 1
        latest[fp] = (path, data, count)
    outcome: dict[str, Any] = {"queued": len(entries), "delivered": [], "failed": [], "dry_run": not target.token}
    if not entries:
        gha.info("alerts outbox: empty")
        return outcome
    if not target.token:
        gha.info(f"alerts outbox: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} kept (no GITHUB_TOKEN)")
        rows = [(d["fingerprint"], d["action"], d.get("queued_at", "")) for _, d in entries]
        gha.add_summary(
            "### Alerts outbox (dry run, not sent)\n\n" + gha.md_table(["fingerprint", "action", "queued"], rows)
        )
        return outcome
    audit.check_can_record(repo)  # before anything is sent, as for raise_alert
    ch = Channel(cfg.alerts.delivery, target)
    try:
        for fp, (path, data, count) in latest.items():
            result = _flush_one(cfg, target, ch, path, data, count)
            if result.get("delivered"):
                outcome["delivered"].append(
                    {"fingerprint": fp, "status": result["status"], "issue": result.get("issue")}
                )
            else:
                outcome["failed"].append({"fingerprint": fp, "error": result.get("error", "")})
                gha.info(f"outbox {fp}: still not delivered ({result.get('error', '')}); kept in {repo.rel(path)}")
    finally:
        ch.close()
    if outcome["failed"]:
        outcome["kept"] = _report_kept(repo, outcome["failed"], len(latest))
    return outcome


def _flush_one(cfg: Any, target: Target, ch: Channel, path: Path, data: dict[str, Any], count: int) -> dict[str, Any]:
    """Deliver the newest queued action of one fingerprint (`count` queued in all); the entry stays until then."""
    queued_ns = int(data.get("queued_ns", 0))
    if data["action"] == "resolve":
        return _resolve_with(cfg, target, data["fingerprint"], data["reason"], queued_ns=queued_ns, channel=ch)
    alert = Alert.from_dict(data["alert"], f"{cfg.repo.rel(path)}: /alert")
    note = f"queued at {data.get('queued_at')}"
    if count > 1:
        note += f"; {count - 1} earlier occurrence(s) were queued and are summarised by this one"
    return _raise_with(cfg, target, alert, queued_ns=queued_ns, note=note, channel=ch)


def _report_kept(repo: Any, failed: list[dict[str, Any]], alerts_flushed: int) -> int:
    """One warning and one summary line: how many entries stay queued, and why. Returns that number."""
    folder = outbox_dir(repo)
    kept = len(list(folder.glob("*.json"))) if folder.is_dir() else 0
    errors = list(dict.fromkeys(f["error"] for f in failed))
    why = errors[0] + (f" (and {len(errors) - 1} other error(s), listed above)" if len(errors) > 1 else "")
    entries = f"{kept} entr{'y' if kept == 1 else 'ies'}"
    gha.warn(
        f"alerts outbox: {len(failed)} of {alerts_flushed} alert(s) not delivered; {entries} stay queued in "
        f"{repo.rel(folder)}/ for the next `mlops alerts flush`: {why}"
    )
    gha.add_summary(
        f"### Alerts outbox: {entries} stay queued\n\n{len(failed)} of {alerts_flushed} alert(s) not delivered: "
        f"{safe_text(why)}. Nothing is lost: the next `mlops alerts flush` sends them."
    )
    return kept
