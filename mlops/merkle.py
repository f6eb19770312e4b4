"""RFC 9162 §2.1 Merkle tree: hashing, an append-only tree of complete subtrees, proofs and their verification.

The hashing is domain-separated (leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right)) and an
odd node is never duplicated; the tree of n leaves splits at the largest power of two below n. That is what
stops the CVE-2012-2459 shape in which [a, b, c] and [a, b, c, c] share a root (issue 3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof, root or size that does not verify; the message says which check failed."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """Append-only tree that stores every complete subtree hash, level by level.

    Level L holds the hashes of the aligned subtrees of 2**L leaves (32 bytes each, packed in one bytearray),
    so extending it costs one leaf hash plus on average one node hash per entry, and the root, an inclusion
    proof or a consistency proof for any size up to the current one costs O(log n) hashes. `mlops audit verify`
    and the proofs build one from the whole log; a writer, which needs only the next root, keeps the compact
    range instead (append_to_peaks below).
    """

    __slots__ = ("_levels", "size")

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.size = 0

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MerkleTree:
        tree = cls()
        tree.extend_leaf_hashes(list(hashes))
        return tree

    def extend(self, entries: Iterable[bytes]) -> None:
        """Append entries (each hashed as a leaf); each level's new nodes are hashed in one pass."""
        self.extend_leaf_hashes([_sha256(b"\x00" + e).digest() for e in entries])

    def extend_leaf_hashes(self, hashes: list[bytes]) -> None:
        """Append already computed leaf hashes."""
        if not hashes:
            return
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")
        old, new = self.size, self.size + len(hashes)
        levels = self._levels
        levels[0] += b"".join(hashes)
        level = 0
        while (new >> (level + 1)) > (old >> (level + 1)):
            first, last = old >> (level + 1), new >> (level + 1)
            below = bytes(levels[level][first * 64 : last * 64])
            prefix = b"\x01"
            parents = b"".join([_sha256(prefix + below[i : i + 64]).digest() for i in range(0, len(below), 64)])
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parents
        self.size = new

    def leaf(self, index: int) -> bytes:
        """The leaf hash at index."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} outside a tree of size {self.size}")
        return bytes(self._levels[0][index * 32 : index * 32 + 32])

    def _node(self, level: int, index: int) -> bytes:
        return bytes(self._levels[level][index * 32 : index * 32 + 32])

    def peaks(self, size: int | None = None) -> list[bytes]:
        """The complete-subtree hashes that make up the tree of `size` leaves, left to right (its compact range)."""
        size = self.size if size is None else self._check_size(size)
        out, offset = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append(self._node(level, offset >> level))
                offset += 1 << level
        return out

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all)."""
        size = self.size if size is None else self._check_size(size)
        return root_from_peaks(self.peaks(size))

    def _check_size(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} outside 0..{self.size}")
        return size

    def _range(self, lo: int, hi: int, memo: dict[tuple[int, int], bytes]) -> bytes:
        """MTH(D[lo:hi]) for a range the RFC recursion produces (lo aligned to the range's top split)."""
        width = hi - lo
        if width & (width - 1) == 0 and lo % width == 0:
            return self._node(width.bit_length() - 1, lo // width)
        key = (lo, hi)
        got = memo.get(key)
        if got is None:
            k = _split(width)
            # Right-hand ranges of one proof are nested suffixes; the memo keeps the total O(log n).
            got = node_hash(self._range(lo, lo + k, memo), self._range(lo + k, hi, memo))
            memo[key] = got
        return got

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf to root."""
        size = self.size if size is None else self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} outside a tree of size {size}")
        memo: dict[tuple[int, int], bytes] = {}
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self._range(lo + k, hi, memo))
                hi = lo + k
            else:
                path.append(self._range(lo, lo + k, memo))
                lo = lo + k
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """PROOF(first, D[0:second]) of RFC 9162 §2.1.4.1 (empty when first is 0 or equals second)."""
        second = self.size if second is None else self._check_size(second)
        if not 0 <= first <= second:
            raise ValueError(f"first size {first} outside 0..{second}")
        if first == 0 or first == second:
            return []
        memo: dict[tuple[int, int], bytes] = {}
        path: list[bytes] = []
        lo, hi, m, complete = 0, second, first, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                path.append(self._range(lo + k, hi, memo))
                hi = lo + k
            else:
                path.append(self._range(lo, lo + k, memo))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            path.append(self._range(lo, hi, memo))
        path.reverse()
        return path


def root_from_peaks(peaks: Sequence[bytes]) -> bytes:
    """Fold a compact range (left to right complete subtrees) into the tree's root."""
    if not peaks:
        return EMPTY_ROOT
    acc = peaks[-1]
    for peak in reversed(peaks[:-1]):
        acc = node_hash(peak, acc)
    return acc


def append_to_peaks(peaks: Sequence[bytes], size: int, digest: bytes) -> tuple[list[bytes], int]:
    """Add one leaf hash to the compact range of a tree of `size` leaves; returns the new range and size.

    The compact range holds one complete-subtree hash per 1-bit of the size, largest first. Appending a leaf
    merges the trailing subtrees of equal width, one per trailing 1-bit of the old size (the binary carry).
    """
    if len(peaks) != size.bit_count():
        raise ValueError(f"a tree of size {size} has {size.bit_count()} peaks, got {len(peaks)}")
    out = [*peaks, digest]
    n = size + 1
    while not n & 1:
        right = out.pop()
        out[-1] = node_hash(out[-1], right)
        n >>= 1
    return out, size + 1


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ProofError(f"{name} must be a {HASH_SIZE}-byte hash, got {size}")


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check an inclusion proof as RFC 9162 §2.1.3.2 specifies; raises ProofError when it does not verify."""
    _check_hash("leaf hash", leaf)
    _check_hash("root", root)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is not inside a tree of size {tree_size}")
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("proof is longer than the path from leaf to root")
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path from leaf to root")
    if r != root:
        raise ProofError("computed root does not match the expected root")


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes) -> None:
    """Check a consistency proof as RFC 9162 §2.1.4.2 specifies; raises ProofError when it does not verify."""
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if first < 0 or second < first:
        raise ProofError(f"a tree of size {second} cannot extend one of size {first}")
    if first == second:
        if proof:
            raise ProofError("trees of equal size need an empty proof")
        if first_root != second_root:
            raise ProofError("trees of equal size have different roots")
        return
    if first == 0:
        # RFC 9162 defines the proof only for 0 < first < second, and an empty proof from size 0 would accept any
        # pair of roots; transparency-dev/merkle made this an error too (#140). A caller comparing with an empty
        # log has nothing to prove and should not ask.
        raise ProofError("a consistency proof from the empty tree proves nothing")
    _check_hash("first root", first_root)
    _check_hash("second root", second_root)
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than the path between the two trees")
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path between the two trees")
    if fr != first_root:
        raise ProofError("proof does not reproduce the first root")
    if sr != second_root:
        raise ProofError("proof does not reproduce the second root")
