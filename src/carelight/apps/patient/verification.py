"""Checking one entry of the transparency log, and saying what the check means in plain words.

The check is the one anyone can make with the public key (docs/audit.md, "Verifying"): the
latest checkpoint's signature is verified with the log's public key; the entry's exact bytes
are hashed into a leaf; the inclusion proof is walked from that leaf up to a root; that root
must be the one the checkpoint signs. If all hold, the entry is in the log exactly as shown,
and the log cannot later remove or change it without breaking every later checkpoint.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from carelight.audit.checkpoint import CheckpointError, open_checkpoint
from carelight.audit.log import TransparencyLog
from carelight.audit.merkle import leaf_hash, root_from_inclusion_proof


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    headline: str
    explanation: str
    index: int
    tree_size: int = 0  # the checkpoint's
    signed_at: int = 0  # the checkpoint's time, POSIX seconds
    checkpoint: str = ""  # the signed note, as served by /audit/checkpoint
    public_key: str = ""  # the verifier key, as served by /audit/public-key
    leaf: str = ""  # base64 of the entry's leaf hash
    proof: tuple[str, ...] = ()  # base64 hashes, as /audit/proof/inclusion returns them


def verify_entry(log: TransparencyLog, index: int, entry: bytes) -> Verification:
    """Check that ``entry`` (as it was shown) is entry ``index`` of the log under its latest
    signed checkpoint, signing a new checkpoint first if the entry is newer than the last."""
    checkpoint = log.latest_checkpoint()
    if checkpoint.tree_size <= index:
        checkpoint = log.latest_checkpoint(force=True)
    signer = log.signer
    leaf = leaf_hash(entry)
    common = {
        "index": index,
        "tree_size": checkpoint.tree_size,
        "signed_at": checkpoint.timestamp,
        "checkpoint": checkpoint.note,
        "public_key": signer.vkey,
        "leaf": base64.b64encode(leaf).decode(),
    }
    try:
        signed = open_checkpoint(checkpoint.note, signer.public_key, signer.origin)
    except CheckpointError:
        return Verification(
            False,
            "This could not be verified",
            "The log's signed summary (its checkpoint) does not carry a valid signature from "
            "the log's key, so nothing can be checked against it. This should never happen: "
            "please report it.",
            **common,
        )
    proof = log.inclusion_proof(index, signed.tree_size)
    try:
        root = root_from_inclusion_proof(index, signed.tree_size, leaf, proof)
    except ValueError:
        root = b""
    common["proof"] = tuple(base64.b64encode(h).decode() for h in proof)
    if root != signed.root_hash:
        return Verification(
            False,
            "This could not be verified",
            "The entry does not match the log's signed summary: it may have been changed after "
            "it was written. This should never happen: please report it.",
            **common,
        )
    return Verification(
        True,
        "Verified: this entry is in the log, unchanged",
        "The log publishes a summary of all its entries (a checkpoint) signed with its own "
        f"key. The check shows that this entry is one of the {signed.tree_size:,} entries "
        "that summary covers, exactly as shown here. Once covered, an entry cannot be "
        "removed or changed without the change showing in every later summary.",
        **common,
    )
