"""Care relationships and person links: what the gate needs, indexed at write time.

The gate (``carelight.access.gate``) lets a professional see a person's record only with a
*legitimate relationship* between the person and the professional's organisation. Rather than
search for one on every request, each write records the relationships a resource states, in
the same transaction as its search index (``care_relationship``):

=================  ==========================================  ==============================
resource           organisation                                 kind, period
=================  ==========================================  ==============================
Patient            generalPractitioner (an Organization)        ``registration``, open
Encounter          serviceProvider                              ``encounter``, period
EpisodeOfCare      managingOrganization                         ``episode``, period
ServiceRequest     performer and requester (Organizations)      ``referral``, authoredOn
CareTeam           managingOrganization, participant.onBehalfOf, ``care-team``, period
                   participant.member (Organizations)
=================  ==========================================  ==============================

An organisation is keyed ``Organization/<id>`` when referenced, ``ods:<code>`` when given by its
ODS identifier (GP registrations are often written that way); a principal carries both.

``person_link`` groups the Patient records of one person (one per source system); the master
patient index (``carelight.identity.mpi``) writes it, so every check that goes through it follows
linkage. ``person_keys`` is the grouping by NHS number it replaced, kept for migration 0006.
"""

from __future__ import annotations

from carelight.fhir.extract import date_range, parse_reference
from carelight.fhir.resource_types import NHS_NUMBER_SYSTEM

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"

Row = tuple  # (patient_id, org, kind, start, end)


def org_key(ref: object) -> str | None:
    """``Organization/<id>`` or ``ods:<code>`` for a Reference to an organisation, else None."""
    if type(ref) is not dict:
        return None
    reference = ref.get("reference")
    if type(reference) is str:
        parsed = parse_reference(reference)
        if parsed and parsed[0] == "Organization" and parsed[2] is None:
            return f"Organization/{parsed[1]}"
        return None
    ident = ref.get("identifier")
    if type(ident) is dict and ident.get("system") == ODS_SYSTEM:
        value = ident.get("value")
        if type(value) is str and value:
            return f"ods:{value}"
    return None


def _patient_id(ref: object) -> str | None:
    if type(ref) is dict and type(ref.get("reference")) is str:
        parsed = parse_reference(ref["reference"])
        if parsed and parsed[0] == "Patient" and parsed[2] is None:
            return parsed[1]
    return None


def _period(period: object, *, open_end: bool) -> tuple[float | None, float | None]:
    """(start, end) epoch seconds; an absent end is open (None) or the start (a point)."""
    if type(period) is not dict:
        return None, None
    start = date_range(period["start"]) if type(period.get("start")) is str else None
    end = date_range(period["end"]) if type(period.get("end")) is str else None
    low = start[0] if start else None
    if end:
        return low, end[1]
    if open_end:
        return low, None
    return low, start[1] if start else None


def _rows(patient: str | None, orgs, kind: str, start, end) -> list[Row]:
    if patient is None:
        return []
    return [(patient, org, kind, start, end) for org in dict.fromkeys(o for o in orgs if o)]


def care_relationships(resource: dict) -> list[Row]:
    """The (patient, organisation, kind, start, end) relationships a resource states."""
    rt = resource.get("resourceType")
    if rt == "Patient":
        pid = resource.get("id")
        if type(pid) is not str:
            return []
        # Registration only: holding a record (managingOrganization) is not a relationship,
        # or a trust would be related for ever to everyone it ever saw.
        gps = resource.get("generalPractitioner")
        gp_orgs = [org_key(g) for g in gps] if type(gps) is list else []
        return _rows(pid, gp_orgs, "registration", None, None)
    if rt == "Encounter":
        status = resource.get("status")
        start, end = _period(resource.get("period"), open_end=status == "in-progress")
        return _rows(
            _patient_id(resource.get("subject")),
            [org_key(resource.get("serviceProvider"))],
            "encounter",
            start,
            end,
        )
    if rt == "EpisodeOfCare":
        start, end = _period(resource.get("period"), open_end=True)
        return _rows(
            _patient_id(resource.get("patient")),
            [org_key(resource.get("managingOrganization"))],
            "episode",
            start,
            end,
        )
    if rt == "ServiceRequest":
        if resource.get("status") in ("entered-in-error", "revoked", "draft"):
            return []
        authored = resource.get("authoredOn")
        when = date_range(authored) if type(authored) is str else None
        performers = resource.get("performer")
        orgs = [org_key(p) for p in performers] if type(performers) is list else []
        orgs.append(org_key(resource.get("requester")))
        start, end = (when[0], when[1]) if when else (None, None)
        return _rows(_patient_id(resource.get("subject")), orgs, "referral", start, end)
    if rt == "CareTeam":
        if resource.get("status") == "entered-in-error":
            return []
        start, end = _period(resource.get("period"), open_end=resource.get("status") != "inactive")
        managing = resource.get("managingOrganization")
        orgs = [org_key(m) for m in managing] if type(managing) is list else []
        participants = resource.get("participant")
        for p in participants if type(participants) is list else ():
            if type(p) is dict:
                orgs += [org_key(p.get("onBehalfOf")), org_key(p.get("member"))]
        return _rows(_patient_id(resource.get("subject")), orgs, "care-team", start, end)
    return []


def person_keys(resource: dict) -> list[tuple[str, str]]:
    """(patient_id, person key) for a Patient: the same key means the same person."""
    if resource.get("resourceType") != "Patient" or type(resource.get("id")) is not str:
        return []
    pid = resource["id"]
    identifiers = resource.get("identifier")
    for ident in identifiers if type(identifiers) is list else ():
        if type(ident) is dict and ident.get("system") == NHS_NUMBER_SYSTEM:
            value = ident.get("value")
            if type(value) is str and value:
                return [(pid, f"nhs:{value}")]
    return [(pid, f"patient:{pid}")]
