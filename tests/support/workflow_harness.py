"""Run a workflow's own steps, from its YAML, in a temporary clone: the tests' stand-in for a runner.

What it does, as GitHub does it:
- parses the YAML strictly (duplicate keys refused, `on:` kept as a key);
- runs each `run:` step of one job, in order, with `bash -e {0}` (GitHub's default shell on
  Linux), cwd = the clone, in a fresh environment holding the `GITHUB_*` variables GitHub sets
  (event name and payload file, run id, ref, sha, repository, server/API URLs, workspace,
  RUNNER_TEMP, CI=true) and the evaluated `env:` of workflow, job and step; `GITHUB_TOKEN` is
  only there when the YAML puts `${{ github.token }}` in an `env:`, as on GitHub;
- gives each step fresh `$GITHUB_OUTPUT`, `$GITHUB_ENV`, `$GITHUB_PATH` and `$GITHUB_STEP_SUMMARY`
  files and reads them back (outputs to `steps.<id>.outputs`, env and path to later steps, the
  summaries concatenated as the job summary);
- evaluates `${{ }}` in `env:`, `with:` and `if:` with a small evaluator of GitHub's expression
  language: literals, contexts (`github`, `inputs`, `env`, `steps`, `secrets`, `vars`, `runner`,
  `job`), property and index access, `! == != < <= > >= && ||` with GitHub's loose, case-insensitive
  equality and value-returning `&&`/`||`, and the functions success, failure, always, cancelled,
  format, contains, startsWith, endsWith, join, toJSON, fromJSON. A step `if:` without a status
  function means `success() && (...)`;
- fills dispatch inputs from the YAML's defaults (booleans stay booleans) before applying the
  caller's values, and refuses inputs the workflow does not declare;
- refuses `${{` inside `run:` (the project's rule: inputs reach commands through env).

What replaces each `uses:` step (refused unless pinned to a 40-hex commit):
- actions/checkout: the clone is the checkout. `persist-credentials: false` makes pushing
  impossible (push URL set to a path that does not exist), as a runner without the token;
- actions/setup-python: this interpreter's venv, first on PATH; its version must match;
- the install step (`uses: $/.github/actions/install`, extras "", "dev" or "report"; or the older
  `pip install -c requirements-lock.txt -e .`): that venv was installed from the same lock;
  actually running it would repoint the shared venv at the temp clone, so the harness checks the
  step's form and that the lock file (and the action) exist instead;
- actions/upload-artifact and download-artifact: a copy to and from a folder per artifact name
  (hidden files only with include-hidden-files, as upload-artifact v4.4+);
- actions/cache/restore and actions/cache/save: a folder per key under `actions-cache/` beside the
  workspace, shared by the runs of one test; restore takes the exact key, else the newest key
  starting with a `restore-keys` prefix, and sets `cache-hit` / `cache-matched-key`; save of an
  existing key is skipped with a warning, as GitHub does (caches are immutable);
- actions/cache (restore now, save at job end): refused, the project uses the split actions.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.yamlcheck import load_yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
VENV_BIN = Path(sys.executable).parent
PIN_RE = re.compile(r"^([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)@([0-9a-f]{40})$")
INSTALL_RE = re.compile(r"^pip install -c requirements-lock\.txt -e (\.|'\.\[dev\]')$")
INSTALL_ACTION = "$/.github/actions/install"  # uv + the lock's hashes (.github/actions/install/action.yml)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "harness",
    "GIT_AUTHOR_EMAIL": "harness@example.invalid",
    "GIT_COMMITTER_NAME": "harness",
    "GIT_COMMITTER_EMAIL": "harness@example.invalid",
}


@functools.cache
def tested_pythons() -> frozenset[str]:
    """The Python versions of ci.yml's test matrix (`python-version`)."""
    ci = load_yaml((ROOT / ".github/workflows/ci.yml").read_text())
    return frozenset(
        str(v)
        for job in ci["jobs"].values()
        for v in ((job.get("strategy") or {}).get("matrix") or {}).get("python-version", [])
    )


class HarnessError(Exception):
    """The workflow uses something the harness cannot run faithfully (or breaks a project rule)."""


# ---- workflow files -------------------------------------------------------------------------------


@dataclass
class Workflow:
    path: Path
    doc: dict[str, Any]

    @classmethod
    def load(cls, name_or_path: str | Path) -> Workflow:
        path = Path(name_or_path)
        if not path.is_absolute() and not path.exists():
            path = WORKFLOWS / path
        doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
        # PyYAML reads the key `on` as the boolean True (YAML 1.1); GitHub reads it as "on".
        if True in doc:
            doc["on"] = doc.pop(True)
        return cls(path, doc)

    @property
    def name(self) -> str:
        return str(self.doc.get("name") or self.path.name)

    @property
    def triggers(self) -> dict[str, Any]:
        on = self.doc.get("on") or {}
        if isinstance(on, str):
            return {on: {}}
        if isinstance(on, list):
            return {k: {} for k in on}
        return {k: (v or {}) for k, v in on.items()}

    def crons(self) -> list[str]:
        return [entry["cron"] for entry in self.triggers.get("schedule", [])]

    def dispatch_inputs(self) -> dict[str, dict[str, Any]]:
        return dict((self.triggers.get("workflow_dispatch") or {}).get("inputs") or {})

    def jobs(self) -> dict[str, dict[str, Any]]:
        return self.doc["jobs"]

    def steps(self, job: str) -> list[dict[str, Any]]:
        return self.jobs()[job]["steps"]


def all_workflows() -> list[Workflow]:
    return [Workflow.load(p) for p in sorted(WORKFLOWS.glob("*.yml"))]


# ---- expressions ----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))|(?P<str>'(?:[^']|'')*')"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\],.*])|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise HarnessError(f"cannot parse expression {text!r} at {text[pos:]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _needs(spec: dict[str, Any]) -> list[str]:
    needs = spec.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and value == value
    if isinstance(value, str):
        return value != ""
    return True


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return float("nan")
    return float("nan")


def _equal(a: Any, b: Any) -> bool:
    # GitHub: same types compare directly (strings ignoring case); different types compare as numbers.
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if a is None and b is None:
        return True
    if type(a) is type(b) and not isinstance(a, (int, float)):
        return a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return a is b
    return _number(a) == _number(b)


def to_text(value: Any) -> str:
    """How `${{ }}` turns a value into text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    return str(value)


class _Parser:
    def __init__(self, text: str, ctx: dict[str, Any], funcs: dict[str, Callable[..., Any]]):
        self.toks = _tokens(text)
        self.i = 0
        self.ctx = ctx
        self.funcs = funcs
        self.text = text

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise HarnessError(f"expected {value or 'a token'} in {self.text!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise HarnessError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            left = left if _truthy(left) else right
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.cmp()
            left = right if _truthy(left) else left
        return left

    def cmp(self) -> Any:
        left = self.unary()
        while self.peek() in {("op", o) for o in ("==", "!=", "<", "<=", ">", ">=")}:
            op = self.take()[1]
            right = self.unary()
            if op == "==":
                left = _equal(left, right)
            elif op == "!=":
                left = not _equal(left, right)
            else:
                a, b = (left, right) if isinstance(left, str) and isinstance(right, str) else (
                    _number(left), _number(right))  # fmt: skip
                left = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        return left

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not _truthy(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while True:
            tok = self.peek()
            if tok == ("op", "."):
                self.take()
                name = self.take()[1]
                value = _index(value, name)
            elif tok == ("op", "["):
                self.take()
                key = self.or_()
                self.take("]")
                value = _index(value, key)
            else:
                return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return float(int(text, 16)) if "x" in text.lower() else float(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "op" and text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "name":
            low = text.lower()
            if low in ("true", "false"):
                return low == "true"
            if low == "null":
                return None
            if self.peek() == ("op", "("):
                self.take()
                args = []
                while self.peek() != ("op", ")"):
                    args.append(self.or_())
                    if self.peek() == ("op", ","):
                        self.take()
                self.take(")")
                func = self.funcs.get(low)
                if func is None:
                    raise HarnessError(f"function {text}() is not supported by the harness")
                return func(*args)
            if low not in self.ctx:
                raise HarnessError(f"unknown context {text!r} in {self.text!r}")
            return self.ctx[low]
        raise HarnessError(f"unexpected {text!r} in {self.text!r}")


def _index(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        if isinstance(key, str):
            for k, v in value.items():  # contexts are case-insensitive
                if isinstance(k, str) and k.casefold() == key.casefold():
                    return v
        return None
    if isinstance(value, list) and isinstance(key, (int, float)) and not isinstance(key, bool):
        idx = int(key)
        return value[idx] if 0 <= idx < len(value) else None
    return None


def _format(template: str, *args: Any) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        return to_text(args[int(m.group(1))])

    return re.sub(r"\{\{|\}\}|\{(\d+)\}", sub, template)


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, list):
        return any(_equal(item, needle) for item in haystack)
    return to_text(needle).casefold() in to_text(haystack).casefold()


BASE_FUNCS: dict[str, Callable[..., Any]] = {
    "format": _format,
    "contains": _contains,
    "startswith": lambda a, b: to_text(a).casefold().startswith(to_text(b).casefold()),
    "endswith": lambda a, b: to_text(a).casefold().endswith(to_text(b).casefold()),
    "join": lambda a, sep=",": to_text(sep).join(to_text(x) for x in a) if isinstance(a, list) else to_text(a),
    "tojson": lambda v: json.dumps(v, indent=2),
    "fromjson": lambda s: json.loads(s),
}


def evaluate(expr: str, ctx: dict[str, Any], status: dict[str, bool] | None = None) -> Any:
    """Evaluate one GitHub expression (without the `${{ }}`)."""
    status = status or {"failed": False, "cancelled": False}
    funcs = dict(BASE_FUNCS)
    funcs.update(
        success=lambda: not status["failed"] and not status["cancelled"],
        failure=lambda: status["failed"],
        always=lambda: True,
        cancelled=lambda: status["cancelled"],
    )
    return _Parser(expr, {k.lower(): v for k, v in ctx.items()}, funcs).parse()


_INTERP_RE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def interpolate(text: Any, ctx: dict[str, Any]) -> Any:
    """Replace each `${{ expr }}` in a string; a value that is exactly one expression keeps its type."""
    if not isinstance(text, str):
        return text
    whole = _INTERP_RE.fullmatch(text.strip())
    if whole:
        return evaluate(whole.group(1), ctx)
    return _INTERP_RE.sub(lambda m: to_text(evaluate(m.group(1), ctx)), text)


def step_condition(cond: Any, ctx: dict[str, Any], status: dict[str, bool]) -> bool:
    """A step's `if:`; without a status function GitHub prepends `success() &&`."""
    if cond is None:
        return not status["failed"] and not status["cancelled"]
    if isinstance(cond, bool):
        return cond and not status["failed"]
    text = str(cond).strip()
    m = _INTERP_RE.fullmatch(text)
    if m:
        text = m.group(1).strip()
    if not re.search(r"\b(success|failure|always|cancelled)\s*\(", text):
        text = f"success() && ({text})"
    return _truthy(evaluate(text, ctx, status))


# ---- files GitHub hands to steps -----------------------------------------------------------------------


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines and KEY<<DELIM heredocs, as in $GITHUB_OUTPUT and $GITHUB_ENV."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            body = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise HarnessError(f"{path.name}: heredoc {delim!r} for {key!r} never ends")
            i += 1
            out[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        else:
            raise HarnessError(f"{path.name}: malformed line {line!r}")
    return out


# ---- running a job ----------------------------------------------------------------------------------------


@dataclass
class StepResult:
    name: str
    id: str | None
    kind: str  # "run" or the action name
    outcome: str  # success, failure, skipped
    code: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class JobResult:
    workflow: str
    job: str
    steps: list[StepResult]
    summary: str
    workspace: Path
    outputs: dict[str, str] = field(default_factory=dict)  # the job's `outputs:`, for jobs that need it

    @property
    def failed(self) -> bool:
        return any(s.outcome == "failure" for s in self.steps)

    def step(self, name_or_id: str) -> StepResult:
        for s in self.steps:
            if name_or_id in (s.id, s.name):
                return s
        raise KeyError(name_or_id)

    def log(self) -> str:
        parts = []
        for s in self.steps:
            code = "" if s.code is None else f" exit {s.code}"
            parts.append(f"--- {s.name} [{s.outcome}{code}, {s.seconds:.1f} s]")
            if s.stdout.strip():
                parts.append(s.stdout.rstrip())
            if s.stderr.strip():
                parts.append(s.stderr.rstrip()[-4000:])
        return "\n".join(parts)


@dataclass
class Runner:
    """Runs one job of a workflow in `workspace` (a git clone whose origin is the test's bare remote)."""

    workspace: Path
    api_url: str = "http://127.0.0.1:9"
    token: str = "ghs_harnessTOKEN"
    repository: str = "acme/model"
    run_id: int = 4242
    secrets: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    artifacts: Path | None = None
    before_step: Callable[[dict[str, Any]], None] | None = None
    step_timeout: float = 600.0

    def run(
        self,
        workflow: Workflow,
        job: str | None = None,
        *,
        event: str = "workflow_dispatch",
        inputs: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
        ref: str = "refs/heads/main",
        needs: dict[str, Any] | None = None,
        matrix: dict[str, Any] | None = None,
    ) -> JobResult:
        if event not in workflow.triggers:
            raise HarnessError(f"{workflow.path.name} has no {event!r} trigger")
        job = job or next(iter(workflow.jobs()))
        spec = workflow.jobs()[job]
        temp = self.workspace.parent / f"runner-temp-{self.run_id}"
        temp.mkdir(parents=True, exist_ok=True)
        artifacts = self.artifacts or self.workspace.parent / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        sha = _git_out(self.workspace, "rev-parse", "HEAD")
        payload = dict(payload or {})
        resolved_inputs = self._inputs(workflow, event, inputs or {})
        if event == "workflow_dispatch":
            payload.setdefault("inputs", {k: to_text(v) for k, v in resolved_inputs.items()})
        payload.setdefault("repository", {"full_name": self.repository})
        event_path = temp / "event.json"
        event_path.write_text(json.dumps(payload), encoding="utf-8")
        pr = payload.get("pull_request") or {}
        ref_name = ref.split("/", 2)[-1] if ref.startswith("refs/heads/") else ref.rsplit("/", 1)[-1]
        if event == "pull_request":
            ref, ref_name = f"refs/pull/{pr.get('number')}/merge", f"{pr.get('number')}/merge"
            sha = pr.get("merge_sha", sha)
        server = self.api_url
        github = {
            "event_name": event, "event": payload, "run_id": str(self.run_id), "run_number": "7",
            "run_attempt": "1", "repository": self.repository, "repository_owner": self.repository.split("/")[0],
            "ref": ref, "ref_name": ref_name, "sha": sha, "workflow": workflow.name, "job": job,
            "actor": "harness-user", "token": self.token, "workspace": str(self.workspace),
            "server_url": server, "api_url": self.api_url, "base_ref": (pr.get("base") or {}).get("ref", ""),
            "head_ref": (pr.get("head") or {}).get("ref", ""), "action": "",
        }  # fmt: skip
        gh_env = {
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKFLOW": workflow.name,
            "GITHUB_WORKFLOW_REF": f"{self.repository}/.github/workflows/{workflow.path.name}@{ref}",
            "GITHUB_RUN_ID": str(self.run_id), "GITHUB_RUN_NUMBER": "7", "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_JOB": job, "GITHUB_ACTOR": "harness-user", "GITHUB_TRIGGERING_ACTOR": "harness-user",
            "GITHUB_REPOSITORY": self.repository, "GITHUB_REPOSITORY_OWNER": self.repository.split("/")[0],
            "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_SHA": sha, "GITHUB_REF": ref, "GITHUB_REF_NAME": ref_name,
            "GITHUB_REF_TYPE": "branch", "GITHUB_HEAD_REF": github["head_ref"], "GITHUB_BASE_REF": github["base_ref"],
            "GITHUB_SERVER_URL": server, "GITHUB_API_URL": self.api_url,
            "GITHUB_GRAPHQL_URL": f"{self.api_url}/graphql",
            "RUNNER_TEMP": str(temp), "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "RUNNER_NAME": "harness",
        }  # fmt: skip
        ctx: dict[str, Any] = {
            "github": github, "inputs": resolved_inputs, "secrets": {"GITHUB_TOKEN": self.token, **self.secrets},
            "vars": {}, "runner": {"os": "Linux", "arch": "X64", "temp": str(temp)}, "job": {"status": "success"},
            "steps": {}, "env": {}, "needs": needs or {}, "matrix": matrix or {},
        }  # fmt: skip
        job_env: dict[str, str] = {}
        for scope in (workflow.doc.get("env") or {}, spec.get("env") or {}):
            for key, value in scope.items():
                ctx["env"] = {**job_env}
                job_env[key] = to_text(interpolate(value, ctx))
        extra_path: list[str] = []
        status = {"failed": False, "cancelled": False}
        results: list[StepResult] = []
        summaries: list[str] = []
        for index, step in enumerate(spec["steps"]):
            name = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
            ctx["env"] = dict(job_env)
            if not step_condition(step.get("if"), ctx, status):
                results.append(StepResult(name, step.get("id"), "run" if "run" in step else step["uses"], "skipped"))
                self._record(ctx, step, results[-1])
                continue
            if self.before_step is not None:
                self.before_step(step)
            step_env = dict(job_env)
            for key, value in (step.get("env") or {}).items():
                ctx["env"] = dict(step_env)
                step_env[key] = to_text(interpolate(value, ctx))
            files = {k: temp / f"{k.lower()}-{index}" for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH",
                                                               "GITHUB_STEP_SUMMARY", "GITHUB_STATE")}  # fmt: skip
            for path in files.values():
                path.write_text("", encoding="utf-8")
            env = self._base_env(extra_path)
            env.update(gh_env)
            env.update({k: str(v) for k, v in files.items()})
            env["GITHUB_ACTION"] = step.get("id") or f"__run_{index}"
            env.update(step_env)
            env.update(self.extra_env)
            started = time.monotonic()
            if "run" in step:
                result = self._run_step(step, name, env)
            else:
                result = self._use_step(step, name, ctx, extra_path, artifacts)
            result.seconds = time.monotonic() - started
            result.outputs = {**result.outputs, **parse_env_file(files["GITHUB_OUTPUT"])}
            job_env.update(parse_env_file(files["GITHUB_ENV"]))
            extra_path[:0] = [p for p in files["GITHUB_PATH"].read_text().splitlines() if p.strip()][::-1]
            summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
            if summary.strip():
                summaries.append(summary)
            results.append(result)
            self._record(ctx, step, result)
            if result.outcome == "failure" and not step.get("continue-on-error"):
                status["failed"] = True
        outputs = {k: to_text(interpolate(v, ctx)) for k, v in (spec.get("outputs") or {}).items()}
        return JobResult(workflow.path.name, job, results, "\n".join(summaries), self.workspace, outputs)

    def run_graph(
        self,
        workflow: Workflow,
        workspace_for: Callable[[str, int], Path],
        *,
        event: str = "workflow_dispatch",
        inputs: dict[str, Any] | None = None,
    ) -> dict[str, list[JobResult]]:
        """Every job in `needs` order, as Actions would: a job runs when its needs succeeded and its `if:` holds;
        `strategy.matrix` (one key, a list or a fromJSON of an output) runs the job once per item, each in its
        own workspace (`workspace_for(job, index)`, e.g. a fresh clone); artifacts pass through one folder."""
        artifacts = self.artifacts or self.workspace.parent / "artifacts"
        done: dict[str, dict[str, Any]] = {}
        ran: dict[str, list[JobResult]] = {}
        pending = list(workflow.jobs())
        while pending:
            job = next((j for j in pending if all(n in done for n in _needs(workflow.jobs()[j]))), None)
            if job is None:
                raise HarnessError(f"{workflow.path.name}: a `needs` cycle or an unknown job in {pending}")
            pending.remove(job)
            spec = workflow.jobs()[job]
            needs = {n: done[n] for n in _needs(spec)}
            ctx = {
                "needs": needs,
                "inputs": self._inputs(workflow, event, inputs or {}),
                "github": {"event_name": event},
            }
            cond = spec.get("if")
            if any(n["result"] != "success" for n in needs.values()) or (
                cond is not None
                and not _truthy(evaluate(str(cond).strip().removeprefix("${{").removesuffix("}}"), ctx))
            ):
                done[job] = {"result": "skipped", "outputs": {}}
                continue
            items: list[dict[str, Any] | None] = [None]
            for key, value in ((spec.get("strategy") or {}).get("matrix") or {}).items():
                values = interpolate(value, ctx)
                items = [{key: v} for v in (json.loads(values) if isinstance(values, str) else values)]
            results = []
            for index, item in enumerate(items):
                runner = dataclasses.replace(self, workspace=workspace_for(job, index), artifacts=artifacts)
                results.append(runner.run(workflow, job, event=event, inputs=inputs, needs=needs, matrix=item))
            outputs = {k: v for r in results for k, v in r.outputs.items()}
            done[job] = {"result": "failure" if any(r.failed for r in results) else "success", "outputs": outputs}
            ran[job] = results
        return ran

    # -- pieces
    def _inputs(self, workflow: Workflow, event: str, given: dict[str, Any]) -> dict[str, Any]:
        if event != "workflow_dispatch":
            if given:
                raise HarnessError("inputs only exist for workflow_dispatch runs here")
            return {}
        declared = workflow.dispatch_inputs()
        unknown = set(given) - set(declared)
        if unknown:
            raise HarnessError(f"{workflow.path.name} declares no input(s) {sorted(unknown)}")
        out: dict[str, Any] = {}
        for key, spec in declared.items():
            kind = (spec or {}).get("type", "string")
            value = given.get(key, (spec or {}).get("default", False if kind == "boolean" else ""))
            if kind == "boolean" and not isinstance(value, bool):
                raise HarnessError(f"input {key} is boolean; got {value!r}")
            if kind == "choice" and value not in spec.get("options", []):
                raise HarnessError(f"input {key} must be one of {spec.get('options')}; got {value!r}")
            if (spec or {}).get("required") and value in ("", None):
                raise HarnessError(f"input {key} is required")
            out[key] = value
        return out

    def _base_env(self, extra_path: list[str]) -> dict[str, str]:
        keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "PYTHONHASHSEED")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env["PATH"] = os.pathsep.join([*extra_path, os.environ.get("PATH", "/usr/bin:/bin")])
        env.update(GIT_ENV)
        return env

    @staticmethod
    def _record(ctx: dict[str, Any], step: dict[str, Any], result: StepResult) -> None:
        if step.get("id"):
            ctx["steps"][step["id"]] = {"outputs": result.outputs, "outcome": result.outcome,
                                        "conclusion": result.outcome}  # fmt: skip

    def _run_step(self, step: dict[str, Any], name: str, env: dict[str, str]) -> StepResult:
        script = step["run"]
        if "${{" in script:
            raise HarnessError(f"step {name!r}: `${{{{ }}}}` inside run: (pass it through env:)")
        if script.strip().startswith("pip install"):
            if not INSTALL_RE.match(script.strip()):
                raise HarnessError(f"step {name!r}: install must be `pip install -c requirements-lock.txt -e .`")
            if not (self.workspace / "requirements-lock.txt").exists():
                return StepResult(name, step.get("id"), "run", "failure", 1, "", "requirements-lock.txt missing")
            return StepResult(name, step.get("id"), "run", "success", 0, "(venv already installed from the lock)")
        if step.get("shell") not in (None, "bash"):
            raise HarnessError(f"step {name!r}: shell {step.get('shell')!r} is not supported")
        shell = ["bash", "-e"] if step.get("shell") is None else ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
        script_path = Path(env["RUNNER_TEMP"]) / f"{env['GITHUB_ACTION']}.sh"
        script_path.write_text(script, encoding="utf-8")
        cwd = self.workspace / step.get("working-directory", ".")
        proc = subprocess.run(
            [*shell, str(script_path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=self.step_timeout
        )
        outcome = "success" if proc.returncode == 0 else "failure"
        return StepResult(name, step.get("id"), "run", outcome, proc.returncode, proc.stdout, proc.stderr)

    def _install(self, step: dict[str, Any], name: str, ctx: dict[str, Any]) -> StepResult:
        """The local install action: this venv was installed from the same lock (see the module docstring)."""
        extras = to_text(interpolate((step.get("with") or {}).get("extras", ""), ctx))
        if extras not in ("", "dev", "report"):
            raise HarnessError(f"step {name!r}: install extras {extras!r} is not one of '', 'dev', 'report'")
        for needed in ("requirements-lock.txt", INSTALL_ACTION[2:] + "/action.yml"):
            if not (self.workspace / needed).exists():
                return StepResult(name, step.get("id"), "install", "failure", 1, "", f"{needed} missing")
        return StepResult(name, step.get("id"), "install", "success", 0, "(venv already installed from the lock)")

    def _use_step(
        self, step: dict[str, Any], name: str, ctx: dict[str, Any], extra_path: list[str], artifacts: Path
    ) -> StepResult:
        if step["uses"] == INSTALL_ACTION:
            return self._install(step, name, ctx)
        m = PIN_RE.match(step["uses"].split()[0])
        if not m:
            raise HarnessError(f"step {name!r}: {step['uses']!r} is not pinned to a full commit SHA")
        action = m.group(1)
        with_ = {k: interpolate(v, ctx) for k, v in (step.get("with") or {}).items()}
        ok = StepResult(name, step.get("id"), action, "success", 0)
        if action == "actions/checkout":
            if to_text(with_.get("persist-credentials", True)).lower() == "false":
                # Without the persisted token a job cannot push; make that true of the clone.
                _git_out(self.workspace, "config", "remote.origin.pushurl", str(self.workspace / "no-credentials"))
            else:
                _git_out(self.workspace, "config", "--unset-all", "remote.origin.pushurl", check=False)
            return ok
        if action == "actions/setup-python":
            # The step runs on this test run's interpreter: CI's test matrix runs the harness once per
            # Python it supports, so a workflow may ask for any of those, and for nothing else.
            want = to_text(with_.get("python-version", ""))
            if want and want not in tested_pythons():
                why = f"wants Python {want}, not one ci.yml tests ({', '.join(sorted(tested_pythons()))})"
                return StepResult(name, step.get("id"), action, "failure", 1, "", why)
            extra_path.insert(0, str(VENV_BIN))
            return ok
        if action in ("actions/cache/restore", "actions/cache/save"):
            return self._cache(action, with_, ok)
        if action == "actions/upload-artifact":
            return self._upload(with_, ok, artifacts)
        if action == "actions/download-artifact" and "pattern" in with_:
            # Without merge-multiple every matching artifact lands in <path>/<artifact name>/.
            found = sorted(a for a in artifacts.iterdir() if fnmatch.fnmatchcase(a.name, to_text(with_["pattern"])))
            for source in found:
                target = self.workspace / to_text(with_.get("path", ".")) / source.name
                shutil.copytree(source, target, dirs_exist_ok=True)
            return ok if found else StepResult(name, step.get("id"), action, "failure", 1, "", "no artifact matched")
        if action == "actions/download-artifact":
            source = artifacts / to_text(with_["name"])
            if not source.is_dir():
                return StepResult(name, step.get("id"), action, "failure", 1, "", f"no artifact {with_['name']}")
            shutil.copytree(source, self.workspace / to_text(with_.get("path", ".")), dirs_exist_ok=True)
            return ok
        raise HarnessError(f"step {name!r}: no local equivalent for {action}")

    def _cache(self, action: str, with_: dict[str, Any], ok: StepResult) -> StepResult:
        store = self.workspace.parent / "actions-cache"
        store.mkdir(parents=True, exist_ok=True)
        key = to_text(with_["key"])
        paths = [p.strip().rstrip("/") for p in to_text(with_.get("path", "")).splitlines() if p.strip()]
        if "/" in key or not key:
            return StepResult(ok.name, ok.id, ok.kind, "failure", 1, "", f"unusable cache key {key!r}")
        if action == "actions/cache/save":
            if (store / key).exists():
                ok.stderr = f"Failed to save: cache entry {key} already exists"
                return ok
            saved = store / f".{key}.partial"
            for rel in paths:
                src = self.workspace / rel
                if src.is_dir():
                    shutil.copytree(src, saved / rel)
                elif src.is_file():
                    (saved / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, saved / rel)
            if not saved.exists():
                ok.stderr = "Path Validation Error: no path to cache exists; nothing saved"
                return ok
            saved.rename(store / key)
            ok.stdout = f"Cache saved with key: {key}"
            return ok
        matched = key if (store / key).is_dir() else None
        if matched is None:
            entries = sorted(
                (p for p in store.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime_ns
            )
            for prefix in [p.strip() for p in to_text(with_.get("restore-keys", "")).splitlines() if p.strip()]:
                hits = [p.name for p in entries if p.name.startswith(prefix)]
                if hits:
                    matched = hits[-1]
                    break
        ok.outputs = {"cache-hit": str(matched == key).lower(), "cache-primary-key": key,
                      "cache-matched-key": matched or ""}  # fmt: skip
        if matched:
            shutil.copytree(store / matched, self.workspace, dirs_exist_ok=True)
            ok.stdout = f"Cache restored from key: {matched}"
        else:
            ok.stdout = f"Cache not found for input keys: {key}"
        return ok

    def _upload(self, with_: dict[str, Any], ok: StepResult, artifacts: Path) -> StepResult:
        target = artifacts / to_text(with_["name"])
        hidden = to_text(with_.get("include-hidden-files", False)).lower() == "true"
        patterns = [p.strip() for p in to_text(with_.get("path", "")).splitlines() if p.strip()]
        # As upload-artifact: paths in the artifact are relative to the least common ancestor of the search
        # paths (their parts before any wildcard), so one folder `out/` uploads its contents, not `out/...`.
        literal = [Path(*[q for q in Path(p).parts if not any(c in q for c in "*?[")] or ["."]) for p in patterns]
        root = self.workspace / os.path.commonpath([str(p) for p in literal]) if patterns else self.workspace
        if root.is_file():
            root = root.parent
        copied = 0
        for pattern in patterns:
            for path in sorted(self.workspace.glob(pattern.rstrip("/"))):
                files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
                for f in files:
                    rel = f.relative_to(root)
                    if not hidden and any(part.startswith(".") for part in rel.parts):
                        continue
                    dest = target / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dest)
                    copied += 1
        if copied == 0:
            policy = to_text(with_.get("if-no-files-found", "warn"))
            if policy == "error":
                return StepResult(ok.name, ok.id, ok.kind, "failure", 1, "", "no files found")
            ok.stdout = f"no files found ({policy})"
        else:
            ok.stdout = f"uploaded {copied} file(s) to {target}"
        return ok


# ---- repositories --------------------------------------------------------------------------------------------


def _git_out(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    if check and proc.returncode != 0:
        raise HarnessError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def tracked_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def seed_remote(
    base: Path,
    *,
    config: dict[str, dict[str, Any]] | None = None,
    prepare: Callable[[Path], None] | None = None,
    include: Callable[[str], bool] | None = None,
) -> Path:
    """A bare remote `base/remote.git` whose main holds this checkout's tracked files (+ config patches).

    `prepare(seed)` runs in the seed work tree before the commit (e.g. train a champion), so
    what it writes under models/ and metadata/ is on main, as in a repository that has been used.
    """
    from tests.support.repo import _merge

    seed = base / "seed"
    seed.mkdir(parents=True)
    for rel in tracked_files():
        if include is not None and not include(rel):
            continue
        src = ROOT / rel
        if not src.exists():
            continue
        dest = seed / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    for name, patch in (config or {}).items():
        path = seed / "config" / f"{name}.json"
        data = json.loads(path.read_text())
        _merge(data, patch)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    _git_out(seed, "init", "-q", "-b", "main")
    if prepare is not None:
        prepare(seed)
    _git_out(seed, "add", "-A")
    _git_out(seed, "commit", "-qm", "seed")
    remote = base / "remote.git"
    _git_out(base, "init", "-q", "--bare", "-b", "main", str(remote))
    _git_out(seed, "push", "-q", str(remote), "main:main")
    shutil.rmtree(seed)
    return remote


def clone(remote: Path, dest: Path) -> Path:
    """A fresh checkout of the remote's main, as actions/checkout makes it."""
    _git_out(remote.parent, "clone", "-q", "--branch", "main", str(remote), str(dest))
    return dest


def remote_files(remote: Path, ref: str = "main") -> list[str]:
    return _git_out(remote, "ls-tree", "-r", "--name-only", ref).splitlines()


def remote_log(remote: Path, ref: str = "main") -> list[str]:
    return _git_out(remote, "log", "--format=%s", ref).splitlines()


def matches(path: str, pattern: str) -> bool:
    return fnmatch.fnmatch(path, pattern)
