"""The transparency log: every access decision as an AuditEvent in an RFC 9162 Merkle tree."""
