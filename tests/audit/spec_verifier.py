"""An independent verifier of C2SP signed notes, checkpoints, cosignatures and tlog-proofs, written from the
specification texts for the tests. It deliberately imports nothing from mlops/: it checks the project's output
against the spec, not against itself.

  https://c2sp.org/signed-note        (note format, key IDs, Ed25519 type 0x01)
  https://c2sp.org/tlog-checkpoint    (origin, size, base64 root)
  https://c2sp.org/tlog-cosignature   (type 0x04: u64 timestamp || Ed25519 over "cosignature/v1\\ntime T\\n" + body)
  https://c2sp.org/tlog-proof         (header, optional extra, index, hashes, blank line, checkpoint)
  RFC 9162 §2.1.3.2                   (inclusion proof verification)
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class SpecError(Exception):
    pass


def vkey_parts(vkey: str) -> tuple[str, int, int, bytes]:
    """(name, key ID as uint32, signature type, 32-byte public key) of `<name>+<hex id>+<base64(type||key)>`."""
    name, hex_id, b64key = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64key, validate=True)
    if len(raw) != 33 or len(hex_id) != 8:
        raise SpecError("bad vkey")
    kid = int.from_bytes(hashlib.sha256(name.encode() + b"\x0a" + raw[:1] + raw[1:]).digest()[:4], "big")
    if kid != int(hex_id, 16):
        raise SpecError("vkey id mismatch")
    return name, kid, raw[0], raw[1:]


def split_note(note: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Text (with its final newline) and (key name, base64-decoded signature) pairs."""
    text = note.decode("utf-8")
    if any(ord(c) < 0x20 and c != "\n" for c in text) or not text.endswith("\n"):
        raise SpecError("malformed")
    idx = text.rfind("\n\n")
    if idx < 0:
        raise SpecError("no signatures")
    body, sigs = text[: idx + 1], text[idx + 2 :]
    lines = sigs.split("\n")[:-1]
    if not lines:
        raise SpecError("no signatures")
    out = []
    for line in lines:
        if not line.startswith("\u2014 "):
            raise SpecError("bad signature line")
        name, _, b64sig = line[2:].partition(" ")
        if not name or " " in b64sig or "+" in name:
            raise SpecError("bad signature line")
        out.append((name, base64.b64decode(b64sig, validate=True)))
    return body.encode("utf-8"), out


def verify_note(note: bytes, vkeys: list[str]) -> tuple[bytes, set[str]]:
    """(text, names of keys whose signatures verified); SpecError when a known key's signature fails or none
    verifies. Signatures whose (name, key ID) match no vkey are ignored."""
    text, sigs = split_note(note)
    keys = {}
    for v in vkeys:
        name, kid, alg, pub = vkey_parts(v)
        keys[(name, kid)] = (alg, pub)
    ok = set()
    for name, sig in sigs:
        kid = int.from_bytes(sig[:4], "big")
        if (name, kid) not in keys:
            continue
        alg, pub = keys[(name, kid)]
        if alg == 0x01:
            message, signature = text, sig[4:]
        elif alg == 0x04:
            if len(sig) != 4 + 8 + 64:
                raise SpecError("bad cosignature length")
            ts = int.from_bytes(sig[4:12], "big")
            message, signature = b"cosignature/v1\ntime " + str(ts).encode() + b"\n" + text, sig[12:]
        else:
            raise SpecError("unsupported type")
        try:
            Ed25519PublicKey.from_public_bytes(pub).verify(signature, message)
        except InvalidSignature:
            raise SpecError(f"bad signature by {name}") from None
        ok.add(name)
    if not ok:
        raise SpecError("no verifiable signature")
    return text, ok


def parse_checkpoint(text: bytes) -> tuple[str, int, bytes]:
    lines = text.decode().split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise SpecError("not a checkpoint")
    if lines[1] != str(int(lines[1])):
        raise SpecError("size has leading zeroes")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise SpecError("root is not 32 bytes")
    return lines[0], int(lines[1]), root


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_root(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size:
        raise SpecError("index beyond size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise SpecError("proof too long")
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise SpecError("proof too short")
    return r


def verify_tlog_proof(bundle: bytes, log_vkey: str) -> tuple[str, int, bytes]:
    """(origin, index, extra) of a valid tlog-proof whose leaf is SHA-256(0x00 || extra)."""
    head, sep, note = bundle.partition(b"\n\n")
    lines = head.decode().split("\n")
    if not sep or lines[0] != "c2sp.org/tlog-proof@v1":
        raise SpecError("not a tlog-proof")
    i, extra = 1, b""
    if lines[1].startswith("extra "):
        extra, i = base64.b64decode(lines[1][6:], validate=True), 2
    if not lines[i].startswith("index "):
        raise SpecError("no index")
    index = int(lines[i][6:])
    path = [base64.b64decode(x, validate=True) for x in lines[i + 1 :]]
    text, _ = verify_note(note, [log_vkey])
    origin, size, root = parse_checkpoint(text)
    if origin != vkey_parts(log_vkey)[0]:
        raise SpecError("origin is not the log key's name")
    if inclusion_root(index, size, hashlib.sha256(b"\x00" + extra).digest(), path) != root:
        raise SpecError("inclusion proof does not lead to the root")
    return origin, index, extra
