"""The workflows, statically: strict YAML, schema, security audit, pins, permissions, crons, rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.errors import BadInput
from mlops.yamlcheck import load_json, load_yaml
from mlops.yamlcheck import main as yamlcheck_main
from tests.support.workflow_harness import (
    ROOT,
    WORKFLOWS,
    HarnessError,
    Workflow,
    all_workflows,
    evaluate,
    interpolate,
    parse_env_file,
    step_condition,
)

BIN = Path(sys.executable).parent
SHARED_PINS = ROOT.parent / "shared" / "actions-pins.md"
STATE_JOBS = {
    ("ml-training.yml", "train"),
    ("ml-training.yml", "gate"),  # the matrix's fan-in (config/training.json /matrix)
    ("model-monitoring.yml", "monitor"),
    ("dataset-validation.yml", "validate"),
    ("deploy.yml", "deploy"),
}


def _config(name: str) -> dict:
    return json.loads((ROOT / "config" / f"{name}.json").read_text())


# ---- strict YAML ---------------------------------------------------------------------------------------

DUPLICATE_IF = """
jobs:
  monitor:
    steps:
      - name: Alert
        if: steps.monitor.outputs.drift == 'true'
        if: always()
        run: mlops alerts flush
"""


def test_duplicate_key_yaml_is_rejected_though_pyyaml_accepts_it():
    import yaml

    lenient = yaml.safe_load(DUPLICATE_IF)  # the reference design's bug: the second `if:` silently wins
    assert lenient["jobs"]["monitor"]["steps"][0]["if"] == "always()"
    with pytest.raises(
        BadInput, match=r"invalid YAML at line 7 column 9: found duplicate key 'if' \(first at line 6\)"
    ):
        load_yaml(DUPLICATE_IF, "model-monitoring.yml")


def test_duplicate_key_json_is_rejected():
    with pytest.raises(BadInput, match=r"config/x.json: duplicate key 'seed' in a JSON object"):
        load_json('{"seed": 1, "seed": 2}', "config/x.json")


def test_yamlcheck_hook_reports_each_bad_file(tmp_path, capsys):
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yaml"
    good.write_text("a: 1\nb: [1, 2]\n")
    bad.write_text(DUPLICATE_IF)
    assert yamlcheck_main([str(good)]) == 0
    assert yamlcheck_main([str(good), str(bad)]) == 1
    assert "bad.yaml: invalid YAML at line 7" in capsys.readouterr().err


def test_every_workflow_and_config_file_loads_strictly():
    for path in [*WORKFLOWS.glob("*.yml"), ROOT / ".pre-commit-config.yaml"]:
        assert isinstance(load_yaml(path.read_text(), str(path)), dict), path
    for path in (ROOT / "config").rglob("*.json"):
        assert isinstance(load_json(path.read_text(), str(path)), dict), path


# ---- external validators ------------------------------------------------------------------------------------


def test_zizmor_offline_reports_no_findings_even_pedantic():
    for persona in ("regular", "pedantic"):
        proc = subprocess.run(
            [str(BIN / "zizmor"), "--offline", "--persona", persona, "--no-progress", str(WORKFLOWS)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "No findings to report" in proc.stdout + proc.stderr


def test_workflows_pass_the_github_workflow_schema():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    proc = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- crons mirror config ---------------------------------------------------------------------------------------


def test_training_cron_mirrors_default_schedule():
    assert Workflow.load("ml-training.yml").crons() == [_config("training-schedule")["default_schedule"]]


def test_monitoring_every_six_hours_and_validation_mondays_0800_utc():
    (monitor,) = Workflow.load("model-monitoring.yml").crons()
    minute, hour, dom, month, dow = monitor.split()
    assert (hour, dom, month, dow) == ("*/6", "*", "*", "*") and minute.isdigit()
    assert Workflow.load("dataset-validation.yml").crons() == ["0 8 * * 1"]


def test_cron_check_would_catch_a_disagreement(tmp_path):
    changed = (WORKFLOWS / "ml-training.yml").read_text().replace('cron: "0 2 * * 0"', 'cron: "0 3 * * 0"')
    path = tmp_path / "ml-training.yml"
    path.write_text(changed)
    assert Workflow.load(path).crons() != [_config("training-schedule")["default_schedule"]]


def test_artifact_retention_mirrors_candidate_retention():
    days = int(_config("training-schedule")["model_retention"]["candidates"].rstrip("d"))
    seen = 0
    for wf in all_workflows():
        for job in wf.jobs():
            for step in wf.steps(job):
                if "upload-artifact" in step.get("uses", ""):
                    assert step["with"]["retention-days"] == days, (wf.path.name, step.get("name"))
                    seen += 1
    assert seen >= 3


# ---- the project's rules ------------------------------------------------------------------------------------


def _pins() -> dict[str, tuple[str, str]]:
    """action -> (tag, commit) from the pin table in docs/workflows.md (copied from the team's pin list)."""
    text = (ROOT / "docs" / "workflows.md").read_text()
    return {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"\| (\S+/\S+) \| (v[\d.]+) \| ([0-9a-f]{40}) \|", text)
    }


def test_actions_pinned_to_known_shas_with_version_comment():
    pins = _pins()
    assert set(pins) >= {"actions/checkout", "actions/setup-python", "actions/upload-artifact"}
    if SHARED_PINS.exists():  # on the team's machine the table must match the shared list exactly
        shared = SHARED_PINS.read_text()
        for action, (tag, sha) in pins.items():
            assert f"| {action} | {tag} | {sha} |" in shared, action
    used = 0
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            m = re.search(r"uses: ([^@\s]+)@(\S+)(?:\s+# (\S+))?", line)
            if not m:
                continue
            used += 1
            action, sha, tag = m.groups()
            action = "/".join(action.split("/")[:2])  # actions/cache/restore is a folder of actions/cache
            assert action in pins and pins[action][1] == sha, f"{path.name}: {action}@{sha} is not a known pin"
            assert tag == pins[action][0], f"{path.name}: {action} needs the comment # {pins[action][0]}"
    assert used >= 19  # checkout, setup-python and upload-artifact across the six workflows


# The only lines a run block may have before its one command: building an array of arguments,
# optionally a flag added when an input is set (so optional flags never need unquoted variables).
ARRAY_LINES = (
    re.compile(r'^[a-z_]+=\((?:[^()"$]|"[^"]*")*\)$'),
    re.compile(r'^if \[ (?:-n "\$[A-Z_]+"|"\$[A-Z_]+" = true) \]; then [a-z_]+\+=\((?:[^()"$]|"[^"]*")*\); fi$'),
)


def _lines(script: str) -> list[str]:
    return [line.strip() for line in script.strip().splitlines()]


def command_of(script: str) -> str:
    """The one command of a run block: its last line (earlier lines only build argument arrays)."""
    return (_lines(script) or [""])[-1]


def test_no_expression_inside_run_and_every_run_step_is_one_command():
    for wf in all_workflows():
        for job in wf.jobs():
            for step in wf.steps(job):
                if "run" not in step:
                    continue
                where = f"{wf.path.name}: {step.get('name')}"
                assert "${{" not in step["run"], where
                *prelude, script = _lines(step["run"])
                for line in prelude:
                    assert any(p.match(line) for p in ARRAY_LINES), f"{where}: one command per step, not {line!r}"
                assert not re.search(r"[|;&`]|\$\(|\bjq\b", script), (wf.path.name, script)
                assert re.match(
                    r"^(mlops |scripts/commit-state |python -m pytest |pre-commit run |pip install )", script
                )


def _unquoted_expansions(script: str) -> list[str]:
    """`$NAME` / `${...}` expansions outside double quotes (single-quoted text does not expand)."""
    outside = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", script)
    return re.findall(r"\$\{?[A-Za-z_@*#?0-9][^\s\"']*", outside)


def test_inputs_reach_run_blocks_only_through_quoted_environment_variables():
    """Word splitting turned a crafted `version` input into a second `--mode=full` (shellcheck SC2086)."""
    assert _unquoted_expansions('mlops deploy $A --x "$B" ${C} "${args[@]}"') == ["$A", "${C}"]
    assert _unquoted_expansions("""echo '$not' "$ok" """) == []
    seen = 0
    for wf in all_workflows():
        for job in wf.jobs():
            for step in wf.steps(job):
                script = step.get("run", "")
                where = f"{wf.path.name}: {step.get('name')}"
                assert "${{ inputs." not in script and "${{ github.event.inputs." not in script, where
                assert _unquoted_expansions(script) == [], where
                seen += script.count("$")
    assert seen >= 20
    # The deploy step's optional inputs become separate, quoted arguments of an array.
    deploy = next(s for s in Workflow.load("deploy.yml").steps("deploy") if s.get("id") == "deploy")
    assert deploy["env"]["VERSION"] == "${{ inputs.version }}" and deploy["env"]["TRAFFIC"] == "${{ inputs.traffic }}"
    assert 'args+=(--version "$VERSION")' in deploy["run"] and 'mlops deploy "${args[@]}"' in deploy["run"]


def test_path_filters_cover_the_code_and_its_dependencies():
    wanted = {"training/**", "datasets/**", "config/**", "mlops/**", "pyproject.toml", "requirements-lock.txt"}
    training = Workflow.load("ml-training.yml").triggers["push"]
    assert training["branches"] == ["main"] and set(training["paths"]) >= wanted
    report = Workflow.load("experiment-report.yml").triggers["pull_request"]
    assert set(report["paths"]) >= wanted


# Commands that may move an MLflow alias (champion, challenger): they need the tracking server and its
# credentials, or `champion` stops following what is trained and deployed.
ALIAS_MOVERS = re.compile(r"^mlops (train|gate|deploy|rollback|canary analyze --apply)\b")
MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def test_every_step_that_may_move_an_mlflow_alias_gets_the_tracking_server_and_credentials():
    seen = set()
    for wf in all_workflows():
        for name, job in wf.jobs().items():
            for step in wf.steps(name):
                if not ALIAS_MOVERS.match(command_of(step.get("run", ""))):
                    continue
                seen.add(command_of(step["run"]).split()[1])
                env = {**(wf.doc.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
                for key in MLFLOW_ENV:
                    assert env.get(key) == f"${{{{ secrets.{key} }}}}", f"{wf.path.name}/{name}: {step.get('name')}"
    assert seen == {"train", "gate", "deploy", "rollback", "canary"}


def test_deploy_commits_its_records_whatever_the_outcome_and_defaults_to_auto():
    wf = Workflow.load("deploy.yml")
    steps = {s.get("name"): s for s in wf.steps("deploy")}
    assert steps["Check out"]["id"] == "checkout"
    assert steps["Commit deployment state"]["if"] == "${{ !cancelled() && steps.checkout.outcome == 'success' }}"
    rollback = steps["Commit rollback"]["if"]
    assert "!cancelled()" in rollback and "'failure'" in rollback and "'success'" in rollback
    assert steps["Roll back"]["if"] == "failure() && steps.deploy.outcome == 'success'"
    ctx = {"steps": {"checkout": {"outcome": "success"}, "rollback": {"outcome": "failure"}}}
    failed = {"failed": True, "cancelled": False}
    assert step_condition(steps["Commit deployment state"]["if"], ctx, failed) is True
    assert step_condition(steps["Commit rollback"]["if"], ctx, failed) is True
    ctx["steps"] = {"checkout": {"outcome": "failure"}, "rollback": {"outcome": "skipped"}}
    assert step_condition(steps["Commit deployment state"]["if"], ctx, failed) is False
    assert step_condition(steps["Commit rollback"]["if"], ctx, failed) is False
    mode = wf.dispatch_inputs()["mode"]
    assert mode["default"] == "auto" and mode["options"] == ["auto", "canary", "shadow", "full"]
    deploy = steps["Deploy"]
    assert deploy["env"]["MODE"] == "${{ inputs.mode == 'auto' && steps.state.outputs.auto_mode || inputs.mode }}"
    assert steps["Read deployment state"]["run"] == "mlops workflow state"
    assert list(steps).index("Read deployment state") < list(steps).index("Deploy")


def test_least_privilege_permissions():
    for wf in all_workflows():
        assert wf.doc["permissions"] == {}, f"{wf.path.name}: top-level permissions must be {{}}"
        for name, job in wf.jobs().items():
            perms = job.get("permissions")
            assert isinstance(perms, dict) and perms, f"{wf.path.name}/{name}: declare the job's permissions"
            assert set(perms.values()) <= {"read", "write"}
            writes_state = (wf.path.name, name) in STATE_JOBS
            assert (perms.get("contents") == "write") == writes_state, (wf.path.name, name, perms)
            runs = " ".join(s.get("run", "") for s in job["steps"])
            if "mlops alerts" in runs or "mlops monitor" in runs:
                assert perms.get("issues") == "write", (wf.path.name, name)
            if "dispatch" in runs or "mlops monitor" in runs:
                assert perms.get("actions") == "write", (wf.path.name, name)
            if perms.get("actions") == "write":
                assert "dispatch" in runs or "mlops monitor" in runs, f"{wf.path.name}/{name}: actions: write unused"
            # commit.mode pull-request: commit-state opens the state pull request; the report writes its comment.
            opens_pulls = writes_state or "mlops report pr" in runs
            assert (perms.get("pull-requests") == "write") == opens_pulls, (wf.path.name, name, perms)


def test_every_state_commit_gets_the_token_for_pull_request_mode():
    seen = 0
    for wf in all_workflows():
        for name in wf.jobs():
            for step in wf.steps(name):
                if command_of(step.get("run", "")).startswith("scripts/commit-state "):
                    seen += 1
                    assert step["env"].get("GITHUB_TOKEN") == "${{ github.token }}", (wf.path.name, step.get("name"))
    assert seen == 6  # training (one job or the matrix's gate), monitoring, validation, deploy and its rollback


# Commands that read or write the log store (config/store.json): monitoring's window, canary analysis, and the
# data steps (config/dataset.json's source production trains on labelled production data from the store).
STORE_READERS = re.compile(r"^mlops (monitor|canary analyze|train|gate|data validate)\b")
STORE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION")


def test_every_step_that_reads_the_log_store_gets_its_credentials_from_secrets():
    seen = set()
    for wf in all_workflows():
        for name in wf.jobs():
            for step in wf.steps(name):
                command = command_of(step.get("run", ""))
                env = step.get("env") or {}
                if STORE_READERS.match(command):
                    seen.add(command.split()[1])
                    for key in STORE_ENV:
                        assert env.get(key) == f"${{{{ secrets.{key} }}}}", f"{wf.path.name}/{name}: {step.get('name')}"
                else:  # and only there: no other step (checkout, uploads, the PR report) sees them
                    assert not set(env) & set(STORE_ENV), f"{wf.path.name}/{name}: {step.get('name')}"
    assert seen == {"monitor", "canary", "train", "gate", "data"}


def test_the_experiment_report_uses_no_secret():
    """A fork's pull request has none, and a pull request's run must not need one (docs/audit.md)."""
    text = (WORKFLOWS / "experiment-report.yml").read_text()
    assert "secrets." not in text
    (step,) = [s for s in Workflow.load("experiment-report.yml").steps("report") if "mlops report" in s.get("run", "")]
    assert set(step["env"]) == {"GITHUB_TOKEN", "PR_NUMBER"}


# Commands that append to the audit log (directly or for each alert they deliver); once checkpoint-key.pub is
# committed each append must be signed, so their steps need the secret.
AUDIT_APPENDERS = re.compile(
    r"^mlops (alerts |audit record|data validate|train|gate|retention|monitor|deploy|rollback|canary analyze --apply)"
)


def test_every_step_that_appends_to_the_audit_log_gets_the_signing_key():
    seen = 0
    for wf in all_workflows():
        for name, job in wf.jobs().items():
            for step in wf.steps(name):
                if AUDIT_APPENDERS.match(command_of(step.get("run", ""))):
                    seen += 1
                    env = {**(wf.doc.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
                    assert env.get("MLOPS_AUDIT_SIGNING_KEY") == "${{ secrets.MLOPS_AUDIT_SIGNING_KEY }}", (
                        f"{wf.path.name}/{name}: {step.get('name')}"
                    )
    assert seen >= 10


def test_persist_credentials_only_where_state_is_pushed_and_shared_concurrency():
    for wf in all_workflows():
        for name, job in wf.jobs().items():
            checkout = next(s for s in job["steps"] if "actions/checkout" in s.get("uses", ""))
            pushes = any("scripts/commit-state" in s.get("run", "") for s in job["steps"])
            assert checkout["with"]["persist-credentials"] is pushes, (wf.path.name, name)
            if (wf.path.name, name) in STATE_JOBS:
                assert pushes
                assert job["concurrency"] == {"group": "mlops-state", "cancel-in-progress": False}


def test_installs_use_the_lock_through_the_install_action_on_python_311():
    for wf in all_workflows():
        for name, job in wf.jobs().items():
            setup = [s for s in job["steps"] if "setup-python" in s.get("uses", "")]
            if (wf.path.name, name) == ("ci.yml", "test"):  # the suite on every supported Python
                assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
                assert setup and setup[0]["with"]["python-version"] == "${{ matrix.python-version }}"
            else:
                assert setup and setup[0]["with"]["python-version"] == "3.11"
            installs = [s for s in job["steps"] if s.get("uses") == "$/.github/actions/install"]
            assert len(installs) == 1, (wf.path.name, name)
            assert not [s for s in job["steps"] if "pip install" in s.get("run", "")], (wf.path.name, name)
            extras = (installs[0].get("with") or {}).get("extras", "")
            # Evidently (the report extra) only where its HTML is rendered; the dev tools only where tests run.
            want = "dev" if (wf.path.name, name) in (("ci.yml", "test"), ("ci.yml", "pre-commit")) else ""
            assert extras == ("report" if wf.path.name == "model-monitoring.yml" else want), (wf.path.name, name)


def test_the_install_action_installs_uv_from_the_registry_with_the_lock_s_hashes_and_a_lock_keyed_cache():
    action = load_yaml((Path(__file__).parents[1] / ".github/actions/install/action.yml").read_text())
    steps = action["runs"]["steps"]
    script = next(s["run"] for s in steps if "run" in s and "uv pip install" in s["run"])
    assert re.search(r"^pip install --quiet uv==\d+\.\d+\.\d+$", script, re.M)  # the registry, pinned; no script
    assert "uv pip install --system --verify-hashes -c requirements-lock.txt" in script
    caches = [s for s in steps if "actions/cache/" in s.get("uses", "")]
    assert [s["uses"].split("@")[0] for s in caches] == ["actions/cache/restore", "actions/cache/save"]
    for s in caches:
        assert s["uses"].split("@")[1].startswith("27d5ce7f107fe9357f9df03efb73ab90386fccae")
        assert "hashFiles('requirements-lock.txt')" in s["with"]["key"]


def test_dispatch_inputs_reach_commands_through_env():
    training = Workflow.load("ml-training.yml")
    inputs = {"model_types", "force_retrain", "no_download", "reason", "since", "until"}
    assert set(training.dispatch_inputs()) == inputs
    train = next(s for s in training.steps("train") if s.get("id") == "train")
    assert train["env"]["MODEL_TYPES"] == "${{ inputs.model_types }}"
    assert "$MODEL_TYPES" in train["run"]
    # A drift dispatch's monitoring window reaches `mlops train` as whole, quoted arguments, only when set.
    assert (train["env"]["SINCE"], train["env"]["UNTIL"]) == ("${{ inputs.since }}", "${{ inputs.until }}")
    assert 'if [ -n "$SINCE" ]; then flags+=(--since "$SINCE"); fi' in train["run"]
    assert 'if [ -n "$UNTIL" ]; then flags+=(--until "$UNTIL"); fi' in train["run"]
    assert command_of(train["run"]) == 'mlops train --model-types "$MODEL_TYPES" "${flags[@]}"'
    deploy = Workflow.load("deploy.yml")
    assert deploy.dispatch_inputs()["mode"]["options"] == ["auto", "canary", "shadow", "full"]


# ---- the harness's evaluator --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("inputs.force_retrain && '--force-retrain' || ''", "--force-retrain"),
        ("inputs.no_download && '--no-download' || ''", ""),
        ("steps.train.outputs.promoted == 'true'", True),
        ("steps.train.outputs.promoted == 'TRUE'", True),  # GitHub compares strings ignoring case
        ("steps.missing.outputs.x == 'true'", False),
        ("format('--traffic={0}', inputs.traffic)", "--traffic=0.25"),
        ("inputs.traffic != '' && format('--t={0}', inputs.traffic) || ''", "--t=0.25"),
        ("github.event_name == 'pull_request' && format('origin/{0}', github.base_ref) || 'x'", "x"),
        ("!cancelled()", True),
        ("contains(fromJSON('[\"a\",\"b\"]'), 'B')", True),
        ("1 == '1'", True),
        ("github.event.pull_request.number", 5.0),
    ],
)
def test_expression_evaluator(expr, expected):
    ctx = {
        "inputs": {"force_retrain": True, "no_download": False, "traffic": "0.25"},
        "steps": {"train": {"outputs": {"promoted": "true"}}},
        "github": {"event_name": "push", "base_ref": "", "event": {"pull_request": {"number": 5.0}}},
    }
    assert evaluate(expr, ctx) == expected


def test_interpolation_and_conditions():
    ctx = {"github": {"run_id": "12"}, "steps": {"m": {"outputs": {"drift": "false"}}}}
    assert interpolate("run ${{ github.run_id }} done", ctx) == "run 12 done"
    assert step_condition("steps.m.outputs.drift == 'true'", ctx, {"failed": False, "cancelled": False}) is False
    assert step_condition(None, ctx, {"failed": True, "cancelled": False}) is False
    assert step_condition("${{ !cancelled() }}", ctx, {"failed": True, "cancelled": False}) is True
    assert step_condition("failure() && true", ctx, {"failed": True, "cancelled": False}) is True
    with pytest.raises(HarnessError, match="unknown context 'secret'"):
        evaluate("secret.X", ctx)


def test_env_file_parser_reads_heredocs(tmp_path):
    path = tmp_path / "out"
    path.write_text("a=1\nbody<<EOF_X\nline 1\nline=2\nEOF_X\nb=x=y\n")
    assert parse_env_file(path) == {"a": "1", "body": "line 1\nline=2", "b": "x=y"}
    path.write_text("c<<END\nnever closed\n")
    with pytest.raises(HarnessError, match="never ends"):
        parse_env_file(path)
