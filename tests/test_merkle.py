"""RFC 9162 tree: golden vectors of transparency-dev/merkle, proof mutation suite, property tests."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    append_to_peaks,
    leaf_hash,
    node_hash,
    root_from_peaks,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev/merkle testonly/constants.go: LeafInputs() and RootHashes() (RFC 6962 test vectors).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")] + [
    bytes.fromhex("606162636465666768696a6b6c6d6e6f")
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# transparency-dev/merkle proof/verify_test.go: inclusionProofs (1-based leaf) and consistencyProofs.
INCLUSION = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def reference_root(leaf_hashes: list[bytes]) -> bytes:
    """MTH(D[n]) computed by the RFC's recursive definition: the oracle the tree is compared against."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two below n
    return node_hash(reference_root(leaf_hashes[:k]), reference_root(leaf_hashes[k:]))


def golden_tree(n: int = 8) -> MerkleTree:
    tree = MerkleTree()
    for leaf in LEAVES[:n]:
        tree.extend([leaf])  # one leaf at a time
    return tree


def test_empty_tree_root_is_sha256_of_nothing():
    assert EMPTY_ROOT.hex() == ROOTS[0] == hashlib.sha256(b"").hexdigest()
    assert MerkleTree().root() == EMPTY_ROOT


@pytest.mark.parametrize("n", range(0, 9))
def test_golden_roots(n):
    tree = golden_tree(n)
    assert tree.root().hex() == ROOTS[n]
    assert reference_root([leaf_hash(x) for x in LEAVES[:n]]).hex() == ROOTS[n]
    # The bulk path and the root of an earlier size reproduce the same vectors.
    assert MerkleTree.from_leaf_hashes(leaf_hash(x) for x in LEAVES[:n]).root().hex() == ROOTS[n]
    assert golden_tree(8).root(n).hex() == ROOTS[n]


def test_domain_separation_rejects_the_duplicated_odd_node_shape():
    abc = [leaf_hash(x) for x in (b"a", b"b", b"c")]
    assert reference_root(abc) != reference_root(abc + abc[-1:])
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_golden_inclusion_proofs(leaf, size, proof):
    tree = golden_tree(size)
    got = tree.inclusion_proof(leaf - 1)
    assert [p.hex() for p in got] == proof
    verify_inclusion(leaf - 1, size, leaf_hash(LEAVES[leaf - 1]), got, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_golden_consistency_proofs(size1, size2, proof):
    tree = golden_tree(size2)
    got = tree.consistency_proof(size1)
    assert [p.hex() for p in got] == proof
    verify_consistency(size1, size2, got, bytes.fromhex(ROOTS[size1]), bytes.fromhex(ROOTS[size2]))


def inclusion_mutations(index, size, proof, root, leaf):
    """The probes of transparency-dev's corruptInclusionProof, each of which must be rejected."""
    out = [
        (index - 1, size, root, leaf, proof, "index - 1"),
        (index + 1, size, root, leaf, proof, "index + 1"),
        (index ^ 2, size, root, leaf, proof, "index ^ 2"),
        (index, size * 2, root, leaf, proof, "size * 2"),
        (index, size // 2, root, leaf, proof, "size / 2"),
        (index, size, root, b"WrongLeaf", proof, "wrong leaf"),
        (index, size, root, leaf_hash(b"WrongLeaf"), proof, "wrong leaf hash"),
        (index, size, EMPTY_ROOT, leaf, proof, "empty root"),
        (index, size, SOME_HASH, leaf, proof, "random root"),
        (index, size, root, leaf, proof + [b""], "trailing garbage"),
        (index, size, root, leaf, proof + [root], "trailing root"),
        (index, size, root, leaf, [b""] + proof, "preceding garbage"),
        (index, size, root, leaf, [root] + proof, "preceding root"),
    ]
    for i in range(len(proof)):
        for bit in range(8):
            bad = list(proof)
            bad[i] = bytes([bad[i][0] ^ (1 << bit)]) + bad[i][1:]
            out.append((index, size, root, leaf, bad, f"proof[{i}] bit {bit}"))
    if proof:
        out.append((index, size, root, leaf, proof[:-1], "removed last element"))
        out.append((index, size, root, leaf, proof[1:], "removed first element"))
    if len(proof) > 1:
        out.append((index, size, root, leaf, [proof[0], SOME_HASH] + proof[1:], "inserted element"))
    return out


def consistency_mutations(size1, size2, root1, root2, proof):
    """The probes of transparency-dev's corruptConsistencyProof, each of which must be rejected."""
    out = [
        (size1 - 1, size2, root1, root2, proof, "size1 - 1"),
        (size1 + 1, size2, root1, root2, proof, "size1 + 1"),
        (size1 ^ 2, size2, root1, root2, proof, "size1 ^ 2"),
        (size1, size2 * 2, root1, root2, proof, "size2 * 2"),
        (size1, size2 // 2, root1, root2, proof, "size2 / 2"),
        (size1, size2, b"WrongRoot", root2, proof, "wrong root1"),
        (size1, size2, root1, b"WrongRoot", proof, "wrong root2"),
        (size1, size2, SOME_HASH, root2, proof, "random root1"),
        (size1, size2, root1, SOME_HASH, proof, "random root2"),
        (size1, size2, root2, root1, proof, "swapped roots"),
        (size1, size2, root1, root2, [], "empty proof"),
        (size1, size2, root1, root2, proof + [b""], "trailing garbage"),
        (size1, size2, root1, root2, proof + [root1], "trailing root1"),
        (size1, size2, root1, root2, proof + [root2], "trailing root2"),
        (size1, size2, root1, root2, [b""] + proof, "preceding garbage"),
        (size1, size2, root1, root2, [root1] + proof, "preceding root1"),
        (size1, size2, root1, root2, [root2] + proof, "preceding root2"),
        (size1, size2, root1, root2, [proof[0]] + proof, "preceding proof[0]"),
        (size1, size2, root1, root2, proof[:-1], "truncated proof"),
        (size1, size2, root1, root2, proof[1:], "removed first element"),
    ]
    if len(proof) > 1:
        out.append((size1, size2, root1, root2, [proof[0], SOME_HASH] + proof[1:], "inserted element"))
    for i in range(len(proof)):
        for bit in range(8):
            bad = list(proof)
            bad[i] = bytes([bad[i][0] ^ (1 << bit)]) + bad[i][1:]
            out.append((size1, size2, root1, root2, bad, f"proof[{i}] bit {bit}"))
    return out


def assert_inclusion_mutations_rejected(index, size, proof, root, leaf):
    verify_inclusion(index, size, leaf, proof, root)
    accepted = []
    for i, n, r, lf, p, desc in inclusion_mutations(index, size, proof, root, leaf):
        try:
            verify_inclusion(i, n, lf, p, r)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


def assert_consistency_mutations_rejected(size1, size2, proof, root1, root2):
    verify_consistency(size1, size2, proof, root1, root2)
    accepted = []
    for s1, s2, r1, r2, p, desc in consistency_mutations(size1, size2, root1, root2, proof):
        try:
            verify_consistency(s1, s2, p, r1, r2)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_mutation_suite_on_golden_proofs(leaf, size, proof):
    proof = [bytes.fromhex(p) for p in proof]
    assert_inclusion_mutations_rejected(leaf - 1, size, proof, bytes.fromhex(ROOTS[size]), leaf_hash(LEAVES[leaf - 1]))


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_mutation_suite_on_golden_proofs(size1, size2, proof):
    proof = [bytes.fromhex(p) for p in proof]
    assert_consistency_mutations_rejected(size1, size2, proof, bytes.fromhex(ROOTS[size1]), bytes.fromhex(ROOTS[size2]))


def test_mutation_suite_on_every_proof_of_a_37_leaf_tree():
    tree = MerkleTree()
    tree.extend(str(i).encode() for i in range(37))
    for size in range(1, 38):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert_inclusion_mutations_rejected(index, size, proof, root, tree.leaf(index))
        for first in range(1, size):
            assert_consistency_mutations_rejected(
                first, size, tree.consistency_proof(first, size), tree.root(first), root
            )


def test_single_leaf_and_empty_edge_cases():
    h = leaf_hash(b"data")
    verify_inclusion(0, 1, h, [], h)
    with pytest.raises(ProofError, match="leaf hash must be a 32-byte hash"):
        verify_inclusion(0, 1, b"", [], h)
    with pytest.raises(ProofError, match="root must be a 32-byte hash"):
        verify_inclusion(0, 1, h, [], b"")
    for index, size in ((0, 0), (1, 0), (2, 1)):
        with pytest.raises(ProofError, match="is not inside a tree"):
            verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT)
    # transparency-dev's TestVerifyConsistency table.
    r1, r2 = b"don't care 1", b"don't care 2"
    verify_consistency(0, 0, [], r1, r1)
    verify_consistency(1, 1, [], r2, r2)
    for args, message in [
        ((0, 0, [], r1, r2), "different roots"),
        ((1, 1, [], r1, r2), "different roots"),
        ((1, 0, [], r1, r2), "cannot extend"),
        ((2, 1, [], r1, r2), "cannot extend"),
        ((1, 2, [], SOME_HASH, SOME_HASH), "proof is empty"),
        ((0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT), "need an empty proof"),
        ((0, 1, [], r1, r2), "from the empty tree proves nothing"),
        ((0, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT), "from the empty tree proves nothing"),
        ((1, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT), "need an empty proof"),
    ]:
        with pytest.raises(ProofError, match=message):
            verify_consistency(*args)


def test_proof_requests_outside_the_tree_are_refused():
    tree = golden_tree(5)
    with pytest.raises(ValueError, match="leaf index 5 outside a tree of size 5"):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError, match="size 6 outside 0..5"):
        tree.root(6)
    with pytest.raises(ValueError, match="first size 6 outside 0..5"):
        tree.consistency_proof(6)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_property_proofs_verify_and_are_log_sized(n, data):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = MerkleTree()
    split = data.draw(st.integers(0, n))
    for h in leaves[:split]:
        tree.extend_leaf_hashes([h])  # one at a time ...
    tree.extend_leaf_hashes(leaves[split:])  # ... then in bulk: both paths build the same tree
    assert tree.root() == reference_root(leaves)
    index = data.draw(st.integers(0, n - 1))
    size = data.draw(st.integers(index + 1, n))
    proof = tree.inclusion_proof(index, size)
    assert len(proof) <= (size - 1).bit_length()  # at most ceil(log2 size) hashes
    verify_inclusion(index, size, leaves[index], proof, reference_root(leaves[:size]))
    first = data.draw(st.integers(0, n))
    cproof = tree.consistency_proof(first)
    assert len(cproof) <= (n - 1).bit_length() + 1
    if first == 0:
        assert cproof == []
        with pytest.raises(ProofError, match="from the empty tree proves nothing"):
            verify_consistency(first, n, cproof, reference_root(leaves[:first]), tree.root())
    else:
        verify_consistency(first, n, cproof, reference_root(leaves[:first]), tree.root())
    if 0 < first < n:
        with pytest.raises(ProofError):
            verify_consistency(first, n, cproof, tree.root(first), leaf_hash(b"other"))
    peaks, grown = tree.peaks(), n
    peaks, grown = append_to_peaks(peaks, grown, leaf_hash(b"next"))
    tree.extend([b"next"])
    assert (root_from_peaks(peaks), grown) == (tree.root(), tree.size)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_property_mutation_suite_on_random_proofs_of_random_sizes(n, data):
    """The same probes as on the golden proofs, for proofs drawn from trees of up to a few thousand leaves."""
    tree = MerkleTree()
    tree.extend_leaf_hashes([leaf_hash(i.to_bytes(4, "big")) for i in range(n)])
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    root = tree.root(size)
    assert_inclusion_mutations_rejected(index, size, tree.inclusion_proof(index, size), root, tree.leaf(index))
    if size > 1:
        first = data.draw(st.integers(1, size - 1))
        proof = tree.consistency_proof(first, size)
        assert_consistency_mutations_rejected(first, size, proof, tree.root(first), root)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 600), st.integers(0, 600), st.binary(max_size=8))
def test_appending_to_the_compact_range_gives_the_trees_peaks_and_root(size, added, salt):
    """append_to_peaks() once per leaf (what a writer does) keeps the peaks and root of the whole tree."""
    entries = [salt + i.to_bytes(4, "big") for i in range(size + added)]
    digests = [leaf_hash(e) for e in entries]
    tree = MerkleTree.from_leaf_hashes(digests[:size])
    peaks, n = tree.peaks(), size
    for d in digests[size:]:
        peaks, n = append_to_peaks(peaks, n, d)
    assert (peaks, n) == (MerkleTree.from_leaf_hashes(digests).peaks(), size + added)
    assert root_from_peaks(peaks) == reference_root(digests)


def test_append_to_peaks_refuses_a_range_of_the_wrong_size():
    with pytest.raises(ValueError, match="a tree of size 3 has 2 peaks, got 1"):
        append_to_peaks([EMPTY_ROOT], 3, EMPTY_ROOT)


def test_a_consistency_proof_from_size_zero_is_refused():
    """transparency-dev/merkle #140: from the empty tree no proof is meaningful, whatever the roots."""
    tree = golden_tree(8)
    for second in range(1, 9):
        for proof in ([], tree.consistency_proof(1, second), [EMPTY_ROOT]):
            with pytest.raises(ProofError, match="a consistency proof from the empty tree proves nothing"):
                verify_consistency(0, second, proof, EMPTY_ROOT, tree.root(second))
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)  # equal sizes still compare the roots
    with pytest.raises(ProofError, match="trees of equal size have different roots"):
        verify_consistency(0, 0, [], EMPTY_ROOT, tree.root(1))
