"""The /audit HTTP interface pinned in ARCHITECTURE.md, through the real app (no server).

Sign-in is another package's middleware; here a tiny test middleware, placed innermost so it
has the last word, sets ``request.state.principal`` from an ``X-Test-User`` header.
"""

from __future__ import annotations

import base64

import orjson
import pytest
from audit_support import ADMIN, GP, OTHER_PATIENT, PATIENT, read_event
from fastapi.testclient import TestClient
from rfc9162 import leaf, verify_consistency, verify_inclusion
from signed_note import parse_vkey, verify
from starlette.middleware import Middleware

from carelight.audit.events import patients_in_entry
from carelight.server import create_app

PRINCIPALS = {p.username: p for p in (GP, ADMIN, PATIENT, OTHER_PATIENT)}


class HeaderSignIn:
    """Innermost middleware: whatever real sign-in ran before, the header decides here."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            user = dict(scope["headers"]).get(b"x-test-user", b"").decode()
            scope.setdefault("state", {})["principal"] = PRINCIPALS.get(user)
        await self.app(scope, receive, send)


def make_client(store, settings, trail) -> TestClient:
    app = create_app(store=store, settings=settings)
    app.state.trail = trail
    app.user_middleware.append(Middleware(HeaderSignIn))  # last in the list runs innermost
    return TestClient(app)


@pytest.fixture
def client(store, settings, trail):
    with make_client(store, settings, trail) as c:
        yield c


@pytest.fixture
def filled(trail):
    """Entries 0-5: reads by the GP, alternately about pat-1 and pat-2."""
    trail.record_many([read_event(f"pat-{1 + i % 2}", i) for i in range(6)])
    return trail


def as_user(user):
    return {"X-Test-User": user.username}


def issue(response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


def test_checkpoint_and_key_are_public_and_verify_independently(client, filled):
    key = client.get("/audit/public-key")
    assert key.status_code == 200 and key.headers["content-type"].startswith("text/plain")
    cosign = client.get("/audit/public-key", params={"type": "cosignature"}).text
    verifiers = [parse_vkey(key.text), parse_vkey(cosign)]
    assert None not in verifiers
    cp = client.get("/audit/checkpoint")
    assert cp.status_code == 200 and cp.headers["content-type"] == "text/plain; charset=utf-8"
    seen = verify(cp.content, verifiers)
    assert seen is not None and seen.key_types == {0x01, 0x04}
    assert seen.tree_size == 6
    assert seen.root_hash == filled.log.root_hash(6)
    bad = client.get("/audit/public-key", params={"type": "rsa"})
    assert bad.status_code == 400 and "type must be" in issue(bad)


def test_entries_need_sign_in(client, filled):
    response = client.get("/audit/entries/0")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Sign in" in issue(response)
    for path in ("/audit/proof/inclusion?index=0&size=1", "/audit/patient/pat-1/entries"):
        assert client.get(path).status_code == 401


def test_an_entry_goes_to_auditors_and_the_patient_concerned_only(client, filled):
    log = filled.log
    admin = client.get("/audit/entries/0", headers=as_user(ADMIN))
    assert admin.status_code == 200
    assert admin.headers["content-type"] == "application/fhir+json"
    assert admin.content == log.leaf(0)
    mine = client.get("/audit/entries/0", headers=as_user(PATIENT))  # entry 0 is about pat-1
    assert mine.status_code == 200 and mine.content == log.leaf(0)
    for user in (OTHER_PATIENT, GP):
        refused = client.get("/audit/entries/0", headers=as_user(user))
        assert refused.status_code == 403
        assert "only the patient concerned and auditors" in issue(refused)
        assert log.leaf(0) not in refused.content
    # Each look was itself recorded, about pat-1, refusals included.
    records = [orjson.loads(log.leaf(i)) for i in range(6, log.size())]
    assert [(r["subtype"][-1]["code"], r["outcome"]) for r in records] == [
        ("audit-read", "0"),
        ("audit-read", "0"),
        ("audit-read", "4"),
        ("audit-read", "4"),
    ]
    assert all(patients_in_entry(log.leaf(i)) == ["pat-1"] for i in range(6, 10))


def test_entry_errors(client, filled):
    missing = client.get("/audit/entries/600", headers=as_user(ADMIN))
    assert missing.status_code == 404 and "no log entry 600" in issue(missing)
    bad = client.get("/audit/entries/-1", headers=as_user(ADMIN))
    assert bad.status_code == 400 and "whole number" in issue(bad)


def test_proofs_verify_against_the_checkpoint(client, filled):
    cp = client.get("/audit/checkpoint").text
    root = base64.b64decode(cp.split("\n")[2])
    response = client.get("/audit/proof/inclusion?index=3&size=6", headers=as_user(GP))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    hashes = [base64.b64decode(h) for h in response.json()["hashes"]]
    assert verify_inclusion(3, 6, leaf(filled.log.leaf(3)), hashes, root)

    response = client.get("/audit/proof/consistency?from=4&to=6", headers=as_user(PATIENT))
    hashes = [base64.b64decode(h) for h in response.json()["hashes"]]
    assert verify_consistency(4, 6, filled.log.root_hash(4), root, hashes)
    same = client.get("/audit/proof/consistency?from=6&to=6", headers=as_user(GP))
    assert same.json() == {"hashes": []}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("/audit/proof/inclusion?size=3", "The parameter index is required"),
        ("/audit/proof/inclusion?index=x&size=3", "index must be a whole number"),
        ("/audit/proof/inclusion?index=3&size=3", "index (3) must be below size (3)"),
        ("/audit/proof/inclusion?index=0&size=0", "size must be at least 1"),
        ("/audit/proof/inclusion?index=0&size=99", "size 99 is out of range: the log has 6"),
        ("/audit/proof/consistency?from=1", "The parameter to is required"),
        ("/audit/proof/consistency?from=5&to=2", "from (5) must not be larger than to (2)"),
        ("/audit/proof/consistency?from=1&to=7", "to 7 is out of range: the log has 6"),
    ],
)
def test_bad_proof_parameters_are_400(client, filled, query, message):
    response = client.get(query, headers=as_user(GP))
    assert response.status_code == 400
    assert message in issue(response)


def test_a_patient_lists_the_entries_about_them(client, filled):
    response = client.get("/audit/patient/pat-1/entries", headers=as_user(PATIENT))
    assert response.status_code == 200
    body = response.json()
    # The look itself (entry 6) comes first, then entries 4, 2, 0.
    assert body["total"] == 4 and body["patient"] == "Patient/pat-1"
    assert [e["index"] for e in body["entries"]] == [6, 4, 2, 0]
    assert body["entries"][0]["entry"]["subtype"][-1]["code"] == "audit-read"
    assert orjson.dumps(body["entries"][1]["entry"], option=orjson.OPT_SORT_KEYS) == (
        filled.log.leaf(4)
    )
    page = client.get(
        "/audit/patient/pat-1/entries?offset=1&_count=2", headers=as_user(PATIENT)
    ).json()
    assert [e["index"] for e in page["entries"]] == [6, 4]  # this look is entry 7
    assert client.get("/audit/patient/pat-2/entries", headers=as_user(ADMIN)).status_code == 200
    refused = client.get("/audit/patient/pat-2/entries", headers=as_user(PATIENT))
    assert refused.status_code == 403
    bad = client.get("/audit/patient/no%20such/entries", headers=as_user(ADMIN))
    assert bad.status_code == 400


def test_fail_closed_when_the_log_cannot_record(client, filled):
    log = filled.log
    entry = log.leaf(0)
    conn = log._writer_connection()
    cur = conn.cursor()
    if log.engine.dialect.name == "sqlite":
        cur.execute("PRAGMA query_only=1")
    else:
        cur.execute("SET default_transaction_read_only = on")
        conn.commit()
    response = client.get("/audit/entries/0", headers=as_user(ADMIN))
    assert response.status_code == 503
    assert entry not in response.content
    assert "not available" in issue(response)
    listing = client.get("/audit/patient/pat-1/entries", headers=as_user(PATIENT))
    assert listing.status_code == 503 and b"Observation" not in listing.content


def test_no_trail_no_log(client):
    trail = client.app.state.trail
    client.app.state.trail = None  # as if the log could not be opened
    try:
        response = client.get("/audit/checkpoint")
    finally:
        client.app.state.trail = trail
    assert response.status_code == 503
    assert "not available" in issue(response)
