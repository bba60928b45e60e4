"""Accounts: people and source-system clients who sign in, with Argon2 password hashes.

Every account has a :class:`~carelight.access.principal.Role`. Professionals and source
systems are bound to one Organization; a patient's username is their NHS number and their
account is linked to one Patient. Passwords (and system clients' secrets) are stored only as
Argon2id hashes, re-hashed on sign-in when the hashing parameters change.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from carelight.access import schema
from carelight.access.grants import check_scopes, role_scopes
from carelight.access.principal import PROFESSIONAL_ROLES, SERVICE_ROLES, Principal, Role
from carelight.identity.nhs_number import normalise_nhs_number

A = schema.account
MIN_PASSWORD = 12  # NCSC: length over complexity rules
MAX_PASSWORD = 1024  # hashing a megabyte on every attempt would be a denial of service
MAX_FAILURES = 5  # consecutive failures before sign-in is slowed down
FIRST_LOCK_SECONDS = 60.0  # then doubled with each further failure
MAX_LOCK_SECONDS = 900.0
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,127}")
# Roles that act for an organisation and so must name one.
ORGANIZATION_ROLES = PROFESSIONAL_ROLES | {Role.SYSTEM}


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Organization:
    """An organisation as an account refers to it (read from the store's Organization)."""

    id: str  # logical id, e.g. "Y99101-org"
    code: str  # ODS code
    name: str
    source: str | None = None  # the meta.source its own system writes with


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: Role
    display: str
    scopes: frozenset[str]
    organization_id: str | None = None
    organization_code: str | None = None
    organization_name: str | None = None
    patient_id: str | None = None
    nhs_number: str | None = None
    source: str | None = None
    disabled: bool = False
    created: float = 0.0
    password_hash: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SignInAttempt:
    """The outcome of checking a password: the account, or why it was refused.

    ``reason`` is for the transparency log only; people are always told the same thing, so a
    failed sign-in never reveals whether an account exists.
    """

    username: str
    account: Account | None
    reason: str | None = None  # "unknown account", "wrong password", "disabled", "throttled"
    patient_id: str | None = None  # a refused patient account's record, for the log

    @property
    def ok(self) -> bool:
        return self.account is not None


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction (on SQLite ``BEGIN IMMEDIATE``, as the FHIR store's writes)."""
    with engine.connect() as conn:
        conn = conn.execution_options(carelight_write=True)
        with conn.begin():
            yield conn


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive; an NHS number may be typed with spaces or dashes."""
    name = username.strip()
    nhs = normalise_nhs_number(name)
    return nhs if nhs is not None else name.lower()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"A password may have at most {MAX_PASSWORD} characters.")


def principal_for(account: Account, scopes: frozenset[str] | None = None) -> Principal:
    """The principal an account acts as (with the given scopes, or all it may hold)."""
    return Principal(
        username=account.username,
        role=account.role,
        display=account.display,
        organization_id=account.organization_id,
        organization_code=account.organization_code,
        organization_name=account.organization_name,
        patient_id=account.patient_id,
        nhs_number=account.nhs_number,
        source=account.source,
        scopes=account.scopes if scopes is None else scopes,
    )


def row_to_account(m: Mapping) -> Account:
    return Account(
        username=m["username"],
        role=Role(m["role"]),
        display=m["display"],
        scopes=frozenset(m["scopes"].split()),
        organization_id=m["organization_id"],
        organization_code=m["organization_code"],
        organization_name=m["organization_name"],
        patient_id=m["patient_id"],
        nhs_number=m["nhs_number"],
        source=m["source"],
        disabled=bool(m["disabled"]),
        created=m["created"],
        password_hash=m["password_hash"],
    )


class AccountStore:
    """Accounts in the operational store's database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        hasher: PasswordHasher | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.hasher = hasher or PasswordHasher()  # Argon2id, RFC 9106 low-memory parameters
        self.clock = clock
        self._dummy_hash: str | None = None

    def _write(self):
        return write_transaction(self.engine)

    # -- creating and changing ------------------------------------------------------------
    def create(
        self,
        username: str,
        role: Role | str,
        *,
        password: str | None = None,
        display: str = "",
        organization: Organization | None = None,
        patient_id: str | None = None,
        source: str | None = None,
        scopes: frozenset[str] | set[str] | None = None,
    ) -> Account:
        """Create an account. Raises :class:`AccountError` saying what is missing or wrong."""
        role = Role(role)
        if role in SERVICE_ROLES:
            raise AccountError(
                f"The {role.value} role is Carelight's own service; no account has it."
            )
        name = normalise_username(username)
        nhs_number = None
        if role is Role.PATIENT:
            nhs_number = normalise_nhs_number(username)
            if nhs_number is None:
                raise AccountError(
                    "A patient's username is their NHS number: ten digits with a valid check digit."
                )
            if not patient_id:
                raise AccountError("A patient account must be linked to a Patient (patient_id).")
        elif not _USERNAME.fullmatch(name):
            raise AccountError(
                "A username is 1 to 128 letters, digits, '.', '_', '@' or '-', starting with "
                "a letter or digit."
            )
        elif patient_id:
            raise AccountError("Only patient accounts are linked to a Patient.")
        if role in ORGANIZATION_ROLES and organization is None:
            raise AccountError(f"A {role.value} account must belong to an organisation.")
        if role is Role.SYSTEM:
            source = source or (organization.source if organization else None)
            if not source:
                raise AccountError("A source-system client needs the meta.source URI it writes as.")
        elif source:
            raise AccountError("Only source-system clients have a source URI.")
        try:
            allowed = check_scopes(scopes) if scopes is not None else role_scopes(role)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        password_hash = None
        if password is not None:
            check_password(password)
            password_hash = self.hasher.hash(password)
        row = {
            "username": name,
            "role": role.value,
            "display": display or name,
            "password_hash": password_hash,
            "organization_id": organization.id if organization else None,
            "organization_code": organization.code if organization else None,
            "organization_name": organization.name if organization else None,
            "patient_id": patient_id,
            "nhs_number": nhs_number,
            "source": source,
            "scopes": " ".join(sorted(allowed)),
            "disabled": False,
            "failed_logins": 0,
            "locked_until": None,
            "created": self.clock(),
        }
        try:
            with self._write() as conn:
                conn.execute(insert(A).values(**row))
        except IntegrityError:
            raise AccountError(f"There is already an account called '{name}'.") from None
        return row_to_account(row)

    def set_password(self, username: str, password: str) -> None:
        check_password(password)
        self._update(username, password_hash=self.hasher.hash(password))

    def disable(self, username: str) -> None:
        """Refuse every further sign-in and end the account's web sessions at once.

        Access tokens already issued stay valid until they expire (at most an hour).
        """
        name = normalise_username(username)
        with self._write() as conn:
            self._update(name, conn=conn, disabled=True)
            conn.execute(delete(schema.web_session).where(schema.web_session.c.username == name))

    def enable(self, username: str) -> None:
        self._update(username, disabled=False, failed_logins=0, locked_until=None)

    def _update(self, username: str, conn: Connection | None = None, **values) -> None:
        name = normalise_username(username)
        if conn is None:
            with self._write() as c:
                return self._update(name, conn=c, **values)
        done = conn.execute(update(A).where(A.c.username == name).values(**values))
        if done.rowcount != 1:
            raise AccountError(f"There is no account called '{name}'.")
        return None

    # -- reading --------------------------------------------------------------------------
    def get(self, username: str) -> Account | None:
        row = self._row(normalise_username(username))
        return row_to_account(row) if row else None

    def _row(self, name: str) -> Mapping | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(A).where(A.c.username == name)).first()
        return row._mapping if row else None

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(A).order_by(A.c.role, A.c.username))
            return [row_to_account(r._mapping) for r in rows]

    # -- signing in -----------------------------------------------------------------------
    def check(self, username: str, password: str) -> SignInAttempt:
        """Check a password, with the reason for a refusal (for the transparency log).

        Takes about the same time whether or not the account exists (an unknown name is
        checked against a dummy hash), throttles an account after repeated failures, and
        re-hashes a correct password whose hash uses old parameters.
        """
        name = normalise_username(username)
        password = password[:MAX_PASSWORD]  # too long is wrong anyway; bound the hashing work
        row = self._row(name) if name else None
        if row is None or row["password_hash"] is None:
            self._verify(self._dummy(), password)
            return SignInAttempt(name, None, "unknown account")
        account = row_to_account(row)
        if row["locked_until"] is not None and self.clock() < row["locked_until"]:
            self._verify(self._dummy(), password)
            return SignInAttempt(name, None, "throttled", account.patient_id)
        if not self._verify(row["password_hash"], password):
            self._count_failure(name)
            return SignInAttempt(name, None, "wrong password", account.patient_id)
        if account.disabled:
            return SignInAttempt(name, None, "disabled", account.patient_id)
        changes: dict = {}
        if row["failed_logins"] or row["locked_until"] is not None:
            changes.update(failed_logins=0, locked_until=None)
        if self.hasher.check_needs_rehash(row["password_hash"]):
            changes["password_hash"] = self.hasher.hash(password)
        if changes:
            self._update(name, **changes)
        return SignInAttempt(name, account)

    def _count_failure(self, name: str) -> None:
        with self._write() as conn:
            failures = conn.execute(
                update(A)
                .where(A.c.username == name)
                .values(failed_logins=A.c.failed_logins + 1)
                .returning(A.c.failed_logins)
            ).scalar_one()
            if failures >= MAX_FAILURES:
                wait = FIRST_LOCK_SECONDS * 2 ** min(failures - MAX_FAILURES, 10)
                lock = self.clock() + min(wait, MAX_LOCK_SECONDS)
                conn.execute(update(A).where(A.c.username == name).values(locked_until=lock))

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if the password is right and the account may sign in, else None."""
        return self.check(username, password).account

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
