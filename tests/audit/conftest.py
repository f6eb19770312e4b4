"""Fixtures of the audit tests."""

from __future__ import annotations

import pytest

from mlops import audit
from tests.audit.support import cli


@pytest.fixture
def signed(repo, monkeypatch, capsys):
    rc, out, _ = cli(repo, "keygen", capsys=capsys)
    assert rc == 0 and (repo / "metadata/audit/checkpoint-key.pub").read_text().startswith("-----BEGIN PUBLIC KEY")
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, out.strip())
    return repo
