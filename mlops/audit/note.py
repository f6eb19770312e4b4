"""C2SP signed notes (https://c2sp.org/signed-note), their keys, and tlog-checkpoint bodies.

A note is text ending in a newline, a blank line, then signature lines "— <key name> <base64(key ID || sig)>".
Keys are Ed25519: type 0x01 signs notes (the log's key), type 0x04 signs timestamped cosignatures
(c2sp.org/tlog-cosignature, a witness's key). A verifier key ("vkey") is `<name>+<key ID hex>+<base64(type ||
public key)>`; a signer key is the same with `PRIVATE+KEY+` before it and the 32-byte seed in place of the key.
Key ID = the first 4 bytes of SHA-256(name || 0x0A || type || public key), big-endian.

Opening a note follows the spec: signatures by keys the caller does not know are ignored, a known key's
signature that does not verify rejects the note, and a note none of whose known-key signatures verifies is
rejected. Repeated lines count once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from mlops.errors import BadInput, CheckFailed

ALG_ED25519 = 0x01
ALG_COSIGNATURE = 0x04
DASH = "\u2014"
MAX_SIGNATURES = 100
COSIGNATURE_HEADER = "cosignature/v1\n"
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_KEY_FIX = "use a key printed by `mlops audit keygen` (name+keyid+base64)"


def b64decode(text: str) -> bytes:
    """Standard base64 (RFC 4648 §4) with padding; ValueError otherwise."""
    if not _B64.match(text) or len(text) % 4:
        raise ValueError(f"{text[:20]!r} is not padded standard base64")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_id(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public).digest()[:4]


def valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()


@dataclass(frozen=True)
class Verifier:
    """A public key a note signature is checked with: name, type (0x01 or 0x04), 32-byte Ed25519 key."""

    name: str
    alg: int
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.alg, self.public)

    def vkey(self) -> str:
        return f"{self.name}+{self.id.hex()}+{b64(bytes([self.alg]) + self.public)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes (type 0x01) or cosignatures (type 0x04)."""

    name: str
    alg: int
    seed: bytes

    def _key(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verifier(self) -> Verifier:
        from cryptography.hazmat.primitives import serialization

        raw = self._key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return Verifier(self.name, self.alg, raw)

    def skey(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id.hex()}+{b64(bytes([self.alg]) + self.seed)}"

    def sign(self, message: bytes) -> bytes:
        return self._key().sign(message)


def _split_key(text: str, where: str, private: bool) -> tuple[str, bytes, int, bytes]:
    """(name, key ID, type, key material) of a vkey or skey; BadInput naming `where` when malformed."""
    kind = "signer key" if private else "verifier key (vkey)"
    text = text.strip()
    if private:
        if not text.startswith("PRIVATE+KEY+"):
            raise BadInput(where, f"is not a {kind}: it does not start with PRIVATE+KEY+", _KEY_FIX)
        text = text[len("PRIVATE+KEY+") :]
    parts = text.split("+", 2)
    if len(parts) != 3 or not valid_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise BadInput(where, f"is not a {kind} <name>+<8 hex digits>+<base64>", _KEY_FIX)
    try:
        raw = b64decode(parts[2])
    except ValueError:
        raise BadInput(where, f"is not a {kind}: its key is not base64", _KEY_FIX) from None
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE):
        raise BadInput(where, f"is not an Ed25519 {kind} (type 0x01 or 0x04, 32-byte key)", _KEY_FIX)
    return parts[0], bytes.fromhex(parts[1]), raw[0], raw[1:]


def parse_vkey(text: str, where: str = "vkey") -> Verifier:
    name, kid, alg, public = _split_key(text, where, private=False)
    verifier = Verifier(name, alg, public)
    if verifier.id != kid:
        raise BadInput(where, f"key ID {kid.hex()} is not the one of its name and key ({verifier.id.hex()})", _KEY_FIX)
    return verifier


def parse_skey(text: str, where: str = "signer key") -> Signer:
    name, kid, alg, seed = _split_key(text, where, private=True)
    signer = Signer(name, alg, seed)
    if signer.verifier.id != kid:
        raise BadInput(where, "key ID does not match its name and key", _KEY_FIX)
    return signer


def generate(name: str, alg: int = ALG_ED25519) -> Signer:
    import os

    if not valid_name(name):
        raise BadInput("key name", f"{name!r} is empty or has a space or '+'", "use a schema-less URL")
    return Signer(name, alg, os.urandom(32))


# ---------------------------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class Signature:
    name: str
    id: bytes
    sig: bytes  # after the key ID

    def line(self) -> str:
        return f"{DASH} {self.name} {b64(self.id + self.sig)}\n"


@dataclass
class Note:
    text: str
    signatures: list[Signature]

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def malformed(where: str, why: str) -> BadInput:
    return BadInput(where, f"is not a signed note ({why})", "pass a note as c2sp.org/signed-note defines it")


def parse_note(data: str | bytes, where: str = "note") -> Note:
    """The text and signature lines of a note; BadInput when it is malformed or has no signature."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise malformed(where, "not UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in data):
        raise malformed(where, "a control character other than newline")
    if not data.endswith("\n"):
        raise malformed(where, "it does not end with a newline")
    cut = data.rfind("\n\n")
    if cut < 0:
        raise malformed(where, "it has no signatures: no blank line before signature lines")
    text, sig_lines = data[: cut + 1], data[cut + 2 :].split("\n")[:-1]
    if not sig_lines:
        raise malformed(where, "it has no signatures")
    if len(sig_lines) > MAX_SIGNATURES:
        raise malformed(where, f"over {MAX_SIGNATURES} signatures")
    sigs = []
    for line in sig_lines:
        m = re.fullmatch(DASH + r" (\S+) (\S+)", line)
        if not m or not valid_name(m.group(1)):
            raise malformed(where, f"bad signature line {line[:40]!r}")
        try:
            raw = b64decode(m.group(2))
        except ValueError:
            raise malformed(where, f"signature of {m.group(1)} is not base64") from None
        if len(raw) < 5:
            raise malformed(where, f"signature of {m.group(1)} is too short")
        sigs.append(Signature(m.group(1), raw[:4], raw[4:]))
    return Note(text, sigs)


def sign_note(text: str, signer: Signer) -> Signature:
    if signer.alg != ALG_ED25519:
        raise BadInput("signer key", "is a cosignature key (type 0x04), not a note key", "use the log's key")
    return Signature(signer.name, signer.verifier.id, signer.sign(text.encode("utf-8")))


def cosignature_message(body: str, timestamp: int) -> bytes:
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


def cosign_note(text: str, signer: Signer, timestamp: int) -> Signature:
    if signer.alg != ALG_COSIGNATURE:
        raise BadInput("witness key", "is not a cosignature key (type 0x04)", "create one with keygen --witness")
    stamp = timestamp.to_bytes(8, "big")
    return Signature(signer.name, signer.verifier.id, stamp + signer.sign(cosignature_message(text, timestamp)))


def check_signature(note: Note, sig: Signature, verifier: Verifier) -> bool:
    """Whether `sig` (already matched to `verifier` by name and key ID) verifies over the note's text."""
    if verifier.alg == ALG_ED25519:
        return verifier.verify(note.text.encode("utf-8"), sig.sig)
    if len(sig.sig) != 8 + 64:
        return False
    timestamp = int.from_bytes(sig.sig[:8], "big")
    return timestamp < 2**63 and verifier.verify(cosignature_message(note.text, timestamp), sig.sig[8:])


def open_note(note: Note, verifiers: list[Verifier], where: str = "note") -> list[Verifier]:
    """The known keys whose signatures verify; CheckFailed when one fails or none verifies.

    Lines by a key not in `verifiers` (name and key ID both matching) are ignored; repeats count once.
    """
    known = {(v.name, v.id): v for v in verifiers}
    good: dict[tuple[str, bytes], Verifier] = {}
    for sig in note.signatures:
        v = known.get((sig.name, sig.id))
        if v is None:
            continue
        if not check_signature(note, sig, v):
            raise CheckFailed(f"{where}: the signature of {sig.name}+{sig.id.hex()} does not verify")
        good[(v.name, v.id)] = v
    if not good:
        names = ", ".join(sorted({f"{s.name}+{s.id.hex()}" for s in note.signatures})) or "none"
        raise CheckFailed(f"{where}: no signature by a trusted key verifies (signed by: {names})")
    return list(good.values())


def cosignature_time(sig: Signature) -> int:
    return int.from_bytes(sig.sig[:8], "big")


# ---------------------------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        return "".join(line + "\n" for line in (self.origin, str(self.size), b64(self.root), *self.extensions))


def parse_checkpoint_body(text: str, where: str = "checkpoint") -> Checkpoint:
    """The origin, tree size and root of a c2sp.org/tlog-checkpoint note text; CheckFailed when it is not one."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not x for x in lines[:-1]):
        raise CheckFailed(f"{where}: is not a checkpoint (origin, size and root hash lines, each non-empty)")
    origin, size, root = lines[0], lines[1], lines[2]
    if not re.fullmatch(r"0|[1-9][0-9]*", size):
        raise CheckFailed(f"{where}: tree size {size[:24]!r} is not a decimal without leading zeroes")
    try:
        raw = b64decode(root)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CheckFailed(f"{where}: root hash {root[:48]!r} is not base64 of 32 bytes")
    return Checkpoint(origin, int(size), raw, tuple(lines[3:-1]))
