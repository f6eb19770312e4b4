"""`mlops audit prove` writes C2SP tlog-proof bundles, `check-proof` reads them (mlops/audit/tlog_proof.py)."""

from __future__ import annotations

import base64

from mlops import audit
from mlops.audit import note as notes
from tests.audit import spec_verifier as spec
from tests.audit.support import cli, lines, logged
from tests.support.repo import make_repo, tree_snapshot


def _prove(repo, tmp_path, capsys, seq=3):
    path = tmp_path / "entry.tlog-proof"
    rc, out, err = cli(repo, "prove", "--seq", str(seq), "-o", str(path), capsys=capsys)
    assert rc == 0, err
    return path


def test_prove_writes_a_tlog_proof_that_check_proof_and_the_spec_verifier_accept(signed, tmp_path, capsys):
    repo = signed
    logged(repo, 7)
    path = _prove(repo, tmp_path, capsys)
    text = path.read_text()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ") and "\nindex 3\n" in text
    vkey = (repo / "metadata/audit/checkpoint.vkey").read_text()
    origin, index, extra = spec.verify_tlog_proof(text.encode(), vkey)
    assert (origin, index, extra) == ("localhost/repo/audit", 3, lines(repo)[3])
    rc, out, _ = cli(repo, "check-proof", str(path), capsys=capsys)
    assert rc == 0 and "proof ok: entry seq 3 is in localhost/repo/audit at size 7" in out
    assert "log signature: valid (localhost/repo/audit+" in out and "matches checkpoint #6" in out
    # offline, with only the vkey, outside the checkout
    elsewhere = make_repo(tmp_path / "elsewhere")
    rc, out, _ = cli(elsewhere, "check-proof", str(path), "--log-key", vkey.strip(), capsys=capsys)
    assert rc == 0 and "log signature: valid" in out and "not compared with a log" in out


def test_a_cosigned_checkpoint_travels_in_the_proof(signed, tmp_path, capsys):
    logged(signed, 4)
    private, wvkey = audit.witness_keygen("witness.example/w1")
    assert cli(signed, "cosign", "--key", private, "--state", str(tmp_path / "st"), capsys=capsys)[0] == 0
    text = _prove(signed, tmp_path, capsys, seq=1).read_bytes()
    note = text.split(b"\n\n", 1)[1]
    vkey = (signed / "metadata/audit/checkpoint.vkey").read_text()
    assert spec.verify_note(note, [vkey, wvkey])[1] == {"localhost/repo/audit", "witness.example/w1"}


def test_every_mutation_of_a_tlog_proof_fails(signed, tmp_path, capsys):
    logged(signed, 7)
    good = _prove(signed, tmp_path, capsys).read_text()
    head, note = good.split("\n\n", 1)
    extra = head.split("\n")[1][len("extra ") :]
    entry = base64.b64decode(extra)
    hashes = head.split("\n")[3:]
    other = base64.b64encode(entry.replace(b'"m3"', b'"m4"')).decode()
    flipped = notes.b64(bytes([base64.b64decode(hashes[0])[0] ^ 1]) + base64.b64decode(hashes[0])[1:])
    for mutated, message in [
        (good.replace(extra, other), "entry seq 3 is not included"),
        (good.replace("\nindex 3\n", "\nindex 4\n"), "has seq 3 where seq 4 belongs"),
        (good.replace(hashes[0], flipped), "is not included"),
        (good.replace(hashes[0] + "\n", ""), "is not included"),
        (good.replace("\n7\n", "\n8\n"), "does not verify"),
    ]:
        path = tmp_path / "bad.tlog-proof"
        path.write_text(mutated)
        rc, _, err = cli(signed, "check-proof", str(path), capsys=capsys)
        assert rc == 1 and message in err, (message, err)
        assert err.count("\n") == 1
    assert note


def test_bad_proof_input_is_one_line_exit_2(signed, tmp_path, capsys, monkeypatch):
    logged(signed, 3)
    good = _prove(signed, tmp_path, capsys, seq=1).read_text()
    other_log = notes.generate("example.com/another/audit").verifier.vkey()
    unsigned = good.split("\n\n")[0] + "\n\n" + good.split("\n\n")[1] + "\n\n"
    cases = [
        (good, ["--log-key", other_log], "is a proof for the log 'localhost/repo/audit', not for 'example.com/another"),
        (unsigned, [], "is not a signed note (it has no signatures)"),
        (good.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"), [], "is not a c2sp.org/tlog-proof@v1 proof"),
        (good.replace("\nindex 1\n", "\nindex 01\n"), [], "has no `index N` line"),
        (good, ["--log-key", "junk+1+AA=="], "--log-key: is not a verifier key (vkey)"),
    ]
    for text, args, message in cases:
        path = tmp_path / "in.tlog-proof"
        path.write_text(text)
        before = tree_snapshot(signed)
        rc, out, err = cli(signed, "check-proof", str(path), *args, capsys=capsys)
        assert (rc, out, err.count("\n")) == (2, "", 1) and message in err, (message, err)
        assert tree_snapshot(signed) == before
    # An unsigned log cannot make a tlog-proof (it needs a signed checkpoint): one line, naming the fix.
    unsigned_repo = make_repo(tmp_path / "unsigned")
    monkeypatch.delenv(audit.SIGNING_KEY_ENV)
    logged(unsigned_repo, 2)
    rc, _, err = cli(unsigned_repo, "prove", "--seq", "0", capsys=capsys)
    assert rc == 2 and "tlog-proof needs the newest checkpoint to be a signed C2SP note" in err
    assert "pass --format json" in err
