"""The security boundaries around the research extract: the service principal is reachable only
through ``extract_access``; no account, token or request can hold it; a researcher's own token
reads nothing identifiable; opt-outs in the gate's SQL agree with the opt-out rule."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from sde_support import project_fields
from sqlalchemy import select

from carelight.access.accounts import AccountError
from carelight.access.gate import Gate
from carelight.access.optout import opt_out_consent, opted_out_patients, opted_out_records
from carelight.access.principal import Principal, Purpose, Role
from carelight.access.research import extract_access
from carelight.access.services import access_services
from carelight.access.tokens import TokenError
from carelight.fhir.errors import FhirError
from carelight.sde.tables import sde_extract

SERVICE = Principal(username="sde-extract/project-1", role=Role.RESEARCH_EXTRACT)


def nhs_number(n: int) -> str:
    """A valid (modulus 11) NHS number in the 999 test range."""
    while True:
        nine = f"999{n:06d}"
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(nine)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return f"{nine}{check}"
        n += 1


def _patient(pid: str, nhs: str) -> dict:
    return {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
        "name": [{"family": "Testperson", "given": ["Ada"]}], "birthDate": "1970-01-02",
    }  # fmt: skip


def test_no_account_token_or_request_can_be_the_extract(world, app_client):
    with pytest.raises(AccountError, match="Carelight's own service"):
        world.accounts.create("sneaky", "research-extract", password="correct horse battery")
    tokens = access_services(app_client.app).tokens
    with pytest.raises(TokenError, match="No token is issued"):
        tokens.issue(SERVICE)
    # A token signed with the server's own key but naming the service role is still refused.
    forged = tokens.issue(world.who("researcher"))
    header, claims, _ = forged.split(".")
    body = orjson.loads(base64.urlsafe_b64decode(claims + "=="))
    body["role"] = "research-extract"
    payload = base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()
    signing_input = f"{header}.{payload}"
    signature = base64.urlsafe_b64encode(tokens._private_key.sign(signing_input.encode()))
    with pytest.raises(TokenError, match="No token may act as the research-extract"):
        tokens.verify(f"{signing_input}.{signature.rstrip(b'=').decode()}")
    # The gate refuses the role to any request-built context.
    with pytest.raises(FhirError) as refused:
        Gate(world.store).context(SERVICE, "HRESCH")
    assert refused.value.status == 403


def test_a_researchers_own_token_reads_nothing_identifiable(world, app_client):
    number = nhs_number(1)
    assert world.store.bulk_load([_patient("p1", number)], workers=0).errors == []
    headers = {**app_client.as_("researcher"), "X-Purpose-Of-Use": "HRESCH"}
    for path in (
        "/fhir/Patient/p1",
        "/fhir/Patient?family=testperson",
        "/fhir/Patient/p1/$everything",
    ):
        response = app_client.get(path, headers=headers)
        assert response.status_code == 403, path
        assert "Testperson" not in response.text and number not in response.text
    with pytest.raises(FhirError) as refused:
        Gate(world.store).context(world.who("researcher"), "HRESCH")
    assert refused.value.status == 403
    # The researcher's project, even approved, gives their token nothing more.
    g = world.governance
    p = g.create(world.who("researcher"), project_fields())
    g.transition(world.who("researcher"), p.id, "submit")
    g.transition(world.who("dac"), p.id, "approve")
    assert app_client.get("/fhir/Patient/p1", headers=headers).status_code == 403
    # Nor can it run the extract: no route does (it is the operator's command).
    for path in (f"/sde/api/projects/{p.id}/extract", f"/sde/api/projects/{p.id}/extracts"):
        response = app_client.post(path, headers=app_client.as_("researcher"))
        assert response.status_code in (400, 404, 405), path
    with world.store.engine.connect() as conn:
        assert conn.execute(select(sde_extract)).all() == []


def test_extract_access_follows_the_projects_recorded_state_and_basis(world):
    g = world.governance
    gate = Gate(world.store)
    p = g.create(world.who("researcher"), project_fields())
    with pytest.raises(FhirError, match="is draft"):
        extract_access(gate, p.id)
    g.transition(world.who("researcher"), p.id, "submit")
    with pytest.raises(FhirError, match="is submitted"):
        extract_access(gate, p.id)
    g.transition(world.who("dac"), p.id, "approve")
    ctx = extract_access(gate, p.id)
    assert ctx.principal.role is Role.RESEARCH_EXTRACT and ctx.purpose is Purpose.HRESCH
    assert ctx.opt_outs_apply
    exempt = g.create(world.who("researcher"), project_fields(legal_basis="legal-requirement"))
    g.transition(world.who("researcher"), exempt.id, "submit")
    g.transition(world.who("dac"), exempt.id, "approve")
    assert not extract_access(gate, exempt.id).opt_outs_apply
    with pytest.raises(FhirError, match="no project 404"):
        extract_access(gate, 404)


def test_opt_outs_in_sql_agree_with_the_rule(world):
    store = world.store
    people = [_patient(f"p{i}", nhs_number(i * 10)) for i in range(1, 7)]
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ")
    consents = [
        {**opt_out_consent("p1", [Purpose.HRESCH], when), "id": "c1"},  # out of research
        {**opt_out_consent("p2", [Purpose.HOPERAT], when), "id": "c2"},  # planning only
        {**opt_out_consent("p3", [Purpose.HRESCH], when), "id": "c3", "status": "inactive"},
        {**opt_out_consent("p4", [Purpose.HRESCH, Purpose.HOPERAT], when), "id": "c4"},
        {**opt_out_consent("p5", [Purpose.HRESCH], when), "id": "c5",
         "provision": {"type": "permit", "purpose": [{"code": "HRESCH"}]}},
    ]  # fmt: skip
    assert store.bulk_load([*people, *consents], workers=0).errors == []
    with store.engine.connect() as conn:
        for purpose in (Purpose.HRESCH, Purpose.HOPERAT):
            in_sql = set(conn.execute(select(opted_out_records(purpose).subquery())).scalars())
            assert in_sql == opted_out_patients(conn, purpose)
        assert set(conn.execute(select(opted_out_records("HRESCH").subquery())).scalars()) == {
            "p1", "p4"
        }  # fmt: skip
