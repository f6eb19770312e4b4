"""Witnesses (mlops/audit/witness.py): cosign an extension, refuse a fork or a smaller tree, and
`verify --witness VKEY --min-witnesses N` on the newest checkpoint."""

from __future__ import annotations

import shutil

from mlops import audit
from mlops.repo import Repo
from tests.audit import spec_verifier as spec
from tests.audit.support import cli, lines, logged
from tests.support.repo import make_repo, tree_snapshot

CHECKPOINT = "metadata/audit/checkpoint"


def _witness(tmp_path, name="witness.example/w1"):
    private, vkey = audit.witness_keygen(name)
    key_file = tmp_path / f"{name.replace('/', '_')}.key"
    key_file.write_text(private + "\n")
    return str(key_file), vkey


def test_a_witness_cosigns_extensions_and_verify_requires_its_cosignature(signed, tmp_path, capsys):
    repo, state = signed, tmp_path / "w1-state"
    key, vkey = _witness(tmp_path)
    logged(repo, 3)
    rc, _, err = cli(repo, "verify", "--witness", vkey, "--min-witnesses", "1", capsys=capsys)
    assert rc == 1 and f"{CHECKPOINT}: does not exist: no witness has cosigned the newest checkpoint (size 3)" in err
    rc, out, err = cli(repo, "cosign", "--key", key, "--state", str(state), capsys=capsys)
    assert rc == 0 and "cosigned localhost/repo/audit size 3 as witness.example/w1+" in out and "first sight" in out
    rc, out, _ = cli(repo, "verify", "--witness", vkey, "--min-witnesses", "1", capsys=capsys)
    assert rc == 0 and "cosigned by 1 witnesses (witness.example/w1)" in out
    # The file is a standard cosigned checkpoint: the spec verifier checks the log's signature and the witness's.
    log_vkey = (repo / "metadata/audit/checkpoint.vkey").read_text()
    text, names = spec.verify_note((repo / CHECKPOINT).read_bytes(), [log_vkey, vkey])
    assert names == {"localhost/repo/audit", "witness.example/w1"} and spec.parse_checkpoint(text)[1] == 3
    # A new event: the cosignature is for an older checkpoint, so the requirement fails until it cosigns again.
    logged(repo, 2)
    rc, _, err = cli(repo, "verify", "--witness", vkey, capsys=capsys)
    assert rc == 1 and "is cosigned checkpoint size 3, not the newest (size 5)" in err
    rc, out, _ = cli(repo, "cosign", "--key", key, "--state", str(state), capsys=capsys)
    assert rc == 0 and "size 5" in out and "extends size 3" in out
    assert cli(repo, "verify", "--witness", vkey, capsys=capsys)[0] == 0
    # Two witnesses required, one cosigned: fails, naming the count; the second cosigns: passes.
    key2, vkey2 = _witness(tmp_path, "witness.example/w2")
    rc, _, err = cli(repo, "verify", "--witness", vkey, "--witness", vkey2, "--min-witnesses", "2", capsys=capsys)
    assert rc == 1 and "1 of the required 2 witness cosignatures verify" in err
    assert cli(repo, "cosign", "--key", key2, "--state", str(tmp_path / "w2-state"), capsys=capsys)[0] == 0
    rc, out, _ = cli(repo, "verify", "--witness", vkey, "--witness", vkey2, "--min-witnesses", "2", capsys=capsys)
    assert rc == 0 and "cosigned by 2 witnesses" in out


def _same_log_key(fork, repo):
    """The owner's second log: same origin and key as `repo`, different history."""
    (fork / "metadata/audit").mkdir(parents=True)
    for name in ("checkpoint.vkey", "checkpoint-key.pub"):
        shutil.copy(repo / "metadata/audit" / name, fork / "metadata/audit" / name)


def test_a_witness_refuses_a_fork_a_smaller_tree_and_a_rewritten_history(signed, tmp_path, capsys, monkeypatch):
    repo, state = signed, tmp_path / "state"
    key, vkey = _witness(tmp_path)
    logged(repo, 4)
    assert cli(repo, "cosign", "--key", key, "--state", str(state), capsys=capsys)[0] == 0
    seen = {p.name: p.read_bytes() for p in state.iterdir()}
    monkeypatch.setenv(audit.ORIGIN_ENV, "localhost/repo/audit")
    cases = [
        (4, "size 4 has root", "a fork; refusing"),  # same size, other entries
        (2, "size 2 is smaller than the size 4 this witness cosigned", "rolled-back tree"),
        (6, "size 6 does not extend the size 4 this witness cosigned", "history was rewritten"),
    ]
    for n, message, tail in cases:
        fork = make_repo(tmp_path / f"fork{n}")
        _same_log_key(fork, repo)
        r = Repo.at(fork)
        for i in range(n):
            audit.record(r, "training_run", {"i": i, "model": "rewritten"})
        assert audit.verify(r).entries == n  # a valid, signed log on its own
        before = tree_snapshot(fork)
        rc, _, err = cli(fork, "cosign", "--key", key, "--state", str(state), capsys=capsys)
        assert rc == 1 and message in err and tail in err, err
        assert err.count("\n") == 1 and tree_snapshot(fork) == before
        assert {p.name: p.read_bytes() for p in state.iterdir()} == seen  # the witness remembers the honest head
    # The honest log extends: still cosigned.
    logged(repo, 1)
    assert cli(repo, "cosign", "--key", key, "--state", str(state), capsys=capsys)[0] == 0


def test_a_witness_refuses_a_checkpoint_not_signed_by_the_log_key_it_knows(signed, tmp_path, capsys, monkeypatch):
    repo, state = signed, tmp_path / "state"
    key, _ = _witness(tmp_path)
    logged(repo, 2)
    assert cli(repo, "cosign", "--key", key, "--state", str(state), capsys=capsys)[0] == 0
    # The owner re-keys (keygen --force) and re-signs: the witness knows the log by its first key.
    rc, new_key, _ = cli(repo, "keygen", "--force", capsys=capsys)
    monkeypatch.setenv(audit.SIGNING_KEY_ENV, new_key.strip())
    logged(repo, 1)
    rc, _, err = cli(repo, "cosign", "--key", key, "--state", str(state), capsys=capsys)
    assert rc == 1 and "but this witness knows it by localhost/repo/audit+" in err
    # And a log key that did not sign the checkpoint: the note has no trusted signature.
    other = audit.witness_keygen("x")  # a cosignature key is not a log key: bad input
    rc, _, err = cli(repo, "cosign", "--key", key, "--state", str(state), "--log-key", other[1], capsys=capsys)
    assert rc == 2 and "--log-key: is a witness key (type 0x04), not a log key" in err


def test_witness_bad_input_is_one_line_exit_2(signed, tmp_path, capsys, monkeypatch):
    logged(signed, 1)
    key, vkey = _witness(tmp_path)
    for args, message in [
        (["verify", "--witness", "not-a-vkey"], "--witness: is not a verifier key (vkey) <name>+<8 hex digits>"),
        (["verify", "--witness", vkey[:-2] + "AA"], "--witness: key ID"),
        (["verify", "--min-witnesses", "1"], "--min-witnesses: needs the witnesses' keys"),
        (["verify", "--witness", vkey, "--min-witnesses", "2"], "--min-witnesses: 2 is not between 1 and the 1"),
        (["cosign", "--key", "PRIVATE+KEY+x+00000000+AA==", "--state", str(tmp_path / "s")], "--key: is not"),
        (["cosign", "--state", str(tmp_path / "s")], "MLOPS_AUDIT_WITNESS_KEY: no witness key given"),
    ]:
        before = tree_snapshot(signed)
        rc, out, err = cli(signed, *args, capsys=capsys)
        assert (rc, out, err.count("\n")) == (2, "", 1) and message in err, (args, err)
        assert tree_snapshot(signed) == before
    # an unsigned log has no log key to cosign under
    repo = make_repo(tmp_path / "unsigned")
    monkeypatch.delenv(audit.SIGNING_KEY_ENV)
    logged(repo, 1)
    rc, _, err = cli(repo, "cosign", "--key", key, "--state", str(tmp_path / "s"), capsys=capsys)
    assert rc == 2 and "--log-key: not given and no checkpoint.vkey is committed" in err


class _TlogWitness:
    """A c2sp.org/tlog-witness `add-checkpoint` endpoint on loopback (port 0), built on witness.cosign()."""

    def __init__(self, state, signer, log_key):
        import http.server
        import threading

        from mlops.audit import note as notes
        from mlops.audit import witness
        from mlops.errors import BadInput, CheckFailed

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body, ctype="text/plain"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                text = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.requests.append(text)
                head, _, checkpoint = text.partition("\n\n")
                old, *proof = head.split("\n")
                try:
                    origin = notes.parse_checkpoint_body(notes.parse_note(checkpoint).text).origin
                    known = witness.read_state(state, origin)
                    if int(old.removeprefix("old ")) != (known["size"] if known else 0):
                        return self._reply(409, f"{known['size'] if known else 0}\n".encode(), "text/x.tlog.size")
                    hashes = [notes.b64decode(h) for h in proof]
                    done = witness.cosign(state, checkpoint, log_key, hashes, signer, 1_800_000_000)
                except (BadInput, CheckFailed) as exc:
                    return self._reply(409, str(exc).encode())
                self._reply(200, done.note.signatures[-1].line().encode())

        self.requests: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/witness"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_ask_witness_speaks_the_tlog_witness_protocol_and_a_fork_is_refused(signed, tmp_path, capsys, monkeypatch):
    from mlops.audit import note as notes

    repo = signed
    logged(repo, 3)
    private, vkey = audit.witness_keygen("witness.example/w1")
    log_key = notes.parse_vkey((repo / "metadata/audit/checkpoint.vkey").read_text())
    server = _TlogWitness(tmp_path / "state", notes.parse_skey(private), log_key)
    try:
        rc, out, err = cli(repo, "ask-witness", "--url", server.url, "--witness", vkey, capsys=capsys)
        assert rc == 0 and "witness.example/w1 cosigned localhost/repo/audit size 3" in out, err
        assert server.requests[0].startswith("old 0\n\nlocalhost/repo/audit\n3\n")
        assert cli(repo, "verify", "--witness", vkey, capsys=capsys)[0] == 0
        logged(repo, 2)
        rc, out, _ = cli(repo, "ask-witness", "--url", server.url, "--witness", vkey, capsys=capsys)
        # first "old 0", answered 409 with the size it cosigned (3), then "old 3" with the consistency proof
        assert rc == 0 and [r.split("\n")[0] for r in server.requests[1:]] == ["old 0", "old 3"]
        from mlops.merkle import MerkleTree

        tree = MerkleTree()
        tree.extend(lines(repo))
        sent = server.requests[2].split("\n\n")[0].split("\n")[1:]
        assert sent == [notes.b64(h) for h in tree.consistency_proof(3, 5)] and len(sent) == 4
        assert cli(repo, "verify", "--witness", vkey, capsys=capsys)[0] == 0
        # the owner's rewritten log, same key and origin, is refused by the witness
        monkeypatch.setenv(audit.ORIGIN_ENV, "localhost/repo/audit")
        fork = make_repo(tmp_path / "fork")
        _same_log_key(fork, repo)
        for i in range(6):
            audit.record(Repo.at(fork), "training_run", {"i": i, "model": "rewritten"})
        rc, _, err = cli(fork, "ask-witness", "--url", server.url, "--witness", vkey, capsys=capsys)
        assert (
            rc == 1
            and "the witness refused the checkpoint of size 6: HTTP 409" in err
            and "history was rewritten" in err
        )
        assert not (fork / CHECKPOINT).exists()
    finally:
        server.close()
    rc, _, err = cli(repo, "ask-witness", "--url", server.url, "--witness", vkey, "--timeout", "5", capsys=capsys)
    assert rc == 1 and "cannot reach the witness" in err
    rc, _, err = cli(repo, "ask-witness", "--url", "ftp://x", "--witness", vkey, capsys=capsys)
    assert rc == 2 and "--url: 'ftp://x' is not an http(s) URL" in err
