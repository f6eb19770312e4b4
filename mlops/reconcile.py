"""`mlops serve --follow REMOTE`: serve the desired state of a git remote, and only a state that passes four checks.

A Follower keeps its own clone of the remote in `--workdir` (folder `checkout/`), fetches the branch every
`--interval` seconds on a background thread and, for each new commit:

(a) audit log: the log at the commit verifies (`mlops audit verify`'s checks) and is an append-only extension
    of the log it trusted last: an RFC 9162 consistency proof from the trusted tree head (size, root) to the
    new log. The first state served establishes that trust (trust on first use) unless `--trust-root
    SIZE:ROOT` pins it; the trusted head is kept in `<workdir>/trust.json`, so a restart does not re-trust;
(b) desired state: models/deployment.json is the state the newest deployment event recorded (its
    `state_sha256`; `mlops.audit.verify.check_deployment_state`), so a hand edit that skipped the gates is
    not served;
(c) integrity: every served model file hashes to its manifest's sha256 and to the one the state pins;
(d) load and probe: a Router is built on the checkout and answers one all-null row per model (production,
    canary and shadow), with scores in [0, 1]; then it replaces the served router under the lock.

A commit that fails a check is not served: the previous router keeps answering and `status()` names the
check and the commit; the work tree goes back to the served commit. Checks (c) and (d) run only when the
state or a model folder it names changed (git object ids); (a) and (b) run for every new commit.
`mlops.serving_http.make_server(..., serving=follower)` serves it: `refresh()` is a no-op, fetching happens here.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import git, jsonio, registry
from mlops.errors import BadInput, CheckFailed
from mlops.repo import Repo

TRUST_FILE = "trust.json"
CHECKOUT = "checkout"
ROLES = ("production", "canary", "shadow")


class Refused(Exception):
    """A commit that failed one of the checks: `check` names it, the message says why."""

    def __init__(self, check: str, reason: str):
        self.check = check
        super().__init__(reason)


@dataclass
class Candidate:
    """A commit that passed (a) and (b): its state, its log's tree head and what the state depends on."""

    commit: str
    state: dict[str, Any]
    size: int
    root: str
    fingerprint: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)


def parse_trust_root(text: str) -> dict[str, Any]:
    """`--trust-root SIZE:ROOT` as a trusted tree head."""
    size, _, root = text.partition(":")
    if not (size.isdigit() and len(root) == 64 and all(c in "0123456789abcdef" for c in root)):
        raise BadInput(
            "--trust-root",
            f"{text!r} is not SIZE:ROOT",
            "pass the entry count and root hex `mlops audit verify` prints, e.g. 12:3fa2…(64 hex digits)",
        )
    return {"size": int(size), "root": root, "commit": None, "established": "pinned"}


def _git(root: Path, *args: str, check: str = "fetch") -> str:
    out = git.run(root, *args, timeout=300)
    if out.returncode != 0:
        raise Refused(check, f"git {args[0]} failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return out.stdout.strip()


def check_audit_log(repo: Repo, anchors: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    """(a) and (b): the log verifies and extends every trusted tree head; the state file is the recorded one.

    Returns (the log's MerkleTree, warnings); Refused naming the check otherwise.
    """
    from mlops.audit.log import read_dir
    from mlops.audit.verify import check_deployment_state, verify_data
    from mlops.merkle import ProofError, verify_consistency

    try:
        data = read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
        result = verify_data(data)
    except (BadInput, CheckFailed) as exc:
        raise Refused("audit log", str(exc)) from None
    tree = result.tree
    assert tree is not None
    for anchor in anchors:
        m, n, where = anchor["size"], tree.size, _anchor_name(anchor)
        if n < m:
            raise Refused("audit log", f"holds {n} entries, fewer than the {m} of {where}: entries were removed")
        if m == 0:
            continue
        try:
            verify_consistency(m, n, tree.consistency_proof(m, n), bytes.fromhex(anchor["root"]), tree.root())
        except ProofError as exc:
            raise Refused(
                "audit log",
                f"is not an append-only extension of {where} (size {m}, root {anchor['root'][:16]}…): "
                f"history was rewritten ({exc})",
            ) from None
    try:
        warnings = result.warnings + check_deployment_state(repo, data.lines)
    except (BadInput, CheckFailed) as exc:
        raise Refused("desired state", str(exc)) from None
    return tree, warnings


def _anchor_name(anchor: dict[str, Any]) -> str:
    if anchor.get("established") == "pinned":
        return "the pinned --trust-root"
    return f"the log trusted at commit {str(anchor.get('commit'))[:12]}"


def check_models(repo: Repo, state: dict[str, Any]) -> None:
    """(c): each served model's file matches its manifest, and the manifest the sha256 the state pins."""
    for role in ROLES:
        spec = state.get(role)
        if not spec:
            continue
        pinned = spec["model_sha256"] if role == "production" else spec["sha256"]
        try:
            folder = registry.find_version(repo, spec["version"])
            manifest = registry.verify_integrity(folder, repo)
        except BadInput as exc:
            raise Refused("integrity", f"the {role} model {spec['version']}: {exc}") from None
        if manifest["model_sha256"] != pinned:
            raise Refused(
                "integrity",
                f"the {role} model {spec['version']}: its manifest's sha256 {manifest['model_sha256'][:12]}… is not "
                f"the {pinned[:12]}… {repo.rel(repo.deployment_state)} pins",
            )


def load_and_probe(repo: Repo, state: dict[str, Any]) -> Any:
    """(d): a Router on the checkout that answers one all-null row with every model it serves."""
    from mlops.serving import Router

    try:
        router = Router(repo, state=state)
    except (BadInput, CheckFailed) as exc:
        raise Refused("load", str(exc)) from None
    ids = ["probe-production"]
    if "canary" in router.models:
        ids.append(next(f"probe-{i}" for i in range(100_000) if router.role_for(f"probe-{i}") == "canary"))
    rows = [dict.fromkeys(router.features) for _ in ids]
    try:
        answer, records, errors = router.route(rows, ids, where="probe")
    except Exception as exc:  # noqa: BLE001 - any failure of a model to answer refuses the state
        raise Refused("health", f"the probe request failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    if errors:
        raise Refused("health", f"the {errors[0]['role']} model failed the probe: {errors[0]['error']}")
    for rec in records:
        if not (math.isfinite(rec["score"]) and 0 <= rec["score"] <= 1):
            raise Refused("health", f"the {rec['role']} model {rec['model_version']} scored {rec['score']}")
    answered = {rec["role"] for rec in records}
    missing = [role for role in router.models if role not in answered]
    if missing:
        raise Refused("health", f"no probe answer from the {', '.join(missing)} model")
    return router


class Follower:
    """The router source `mlops serve --follow` hands to make_server: `.lock`, `.router`, `.error`,
    `.refresh()`, `.status()`; `poll()` fetches and reconciles (on the interval thread after `start()`)."""

    def __init__(
        self, remote: str, workdir: Path, *, branch: str = "main", interval: float = 30.0, pin: dict | None = None
    ):
        self.remote = str(Path(remote).resolve()) if Path(remote).exists() else remote
        self.branch, self.interval, self.pin = branch, interval, pin
        self.workdir = Path(workdir).resolve()
        self.checkout = self.workdir / CHECKOUT
        self.lock = threading.Lock()
        self.router: Any = None
        self.error: str | None = None
        self.served: Candidate | None = None
        self.trusted: dict[str, Any] | None = self._read_trust()
        self.refused: dict[str, Any] | None = None
        self.fetched: dict[str, Any] = {"time": None, "commit": None, "error": None}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prepare()

    # ---- setup

    def _read_trust(self) -> dict[str, Any] | None:
        path = self.workdir / TRUST_FILE
        if not path.exists():
            return None
        data = jsonio.read_json(path, "trusted tree head")
        if not isinstance(data, dict) or not isinstance(data.get("size"), int) or not isinstance(data.get("root"), str):
            raise BadInput(str(path), "is not a trusted tree head", "delete it to trust the next state on first use")
        return data

    def _prepare(self) -> None:
        """Clone the remote into <workdir>/checkout, or check that the clone there is of this remote."""
        if (self.checkout / ".git").exists():
            origin = git.run(self.checkout, "remote", "get-url", "origin", timeout=30).stdout.strip()
            if origin != self.remote:
                raise BadInput(
                    "--workdir", f"{self.checkout} is a clone of {origin}, not {self.remote}", "pass another --workdir"
                )
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        out = git.run(self.workdir, "clone", "--quiet", "--no-checkout", self.remote, CHECKOUT, timeout=600)
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines() or ["?"]
            raise BadInput("--follow", f"cannot clone {self.remote} ({lines[-1]})", "pass a git URL or path to a repo")

    # ---- the router source interface (called with self.lock held by the server)

    def refresh(self) -> None:
        """Nothing: the interval thread fetches and swaps the router."""

    def status(self) -> dict[str, Any]:
        router, served = self.router, self.served
        state = served.state if served else {}
        traffic: dict[str, float] = {}
        if router is not None:
            traffic = {"production": 1.0 - router.traffic} | ({"canary": router.traffic} if router.traffic else {})
        return {
            "mode": "follow",
            "remote": self.remote,
            "branch": self.branch,
            "commit": served.commit if served else None,
            "state": {role: (state.get(role) or {}).get("version") for role in ROLES},
            "roles": {role: {"version": m.version, "sha256": m.sha256} for role, m in router.models.items()}
            if router is not None
            else {},
            "traffic": traffic,
            "error": self.error,
            "last_fetch": dict(self.fetched),
            "refused": dict(self.refused) if self.refused else None,
            "trusted": dict(self.trusted) if self.trusted else None,
            "warnings": list(served.warnings) if served else [],
        }

    def summary(self) -> str:
        """One line: what is served, and why the newest commit is not when it is not."""
        served = f"serving commit {self.served.commit[:12]}" if self.served else "serving nothing yet"
        return served + (f"; {self.error}" if self.error else "")

    # ---- reconciling

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mlops-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - the server keeps serving; status says what broke
                with self.lock:
                    self.fetched["error"] = f"{type(exc).__name__}: {exc}"

    def poll(self) -> None:
        """Fetch the branch; reconcile a commit that is neither served nor already refused."""
        now = _now()
        try:
            _git(
                self.checkout,
                "fetch",
                "--quiet",
                "origin",
                f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}",
            )
            commit = _git(self.checkout, "rev-parse", "--verify", f"refs/remotes/origin/{self.branch}^{{commit}}")
        except Refused as exc:
            with self.lock:
                self.fetched = {"time": now, "commit": self.fetched.get("commit"), "error": str(exc)}
            return
        with self.lock:
            self.fetched = {"time": now, "commit": commit, "error": None}
        if (self.served and commit == self.served.commit) or (self.refused and commit == self.refused["commit"]):
            return
        self.reconcile(commit)

    def reconcile(self, commit: str) -> bool:
        """Check a commit; serve it when every check passes, else record why. Returns whether it is served."""
        try:
            candidate, router = self._check(commit)
        except Refused as exc:
            refusal = {"commit": commit, "check": exc.check, "reason": str(exc), "time": _now()}
            with self.lock:
                self.refused = refusal
                self.error = f"commit {commit[:12]} not served: {exc.check} check failed: {exc}"
            if self.served is not None:
                _git(self.checkout, "checkout", "--quiet", "--force", "--detach", self.served.commit, check="checkout")
            return False
        established = (self.trusted or self.pin or {}).get("established", "first use")
        trusted = {"size": candidate.size, "root": candidate.root, "commit": commit, "established": established}
        trusted["time"] = _now()
        jsonio.write_json(self.workdir / TRUST_FILE, trusted)
        with self.lock:
            if router is not None:
                self.router = router
            self.served, self.trusted, self.error = candidate, trusted, None
        return True

    def _check(self, commit: str) -> tuple[Candidate, Any]:
        """The four checks on `commit` (checked out in the clone); the router is None when nothing it serves
        changed since the served commit."""
        _git(self.checkout, "checkout", "--quiet", "--force", "--detach", commit, check="checkout")
        repo = Repo.at(self.checkout)
        anchors = [a for a in (self.pin, self.trusted) if a]
        tree, warnings = check_audit_log(repo, anchors)
        from mlops.deployment_state import read_state

        try:
            state = read_state(repo)
        except BadInput as exc:
            raise Refused("desired state", str(exc)) from None
        if state is None:
            raise Refused("desired state", f"{repo.rel(repo.deployment_state)} does not exist: nothing to serve")
        candidate = Candidate(commit, state, tree.size, tree.root().hex(), self._fingerprint(commit, state), warnings)
        if self.served is not None and self.router is not None and candidate.fingerprint == self.served.fingerprint:
            return candidate, None
        check_models(repo, state)
        return candidate, load_and_probe(repo, state)

    def _fingerprint(self, commit: str, state: dict[str, Any]) -> tuple[str, ...]:
        """Git object ids of the state file and of every model folder it serves: equal ids, equal bytes."""
        repo = Repo.at(self.checkout)
        paths = [repo.rel(repo.deployment_state)]
        for role in ROLES:
            if state.get(role):
                try:
                    paths.append(repo.rel(registry.find_version(repo, state[role]["version"])))
                except BadInput as exc:
                    raise Refused("integrity", f"the {role} model: {exc}") from None
        out = _git(self.checkout, "rev-parse", *[f"{commit}:{p}" for p in paths], check="integrity")
        return tuple(out.split())


def _now() -> str:
    return jsonio.format_utc(jsonio.utc_now())


FOLLOW_ONLY = ("branch", "interval", "workdir", "trust_root")


def default_workdir(remote: str) -> Path:
    """~/.cache/mlops/follow/<sha256 of the remote, 16 hex> (XDG_CACHE_HOME honoured)."""
    import hashlib
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mlops" / "follow" / hashlib.sha256(remote.encode()).hexdigest()[:16]


def follow(args: Any) -> Follower | None:
    """`mlops serve`'s --follow flags: None without --follow; else a Follower that has reconciled the branch's
    commit once (before the port is taken) and fetches on its interval thread."""
    if not args.follow:
        given = [name for name in FOLLOW_ONLY if getattr(args, name) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise BadInput(flag, "only applies with --follow", "add --follow REMOTE, or drop it")
        return None
    pin = parse_trust_root(args.trust_root) if args.trust_root else None
    remote = str(Path(args.follow).resolve()) if Path(args.follow).exists() else args.follow
    workdir = Path(args.workdir) if args.workdir else default_workdir(remote)
    follower = Follower(remote, workdir, branch=args.branch or "main", interval=args.interval or 30.0, pin=pin)
    follower.poll()
    print(f"following {remote} ({follower.branch}, every {follower.interval:g} s): " + follower.summary(), flush=True)
    follower.start()
    return follower
