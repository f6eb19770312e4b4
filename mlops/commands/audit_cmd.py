"""`mlops audit ...`: verify the Merkle-rooted audit log, prove and check inclusion, repair a torn tail, keys,
and witness cosignatures (C2SP signed notes, tlog-checkpoint, tlog-cosignature, tlog-proof)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops import gha
from mlops.errors import BadInput
from mlops.repo import Repo


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit", help="verify, prove and repair the audit log in metadata/audit/")
    inner = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = inner.add_parser("verify", help="re-hash every entry and check every checkpoint (exit 1 on tampering)")
    verify.add_argument(
        "--against", metavar="REF", help="also prove the log is an append-only extension of the log at git REF"
    )
    verify.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's verifier key (or a file holding it); repeatable",
    )
    verify.add_argument(
        "--min-witnesses",
        type=int,
        metavar="N",
        help="require N valid cosignatures by --witness keys on the newest checkpoint (default 1 with --witness)",
    )
    verify.set_defaults(func=run_verify)

    prove = inner.add_parser("prove", help="write an inclusion proof of entry N against the latest checkpoint")
    prove.add_argument("--seq", type=int, required=True, metavar="N", help="sequence number of the entry")
    prove.add_argument("--output", "-o", metavar="FILE", help="write the proof here instead of stdout")
    prove.add_argument(
        "--format",
        choices=("tlog-proof", "json"),
        default="tlog-proof",
        help="c2sp.org/tlog-proof (default; needs a signed checkpoint) or the legacy JSON document",
    )
    prove.set_defaults(func=run_prove)

    check = inner.add_parser("check-proof", help="verify a proof offline from the proof and its checkpoint")
    check.add_argument("file", metavar="FILE", help="proof written by `mlops audit prove` (tlog-proof or JSON)")
    check.add_argument(
        "--public-key",
        metavar="PEM",
        help="legacy JSON proofs: check the signature with this key (default: metadata/audit/checkpoint-key.pub)",
    )
    check.add_argument(
        "--log-key",
        metavar="VKEY",
        help="the log's verifier key (or a file holding it; default: metadata/audit/checkpoint.vkey if present)",
    )
    check.set_defaults(func=run_check_proof)

    _register_witness(inner)

    repair = inner.add_parser("repair", help="remove an incomplete final line left by an interrupted append")
    repair.add_argument(
        "--truncate-torn-tail",
        action="store_true",
        help="truncate only bytes after the last newline of the last segment and of checkpoints.jsonl",
    )
    repair.set_defaults(func=run_repair)

    keygen = inner.add_parser("keygen", help="create the log's signing key (C2SP signed-note form), or a witness's")
    keygen.add_argument("--force", action="store_true", help="replace an existing checkpoint.vkey")
    keygen.add_argument(
        "--witness", metavar="NAME", help="instead create a witness's cosigning key named NAME; writes nothing"
    )
    keygen.set_defaults(func=run_keygen)

    record = inner.add_parser("record", help="append one event (for workflows and manual notes)")
    record.add_argument("--type", required=True, dest="event_type", help="event type, e.g. deployment_change")
    record.add_argument("--payload", default="{}", help="JSON object (default {})")
    record.add_argument("--actor", help="who acted (default: $GITHUB_ACTOR or the local user)")
    record.set_defaults(func=run_record)


def _register_witness(inner: argparse._SubParsersAction) -> None:
    cosign = inner.add_parser("cosign", help="as a witness: cosign the newest checkpoint if it extends the last seen")
    cosign.add_argument(
        "--key", metavar="K", help="the witness's private key, or a file holding it (default: $MLOPS_AUDIT_WITNESS_KEY)"
    )
    cosign.add_argument("--state", required=True, metavar="DIR", help="the witness's state folder (kept between runs)")
    cosign.add_argument(
        "--log-key", metavar="VKEY", help="the log's verifier key (default: metadata/audit/checkpoint.vkey)"
    )
    cosign.set_defaults(func=run_cosign)

    ask = inner.add_parser("ask-witness", help="ask a c2sp.org/tlog-witness server to cosign the newest checkpoint")
    ask.add_argument("--url", required=True, help="the witness's submission prefix (POSTs <url>/add-checkpoint)")
    ask.add_argument(
        "--witness", action="append", required=True, metavar="VKEY", help="the witness's verifier key; repeatable"
    )
    ask.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait (default 30)")
    ask.set_defaults(func=run_ask_witness)


def run_verify(args: argparse.Namespace) -> int:
    from mlops import audit

    repo = Repo.at(args.repo)
    witnesses = _witness_policy(args)
    if args.against:
        res = audit.verify_against(repo, args.against)
        result = res.new
        extra = f"; append-only since {args.against} ({res.old_size} entries, proof of {res.proof_length} hashes)"
    else:
        result = audit.verify(repo)
        extra = ""
    if witnesses is not None:
        from mlops.audit import witness

        data = audit.read_dir(repo.audit_dir, repo.rel(repo.audit_dir))
        where = repo.rel(repo.audit_dir / audit.WITNESSED)
        good = witness.check_witnessed(data.witnessed, result.last, witnesses[0], witnesses[1], where)
        extra += f"; cosigned by {len(good)} witnesses ({', '.join(good)})"
    for warning in result.warnings:
        gha.warn(warning)
    print(
        f"audit log ok: {result.entries} entries in {result.segments} segments, {result.checkpoints} checkpoints "
        f"({result.signed} signed), root {result.root}{extra}"
    )
    gha.set_outputs(audit_entries=result.entries, audit_root=result.root, audit_checkpoints=result.checkpoints)
    rows = [
        ("entries", result.entries),
        ("checkpoints", f"{result.checkpoints} ({result.signed} signed)"),
        ("root", f"`{result.root}`"),
    ]
    if args.against:
        rows.append((f"append-only since `{args.against}`", f"yes ({res.old_size} entries then)"))
    gha.add_summary("### Audit log verified\n\n" + gha.md_table(["check", "result"], rows))
    return 0


def _witness_policy(args: argparse.Namespace) -> tuple[list, int] | None:
    """(witness verifier keys, minimum) from --witness/--min-witnesses; None when neither is given."""
    from mlops.audit import witness

    if args.min_witnesses is not None and not args.witness:
        raise BadInput("--min-witnesses", "needs the witnesses' keys", "pass --witness VKEY for each witness")
    if not args.witness:
        return None
    minimum = 1 if args.min_witnesses is None else args.min_witnesses
    if not 1 <= minimum <= len(args.witness):
        raise BadInput("--min-witnesses", f"{minimum} is not between 1 and the {len(args.witness)} witnesses", "fix N")
    return witness.load_vkeys(args.witness, "--witness"), minimum


def run_prove(args: argparse.Namespace) -> int:
    from mlops import audit, jsonio
    from mlops.audit import tlog_proof

    repo = Repo.at(args.repo)
    if args.output:
        _check_output_path(Path(args.output))
    if args.format == "tlog-proof":
        text = tlog_proof.prove_tlog(repo, args.seq)
    else:
        text = jsonio.dumps(audit.prove(repo, args.seq))
    if args.output:
        jsonio.write_text(Path(args.output), text)
        print(f"wrote inclusion proof of entry {args.seq} to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _check_output_path(path: Path) -> None:
    """BadInput before anything is computed or written when the proof cannot be written to `path`."""
    if path.is_dir():
        raise BadInput("--output", f"{path} is a directory", "name the file to write the proof to")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise BadInput("--output", f"{parent} is a file, so {path} cannot be created", "name a path in a folder")


def run_check_proof(args: argparse.Namespace) -> int:
    from mlops import audit, jsonio
    from mlops.audit import tlog_proof, witness

    repo = Repo.at(args.repo)
    path = Path(args.file)
    if path.is_dir():
        raise BadInput(args.file, "is a directory, not a proof file", "name the file itself")
    try:
        head = path.read_bytes()[:64]
    except OSError as exc:
        raise BadInput(args.file, f"cannot be read ({exc.strerror})", "pass the proof file") from None
    if head.startswith(b"c2sp.org/tlog-proof"):  # any version: tlog_proof.parse names the one it reads
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BadInput(args.file, "is not UTF-8", "pass a file written by `mlops audit prove`") from None
        log_key = witness.load_vkeys([args.log_key], "--log-key")[0] if args.log_key else None
        res = tlog_proof.check(text, args.file, log_key or tlog_proof.committed_log_key(repo))
        committed = tlog_proof.compare_with_log(repo, res, args.file)
        print(
            f"proof ok: entry seq {res['seq']} is in {res['origin']} at size {res['tree_size']} with root "
            f"{res['root']} (log signature: {res['signature']}; {committed})"
        )
        return 0
    doc = jsonio.read_json(path, "proof file")
    key_path = Path(args.public_key) if args.public_key else repo.audit_dir / audit.PUBLIC_KEY
    if args.public_key and not key_path.exists():
        raise BadInput("--public-key", f"{key_path} does not exist", "pass the path of checkpoint-key.pub")
    key = audit.load_public_key(key_path) if key_path.exists() else None
    res = audit.check_proof(doc, args.file, key)
    committed = audit.compare_with_log(repo, doc["checkpoint"], args.file)
    print(
        f"proof ok: entry seq {res['seq']} is in the tree of size {res['tree_size']} with root {res['root']} "
        f"(checkpoint signature: {res['signature']}; {committed})"
    )
    return 0


def run_repair(args: argparse.Namespace) -> int:
    from mlops import audit

    if not args.truncate_torn_tail:
        raise BadInput("mlops audit repair", "no repair chosen", "pass --truncate-torn-tail")
    repo = Repo.at(args.repo)
    done = audit.repair_torn_tail(repo)
    for line in done:
        print(line)
    if not done:
        print("nothing to repair: every file ends with a complete line")
    return 0


def run_cosign(args: argparse.Namespace) -> int:
    from mlops.audit import cosign_repo

    repo = Repo.at(args.repo)
    message = cosign_repo(repo, args.key, Path(args.state), args.log_key)
    print(message)
    return 0


def run_ask_witness(args: argparse.Namespace) -> int:
    from mlops.audit import witness

    repo = Repo.at(args.repo)
    print(witness.ask_witness(repo, args.url, witness.load_vkeys(args.witness, "--witness"), args.timeout))
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from mlops import audit

    if args.witness is not None:
        private, vkey = audit.witness_keygen(args.witness)
        gha.info(
            f"witness verifier key (give it to whoever runs `mlops audit verify --witness`): {vkey}; keep the "
            f"private key printed on stdout secret (e.g. as {audit.WITNESS_KEY_ENV}); it is not saved anywhere."
        )
        print(private)
        return 0
    repo = Repo.at(args.repo)
    private, path = audit.keygen(repo, force=args.force)
    gha.info(
        f"wrote {repo.rel(path)} ({path.read_text().strip()}) and {audit.PUBLIC_KEY}; commit both. Store the "
        "private key printed on stdout as the repository secret "
        f"{audit.SIGNING_KEY_ENV} (e.g. `gh secret set {audit.SIGNING_KEY_ENV}`); it is not saved anywhere."
    )
    print(private)
    return 0


def run_record(args: argparse.Namespace) -> int:
    from mlops import audit, jsonio

    try:
        payload = jsonio.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise BadInput("--payload", f"is not JSON ({exc.msg})", 'pass a JSON object, e.g. \'{"note": "x"}\'') from None
    entry = audit.record(Repo.at(args.repo), args.event_type, payload, actor=args.actor)
    print(f"recorded entry seq {entry['seq']} ({entry['type']})")
    return 0
