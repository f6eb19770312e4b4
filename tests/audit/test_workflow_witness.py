"""The optional witness step of the workflows that commit state back (.github/workflows/*.yml, docs/audit.md):
just before each `scripts/commit-state`, off unless the repository variable MLOPS_AUDIT_WITNESS_URL is set,
never stopping the commit."""

from __future__ import annotations

from tests.support.workflow_harness import all_workflows, step_condition

ASK = 'mlops audit ask-witness --url "$WITNESS_URL" --witness "$WITNESS_VKEY"'


def _commit_jobs():
    for wf in all_workflows():
        for name in wf.jobs():
            steps = wf.steps(name)
            commits = [i for i, s in enumerate(steps) if s.get("run", "").startswith("scripts/commit-state ")]
            if commits:
                yield wf, name, steps, commits


def test_every_state_commit_is_preceded_by_the_optional_witness_step():
    seen = 0
    for wf, name, steps, commits in _commit_jobs():
        for i in commits:
            ask = steps[i - 1]
            where = f"{wf.path.name}/{name}: before {steps[i].get('name')}"
            assert ask.get("run") == ASK, where
            assert ask["env"] == {
                "WITNESS_URL": "${{ vars.MLOPS_AUDIT_WITNESS_URL }}",
                "WITNESS_VKEY": "${{ vars.MLOPS_AUDIT_WITNESS_VKEY }}",
            }, where
            assert ask.get("continue-on-error") is True, where  # a refusal is reported, the state still committed
            assert "MLOPS_AUDIT_SIGNING_KEY" not in ask["env"] and "secrets." not in str(ask), where
            seen += 1
    assert seen >= 4


def test_the_witness_step_is_off_by_default_and_on_when_the_variable_is_set():
    for wf, _name, steps, commits in _commit_jobs():
        ask = steps[commits[0] - 1]
        ok, failed = {"failed": False, "cancelled": False}, {"failed": True, "cancelled": False}
        assert step_condition(ask["if"], {"vars": {}}, ok) is False, wf.path.name
        on = {"vars": {"MLOPS_AUDIT_WITNESS_URL": "https://witness.example/w"}}
        assert step_condition(ask["if"], on, ok) is True, wf.path.name
        assert step_condition(ask["if"], on, failed) is True, wf.path.name  # also after a failed step, like the commit
        cancelled = {"failed": False, "cancelled": True}
        assert step_condition(ask["if"], on, cancelled) is False, wf.path.name
