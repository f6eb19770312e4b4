"""C2SP signed notes, vkeys and checkpoints (mlops/audit/note.py): the published vectors, an independent
verifier written from the spec (tests/audit/spec_verifier.py), and every mutation of a note."""

from __future__ import annotations

import base64
import itertools

import pytest

from mlops.audit import note as notes
from mlops.errors import BadInput, CheckFailed
from tests.audit import spec_verifier as spec

# golang.org/x/mod/sumdb/note, note_test.go (the reference implementation's own vectors):
# https://cs.opensource.google/go/x/mod/+/refs/tags/v0.21.0:sumdb/note/note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

# A real checkpoint of Go's checksum database (tlog-checkpoint body, origin line "go.sum database tree"), from
# https://github.com/google/trillian-examples/blob/master/gossip/client/client_test.go; its key is the one
# cmd/go ships: https://github.com/golang/go/blob/master/src/cmd/go/internal/modfetch/key.go
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n13485\n/ZWur4obeiqK+ASdnPK+/Rmz6LPQMUeSmHh0+UkL54Y=\n\n"
    "— sum.golang.org Az3grnQReYTvpCrRxT+w50vixbqBlB/aPS8bL8f8KW4HHP+UjLSXOJgCh4f54n8hO6lrESglzyRXMXnhaWzaeY3zqw8=\n"
)

# https://c2sp.org/signed-note (the example at the top; the spec publishes no public key for it)
C2SP_NOTE = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwa"
    "qP3ZekRwNtIc=\n"
)
# https://c2sp.org/tlog-checkpoint and https://c2sp.org/tlog-cosignature (the cosigned example)
C2SP_CHECKPOINT_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
C2SP_COSIGNED = (
    C2SP_CHECKPOINT_BODY + "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE"
    "+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+"
    "mbIUBkBIfZ+qnA==\n"
)
# tlog-cosignature's "Ed25519 signed message" example, for timestamp 1679315147
C2SP_COSIGNED_MESSAGE = "cosignature/v1\ntime 1679315147\n" + C2SP_CHECKPOINT_BODY


def test_the_go_reference_vectors_verify_and_signing_reproduces_the_published_note():
    peter, enoch = notes.parse_vkey(PETER_VKEY), notes.parse_vkey(ENOCH_VKEY)
    assert (peter.name, peter.id.hex(), peter.vkey()) == ("PeterNeumann", "c74f20a3", PETER_VKEY)
    signer = notes.parse_skey(PETER_SKEY)
    assert signer.verifier == peter and signer.skey() == PETER_SKEY
    assert (
        notes.Note(GO_TEXT, [notes.sign_note(GO_TEXT, signer)]).render() == GO_TEXT + "\n" + PETER_SIG
    )  # Ed25519 is deterministic
    both = notes.parse_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert both.text == GO_TEXT
    assert notes.open_note(both, [peter]) == [peter]  # Enoch's line: unknown key, ignored
    assert set(notes.open_note(both, [peter, enoch])) == {peter, enoch}
    with pytest.raises(CheckFailed, match="no signature by a trusted key"):
        notes.open_note(both, [])
    # and the independent verifier agrees
    assert spec.verify_note((GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [PETER_VKEY, ENOCH_VKEY])[1] == {
        "PeterNeumann",
        "EnochRoot",
    }


def test_the_go_vkey_manglings_are_refused_as_bad_input():
    b = PETER_VKEY
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        with pytest.raises(BadInput):
            notes.parse_vkey(mangled)
    for cut in (
        b[:-1],
        b[1:],
        b[: b.rindex("+")],
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    ):
        with pytest.raises(BadInput):
            notes.parse_vkey(cut)
    with pytest.raises(BadInput, match="is not an Ed25519 verifier key"):  # unknown algorithm, adjusted key hash
        notes.parse_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_a_real_go_checksum_database_checkpoint_verifies():
    sumdb = notes.parse_vkey(SUMDB_VKEY)
    note = notes.parse_note(SUMDB_NOTE)
    assert notes.open_note(note, [sumdb]) == [sumdb]
    ck = notes.parse_checkpoint_body(note.text)
    assert (ck.origin, ck.size, ck.root) == (
        "go.sum database tree",
        13485,
        base64.b64decode("/ZWur4obeiqK+ASdnPK+/Rmz6LPQMUeSmHh0+UkL54Y="),
    )
    assert spec.parse_checkpoint(spec.verify_note(SUMDB_NOTE.encode(), [SUMDB_VKEY])[0])[1] == 13485
    tampered = notes.parse_note(SUMDB_NOTE.replace("13485", "13486"))
    with pytest.raises(CheckFailed, match="does not verify"):
        notes.open_note(tampered, [sumdb])


def test_the_c2sp_spec_examples_parse_and_are_not_trusted_without_their_keys():
    # signed-note: the text keeps its inner empty line; the signature is key ID + 64 bytes
    note = notes.parse_note(C2SP_NOTE)
    assert note.text == "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    assert [(s.name, len(s.sig)) for s in note.signatures] == [("quasimodo.example/salvatore", 64)]
    # tlog-checkpoint + tlog-cosignature: origin, size, root; the witness line is a timestamped signature
    cosigned = notes.parse_note(C2SP_COSIGNED)
    ck = notes.parse_checkpoint_body(cosigned.text)
    assert (ck.origin, ck.size, len(ck.root)) == ("example.com/behind-the-sofa", 20852163, 32)
    log_sig, witness_sig = cosigned.signatures
    assert log_sig.id.hex() == "033de0ae" and len(log_sig.sig) == 64
    assert witness_sig.name == "witness.example.com/w1" and len(witness_sig.sig) == 8 + 64
    assert notes.cosignature_time(witness_sig) == 1679315147  # the time the spec's signed-message example shows
    assert notes.cosignature_message(cosigned.text, 1679315147) == C2SP_COSIGNED_MESSAGE.encode()
    # Their keys are not published: a verifier that does not know them must not trust them.
    for text in (C2SP_NOTE, C2SP_COSIGNED):
        with pytest.raises(CheckFailed, match="no signature by a trusted key"):
            notes.open_note(notes.parse_note(text), [notes.parse_vkey(PETER_VKEY)])
        with pytest.raises(spec.SpecError):
            spec.verify_note(text.encode(), [PETER_VKEY])


def test_the_tlog_proof_spec_example_layout_parses():
    from mlops.audit import tlog_proof

    signer = notes.generate("example.com/fancylog")
    body = "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
    head = (  # https://c2sp.org/tlog-proof: the example, with its elided signatures replaced by a real one
        "c2sp.org/tlog-proof@v1\nextra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\nindex 73894\n"
        "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\nB95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
        "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\nRoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
        "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n\n"
    )
    bundle = tlog_proof.parse(head + notes.Note(body, [notes.sign_note(body, signer)]).render(), "example")
    assert (bundle.index, len(bundle.hashes), bundle.checkpoint.size) == (73894, 5, 109482)
    assert bundle.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")


def _log_note(signer: notes.Signer, size: int = 5) -> str:
    body = notes.Checkpoint(signer.name, size, bytes(range(32))).body()
    return notes.Note(body, [notes.sign_note(body, signer)]).render()


def _open(text: str, verifiers: list[notes.Verifier]) -> None:
    notes.open_note(notes.parse_note(text), verifiers)


def test_the_projects_notes_verify_with_the_independent_verifier_and_every_mutation_is_rejected():
    log = notes.generate("example.com/mlops/audit")
    vkey = log.verifier.vkey()
    good = _log_note(log)
    text, names = spec.verify_note(good.encode(), [vkey])
    assert names == {log.name} and spec.parse_checkpoint(text) == (log.name, 5, bytes(range(32)))
    _open(good, [log.verifier])
    b64root = notes.b64(bytes(range(32)))
    sig_b64 = good.rstrip("\n").rsplit(" ", 1)[1]
    raw = bytearray(base64.b64decode(sig_b64))
    stranger = notes.generate(log.name)  # same name, another key: an unknown key
    body = good.split("\n\n")[0] + "\n"
    mutations = {
        "origin": good.replace("example.com/mlops/audit\n5", "example.com/mlops/audiT\n5", 1),
        "size": good.replace("\n5\n", "\n6\n", 1),
        "root": good.replace(b64root, notes.b64(bytes(range(1, 33))), 1),
        "key name": good.replace(f"— {log.name} ", "— example.com/other ", 1),
        "unknown key": notes.Note(body, [notes.sign_note(body, stranger)]).render(),
    }
    for i in (0, 3, 4, 40, len(raw) - 1):  # a byte of the key ID, of R, of S
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        mutations[f"signature byte {i}"] = good.replace(sig_b64, base64.b64encode(bytes(flipped)).decode())
    for what, text in mutations.items():
        with pytest.raises(CheckFailed):
            _open(text, [log.verifier])
        with pytest.raises(spec.SpecError):
            spec.verify_note(text.encode(), [vkey])
        assert what


def test_unknown_keys_are_ignored_and_reordering_or_repeating_lines_never_makes_a_note_trusted():
    log, stranger = notes.generate("example.com/log"), notes.generate("example.com/log")
    witness = notes.generate("witness.example/w", notes.ALG_COSIGNATURE)
    body = notes.Checkpoint(log.name, 9, bytes(32)).body()
    mine, theirs = notes.sign_note(body, log), notes.sign_note(body, stranger)
    cosig = notes.cosign_note(body, witness, 1_700_000_000)
    # An unknown key's line beside the log's: ignored, the note verifies by the log's signature alone.
    for lines in itertools.permutations([mine, theirs, cosig]):
        assert notes.open_note(notes.Note(body, list(lines)), [log.verifier]) == [log.verifier]
    # Only unknown or untrusted lines, in any order, repeated: never trusted.
    for n in range(1, 4):
        for lines in itertools.product([theirs, cosig], repeat=n):
            for verifiers in ([log.verifier], []):
                with pytest.raises(CheckFailed):
                    notes.open_note(notes.Note(body, list(lines)), verifiers)
                with pytest.raises(spec.SpecError):
                    spec.verify_note(notes.Note(body, list(lines)).render().encode(), [v.vkey() for v in verifiers])
    # Repeating the log's own line adds nothing, and a witness key is checked as a cosignature, not as a note key.
    assert notes.open_note(notes.Note(body, [mine, mine, theirs]), [log.verifier]) == [log.verifier]
    assert notes.open_note(notes.Note(body, [cosig]), [witness.verifier]) == [witness.verifier]
    assert spec.verify_note(notes.Note(body, [theirs, cosig]).render().encode(), [witness.verifier.vkey()])[1] == {
        witness.name
    }
    forged = notes.Signature(witness.name, witness.verifier.id, mine.sig[:8] + mine.sig)  # wrong message
    with pytest.raises(CheckFailed, match="does not verify"):
        notes.open_note(notes.Note(body, [forged]), [witness.verifier])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("origin\n1\n" + notes.b64(bytes(32)) + "\n", "no blank line"),
        ("origin\n1\n" + notes.b64(bytes(32)) + "\n\n", "it has no signatures"),
        (GO_TEXT + "\n" + PETER_SIG[:-1], "does not end with a newline"),
        ("\x01" + GO_TEXT + "\n" + PETER_SIG, "control character"),
        (
            GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
            "bad signature line",
        ),
        (GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n", "bad signature line"),
        (GO_TEXT + "\n" + PETER_SIG * 101, "over 100 signatures"),
    ],
)
def test_malformed_notes_are_bad_input(text, why):
    with pytest.raises(BadInput, match=why):
        notes.parse_note(text, "n")
