"""An independent reader of C2SP signed notes and tlog-checkpoints, written from the specs.

https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint and
https://c2sp.org/tlog-cosignature. Imports nothing from Carelight; only Ed25519 itself comes
from a library. Returns None for anything it does not accept.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass
class Verifier:
    name: str
    key_type: int
    key_id: bytes
    public_key: bytes


@dataclass
class Verified:
    origin: str
    tree_size: int
    root_hash: bytes
    extensions: list[str]
    timestamps: list[int]  # from verified tlog-cosignature/v1 signatures
    key_types: set[int]  # the types of the known keys whose signatures verified


def b64(text: str) -> bytes | None:
    """Strict standard base64: decodes only a canonical encoding."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def parse_vkey(vkey: str) -> Verifier | None:
    # <name>+<hex key ID>+<base64(type || public key)>
    parts = vkey.split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        return None
    name, hex_id, encoded = parts
    raw = b64(encoded)
    if raw is None or len(raw) != 33:
        return None
    key_type, key = raw[0], raw[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + key).digest()[:4]
    if key_id.hex() != hex_id:
        return None
    return Verifier(name, key_type, key_id, key)


def verify(note: bytes, verifiers: list[Verifier]) -> Verified | None:
    try:
        text_all = note.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # MUST NOT contain ASCII control characters other than newline.
    if any(ord(c) < 0x20 and c != "\n" for c in text_all):
        return None
    # The text is separated from the signatures by the last empty line in the note.
    lines = text_all.split("\n")
    if lines[-1] != "":
        return None
    lines = lines[:-1]
    try:
        blank = len(lines) - 1 - lines[::-1].index("")
    except ValueError:
        return None
    text = "\n".join(lines[:blank]) + "\n"
    signature_lines = lines[blank + 1 :]
    if not signature_lines:
        return None
    key_types: set[int] = set()
    timestamps: list[int] = []
    for line in signature_lines:
        # em dash, space, key name, space, base64 signature
        if not line.startswith("\u2014 "):
            return None
        fields = line[2:].split(" ")
        if len(fields) != 2:
            return None
        name, encoded = fields
        raw = b64(encoded)
        if raw is None or len(raw) < 5:
            return None
        key_id, signature = raw[:4], raw[4:]
        for v in verifiers:
            if v.name != name or v.key_id != key_id:
                continue  # unknown keys are ignored
            key = Ed25519PublicKey.from_public_bytes(v.public_key)
            try:
                if v.key_type == 0x01:
                    key.verify(signature, text.encode())
                elif v.key_type == 0x04:
                    if len(signature) != 72:
                        return None
                    (timestamp,) = struct.unpack(">Q", signature[:8])
                    message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
                    key.verify(signature[8:], message)
                    timestamps.append(timestamp)
                else:
                    continue
            except InvalidSignature:
                return None  # a known key's signature that fails: reject the whole note
            key_types.add(v.key_type)
    if not key_types:  # no signature by a known key verified
        return None
    # tlog-checkpoint: at least three non-empty lines: origin, decimal size, base64 root.
    body = text[:-1].split("\n")
    if len(body) < 3 or any(line == "" for line in body):
        return None
    origin, size, root = body[0], body[1], body[2]
    if not size.isdigit() or (size.startswith("0") and size != "0"):
        return None
    root_hash = b64(root)
    if root_hash is None or len(root_hash) != 32:
        return None
    return Verified(origin, int(size), root_hash, body[3:], timestamps, key_types)
