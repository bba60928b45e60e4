"""The persons of the master patient index as FHIR R4 ``Person`` resources (read-only).

A Person is the index's view of one human being: ``Person.link`` names each of their Patient
records (one per source system) with an assurance level saying how the link was made, and
``identifier`` carries the NHS number their records agree on. This is the resource FHIR
defines for a master patient index; the index itself (``mpi_record``) is the truth, so these
are generated on read and cannot be written (use ``/mpi`` to change a link).

* ``GET /fhir/Person/{id}``
* ``GET /fhir/Person?patient=<id>`` (or ``link=Patient/<id>``), ``?identifier=<system>|<nhs>``,
  ``?_id=<id>``: a searchset Bundle.

Through the gate: a Person is shown with the links to the records the caller may see (a
professional may see who a person is, as for Patient; a patient only their own); with none,
it is not found. Every answer is logged like any read.

Assurance (``Person.link.assurance``): ``level4`` the NHS number, a reviewer's decision or a
split; ``level3`` an automatic probabilistic link; ``level2`` a record on its own (new, or
waiting for review).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from carelight.access.http import guard
from carelight.fhir.errors import FhirError, bad_request, error, not_found
from carelight.fhir.resource_types import NHS_NUMBER_SYSTEM
from carelight.fhir.store import instant_text
from carelight.identity.mpi.core import MR

router = APIRouter()
FHIR_JSON = "application/fhir+json"
MPI_SOURCE = "urn:carelight:master-patient-index"
ASSURANCE = {
    "nhs-number": "level4",
    "reviewed": "level4",
    "split": "level4",
    "probabilistic": "level3",
    "new": "level2",
    "review": "level2",
}
SEARCH_PARAMETERS = ("_id", "patient", "link", "identifier", "_format")


def _response(body: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=FHIR_JSON)


def _visible(store, ctx, patient_ids: list[str]) -> list:
    """The caller's view of these Patient records (those the gate lets them see)."""
    out = []
    for pid in patient_ids:
        try:
            out.append(store.read("Patient", pid, access=ctx))
        except FhirError as exc:
            if exc.status not in (403, 404, 410):
                raise
    return out


def person_resource(person: str, rows, visible: list) -> dict:
    """The Person for ``rows`` (mpi_record rows), linking only the ``visible`` records."""
    shown = {s.res_id: s for s in visible}
    links = [
        {
            "target": {"reference": f"Patient/{r.patient_id}"},
            "assurance": ASSURANCE.get(r.how, "level1"),
        }
        for r in rows
        if r.patient_id in shown
    ]
    numbers = {r.nhs_number for r in rows if r.nhs_number}
    resource: dict = {
        "resourceType": "Person",
        "id": person,
        "meta": {
            "lastUpdated": instant_text(max(r.decided_at for r in rows)),
            "source": MPI_SOURCE,
        },
    }
    if len(numbers) == 1:
        resource["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": numbers.pop()}]
    # Demographics from the first record shown that has an NHS number, else the first shown.
    first = next((shown[r.patient_id] for r in rows if r.patient_id in shown and r.nhs_number),
                 None) or (visible[0] if visible else None)  # fmt: skip
    if first is not None:
        doc = first.json()
        for key in ("name", "gender", "birthDate"):
            if key in doc:
                resource[key] = doc[key]
    resource["active"] = True
    resource["link"] = links
    return resource


def _rows(conn, person: str):
    return conn.execute(
        select(MR.c.patient_id, MR.c.how, MR.c.nhs_number, MR.c.decided_at)
        .where(MR.c.person == person)
        .order_by(MR.c.patient_id)
    ).all()


@router.get("/Person/{person}")
def read_person(request: Request, person: str) -> Response:
    store = request.app.state.store
    with guard(request, "read", "Person") as g:
        with store.read_conn() as conn:
            rows = _rows(conn, person)
        visible = _visible(store, g.ctx, [r.patient_id for r in rows])
        if not visible:
            raise not_found(f"Person/{person} is not known.")
        g.done(visible)
    return _response(person_resource(person, rows, visible))


def _persons_for(conn, key: str, value: str) -> list[str]:
    if key == "_id":
        ids = [v for v in value.split(",") if v]
        return list(
            conn.execute(select(MR.c.person).where(MR.c.person.in_(ids)).distinct()).scalars()
        )
    if key in ("patient", "link"):
        ids = [v.removeprefix("Patient/") for v in value.split(",") if v]
        if key == "link" and any(v.startswith(("Practitioner/", "RelatedPerson/")) for v in
                                 value.split(",")):  # fmt: skip
            ids = [v for v in ids if "/" not in v]
        return list(
            conn.execute(select(MR.c.person).where(MR.c.patient_id.in_(ids)).distinct()).scalars()
        )
    if key == "identifier":
        system, sep, number = value.rpartition("|")
        if sep and system not in ("", NHS_NUMBER_SYSTEM):
            return []
        number = number if sep else value
        return list(
            conn.execute(select(MR.c.person).where(MR.c.nhs_number == number).distinct()).scalars()
        )
    raise bad_request(
        f"Person does not support the search parameter '{key}'; "
        f"supported: {', '.join(p for p in SEARCH_PARAMETERS if p != '_format')}."
    )


@router.get("/Person")
def search_person(request: Request) -> Response:
    store = request.app.state.store
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    criteria = [(k, v) for k, v in pairs if k != "_format"]
    if not criteria:
        raise bad_request(
            "Search Person by patient, link, identifier or _id: the index is not listed whole."
        )
    names = ",".join(sorted({k for k, _ in criteria}))
    with guard(request, "search", f"Person?{names}") as g:
        with store.read_conn() as conn:
            found: set[str] | None = None
            for key, value in criteria:
                persons = set(_persons_for(conn, key, value))
                found = persons if found is None else found & persons
            results = []
            for person in sorted(found or ()):
                rows = _rows(conn, person)
                results.append((person, rows))
        shown = []
        entries = []
        for person, rows in results:
            visible = _visible(store, g.ctx, [r.patient_id for r in rows])
            if visible:
                shown += visible
                resource = person_resource(person, rows, visible)
                entries.append(
                    {
                        "fullUrl": f"{store.base_url}/Person/{person}",
                        "resource": resource,
                        "search": {"mode": "match"},
                    }
                )
        g.done(shown)
    return _response(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": entries,
        }
    )


@router.api_route("/Person", methods=["POST", "PUT", "PATCH", "DELETE"])
@router.api_route("/Person/{person}", methods=["POST", "PUT", "PATCH", "DELETE"])
def person_read_only(request: Request, person: str | None = None) -> Response:
    raise error(
        405,
        "not-supported",
        "Person resources are maintained by the master patient index and are read-only; "
        "a data-quality officer changes links through /mpi (review, split).",
    )
