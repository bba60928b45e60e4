"""The search-parameter registry: the R4 search parameters Carelight supports, per resource type.

Each row keeps the R4 name, type, FHIRPath expression and reference targets (from the R4
search-parameter registry, v4.0.1). ``paths`` is what :mod:`carelight.fhir.extract` walks, in
the grammar of :mod:`carelight.fhir.fhirpath`; it is derived from the expression when the
expression is simple and written out where it is not (choice elements, ``exists()``, ...).

Common parameters (every type, base ``Resource``):

* ``_id`` and ``_lastUpdated`` come from the store's own columns; they are declared with
  ``paths=()`` (see :data:`STORE_HANDLED`) so that extraction never emits them.
* ``_tag``, ``_security`` (token), ``_profile``, ``_source`` (uri) are extracted from ``meta``.

``targets=()`` on a reference parameter means any resource type (R4 "Any").
Composite parameters are declared with ``paths=()``; the search layer rejects them as
unsupported. Deviations from R4: ``Flag`` also has ``status`` and ``category`` (as in R5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carelight.fhir.fhirpath import paths_from_expression
from carelight.fhir.resource_types import SUPPORTED_TYPES

PARAM_TYPES = frozenset(
    {"token", "string", "date", "number", "quantity", "reference", "uri", "composite", "special"}
)

# Parameters the store answers from its own columns: never emitted by extraction.
STORE_HANDLED = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str  # e.g. "birthdate"
    type: str  # "token" | "string" | "date" | "number" | "quantity" | "reference" | "uri" | ...
    base: str  # resource type, e.g. "Patient" ("Resource" for the common parameters)
    expression: str  # the R4 FHIRPath expression (for docs / CapabilityStatement)
    paths: tuple[str, ...]  # what extraction walks (carelight.fhir.fhirpath grammar)
    targets: tuple[str, ...] = ()  # reference target types; () = any
    description: str = ""

    @property
    def store_handled(self) -> bool:
        """True for ``_id``/``_lastUpdated``: the store answers them, extraction emits nothing."""
        return self.name in STORE_HANDLED


# --- table helpers: one row = (name, type, expression, targets, paths or None) -----------------

_Row = tuple[str, str, str, tuple[str, ...], "tuple[str, ...] | None", str]


def _row(
    name: str,
    type_: str,
    expression: str,
    targets: tuple[str, ...] = (),
    paths: tuple[str, ...] | None = None,
    description: str = "",
) -> _Row:
    return (name, type_, expression, targets, paths, description)


def tok(name: str, expression: str, paths: tuple[str, ...] | None = None, d: str = "") -> _Row:
    return _row(name, "token", expression, (), paths, d)


def st(name: str, expression: str, paths: tuple[str, ...] | None = None, d: str = "") -> _Row:
    return _row(name, "string", expression, (), paths, d)


def dt(name: str, expression: str, paths: tuple[str, ...] | None = None, d: str = "") -> _Row:
    return _row(name, "date", expression, (), paths, d)


def qty(name: str, expression: str, paths: tuple[str, ...] | None = None, d: str = "") -> _Row:
    return _row(name, "quantity", expression, (), paths, d)


def uri(name: str, expression: str, paths: tuple[str, ...] | None = None, d: str = "") -> _Row:
    return _row(name, "uri", expression, (), paths, d)


def ref(
    name: str, expression: str, *targets: str, paths: tuple[str, ...] | None = None, d: str = ""
) -> _Row:
    return _row(name, "reference", expression, tuple(targets), paths, d)


def composite(name: str, expression: str, d: str = "") -> _Row:
    return _row(name, "composite", expression, (), (), d)


def _address(t: str) -> tuple[_Row, ...]:
    return (
        st("address", f"{t}.address", d="Any part of an address"),
        st("address-city", f"{t}.address.city"),
        st("address-country", f"{t}.address.country"),
        st("address-postalcode", f"{t}.address.postalCode"),
        st("address-state", f"{t}.address.state"),
        tok("address-use", f"{t}.address.use"),
    )


def _telecom(t: str) -> tuple[_Row, ...]:
    return (
        tok("email", f"{t}.telecom.where(system='email')"),
        tok("phone", f"{t}.telecom.where(system='phone')"),
        tok("telecom", f"{t}.telecom"),
    )


def _pat(t: str, element: str = "subject") -> _Row:
    return ref("patient", f"{t}.{element}.where(resolve() is Patient)", "Patient")


def _ident(t: str) -> _Row:
    return tok("identifier", f"{t}.identifier", d="A business identifier")


_PRACT_ORG_ROLE = ("Practitioner", "Organization", "PractitionerRole")
_PERSONS = ("Practitioner", "Organization", "Patient", "PractitionerRole", "RelatedPerson")

COMMON: tuple[_Row, ...] = (
    _row("_id", "token", "Resource.id", paths=(), description="Logical id of this artifact"),
    _row(
        "_lastUpdated",
        "date",
        "Resource.meta.lastUpdated",
        paths=(),
        description="When the resource version last changed",
    ),
    tok("_tag", "Resource.meta.tag", d="Tags applied to this resource"),
    tok("_security", "Resource.meta.security", d="Security labels applied to this resource"),
    uri("_profile", "Resource.meta.profile", d="Profiles this resource claims to conform to"),
    uri("_source", "Resource.meta.source", d="Identifies where the resource comes from"),
)

TABLES: dict[str, tuple[_Row, ...]] = {
    "Patient": (
        tok("active", "Patient.active"),
        *_address("Patient"),
        dt("birthdate", "Patient.birthDate", d="The patient's date of birth"),
        dt("death-date", "(Patient.deceased as dateTime)"),
        tok(
            "deceased",
            "Patient.deceased.exists() and Patient.deceased != false",
            paths=("Patient.deceased[x].notFalse()",),
        ),
        *_telecom("Patient"),
        st("family", "Patient.name.family"),
        tok("gender", "Patient.gender"),
        ref(
            "general-practitioner",
            "Patient.generalPractitioner",
            "Organization",
            "Practitioner",
            "PractitionerRole",
        ),
        st("given", "Patient.name.given"),
        _ident("Patient"),
        tok("language", "Patient.communication.language"),
        ref("link", "Patient.link.other", "Patient", "RelatedPerson"),
        st("name", "Patient.name", d="Any part of a name"),
        ref("organization", "Patient.managingOrganization", "Organization"),
    ),
    "RelatedPerson": (
        tok("active", "RelatedPerson.active"),
        *_address("RelatedPerson"),
        dt("birthdate", "RelatedPerson.birthDate"),
        *_telecom("RelatedPerson"),
        tok("gender", "RelatedPerson.gender"),
        _ident("RelatedPerson"),
        st("name", "RelatedPerson.name"),
        ref("patient", "RelatedPerson.patient", "Patient"),
        tok("relationship", "RelatedPerson.relationship"),
    ),
    "Practitioner": (
        tok("active", "Practitioner.active"),
        *_address("Practitioner"),
        tok("communication", "Practitioner.communication"),
        *_telecom("Practitioner"),
        st("family", "Practitioner.name.family"),
        tok("gender", "Practitioner.gender"),
        st("given", "Practitioner.name.given"),
        _ident("Practitioner"),
        st("name", "Practitioner.name"),
    ),
    "PractitionerRole": (
        tok("active", "PractitionerRole.active"),
        dt("date", "PractitionerRole.period"),
        *_telecom("PractitionerRole"),
        ref("endpoint", "PractitionerRole.endpoint", "Endpoint"),
        _ident("PractitionerRole"),
        ref("location", "PractitionerRole.location", "Location"),
        ref("organization", "PractitionerRole.organization", "Organization"),
        ref("practitioner", "PractitionerRole.practitioner", "Practitioner"),
        tok("role", "PractitionerRole.code"),
        ref("service", "PractitionerRole.healthcareService", "HealthcareService"),
        tok("specialty", "PractitionerRole.specialty"),
    ),
    "Organization": (
        tok("active", "Organization.active"),
        *_address("Organization"),
        ref("endpoint", "Organization.endpoint", "Endpoint"),
        _ident("Organization"),
        st("name", "Organization.name | Organization.alias"),
        ref("partof", "Organization.partOf", "Organization"),
        tok("type", "Organization.type"),
    ),
    "Location": (
        *_address("Location"),
        ref("endpoint", "Location.endpoint", "Endpoint"),
        _ident("Location"),
        st("name", "Location.name | Location.alias"),
        tok("operational-status", "Location.operationalStatus"),
        ref("organization", "Location.managingOrganization", "Organization"),
        ref("partof", "Location.partOf", "Location"),
        tok("status", "Location.status"),
        tok("type", "Location.type"),
    ),
    "Encounter": (
        ref("account", "Encounter.account", "Account"),
        ref("appointment", "Encounter.appointment", "Appointment"),
        ref("based-on", "Encounter.basedOn", "ServiceRequest"),
        tok("class", "Encounter.class"),
        dt("date", "Encounter.period"),
        ref("diagnosis", "Encounter.diagnosis.condition", "Condition", "Procedure"),
        ref("episode-of-care", "Encounter.episodeOfCare", "EpisodeOfCare"),
        _ident("Encounter"),
        qty("length", "Encounter.length"),
        ref("location", "Encounter.location.location", "Location"),
        dt("location-period", "Encounter.location.period"),
        ref("part-of", "Encounter.partOf", "Encounter"),
        ref(
            "participant",
            "Encounter.participant.individual",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        tok("participant-type", "Encounter.participant.type"),
        _pat("Encounter"),
        ref(
            "practitioner",
            "Encounter.participant.individual.where(resolve() is Practitioner)",
            "Practitioner",
        ),
        tok("reason-code", "Encounter.reasonCode"),
        ref(
            "reason-reference",
            "Encounter.reasonReference",
            "Condition",
            "Procedure",
            "Observation",
            "ImmunizationRecommendation",
        ),
        ref("service-provider", "Encounter.serviceProvider", "Organization"),
        tok("special-arrangement", "Encounter.hospitalization.specialArrangement"),
        tok("status", "Encounter.status"),
        ref("subject", "Encounter.subject", "Patient", "Group"),
        tok("type", "Encounter.type"),
    ),
    "EpisodeOfCare": (
        ref("care-manager", "EpisodeOfCare.careManager", "Practitioner"),
        ref("condition", "EpisodeOfCare.diagnosis.condition", "Condition"),
        dt("date", "EpisodeOfCare.period"),
        _ident("EpisodeOfCare"),
        ref("incoming-referral", "EpisodeOfCare.referralRequest", "ServiceRequest"),
        ref("organization", "EpisodeOfCare.managingOrganization", "Organization"),
        ref("patient", "EpisodeOfCare.patient", "Patient"),
        tok("status", "EpisodeOfCare.status"),
        tok("type", "EpisodeOfCare.type"),
    ),
    "Condition": (
        qty("abatement-age", "Condition.abatement.as(Age) | Condition.abatement.as(Range)"),
        dt("abatement-date", "Condition.abatement.as(dateTime) | Condition.abatement.as(Period)"),
        st("abatement-string", "Condition.abatement.as(string)"),
        ref(
            "asserter",
            "Condition.asserter",
            "Practitioner",
            "Patient",
            "PractitionerRole",
            "RelatedPerson",
        ),
        tok("body-site", "Condition.bodySite"),
        tok("category", "Condition.category"),
        tok("clinical-status", "Condition.clinicalStatus"),
        tok("code", "Condition.code"),
        ref("encounter", "Condition.encounter", "Encounter"),
        tok("evidence", "Condition.evidence.code"),
        ref("evidence-detail", "Condition.evidence.detail"),
        _ident("Condition"),
        qty("onset-age", "Condition.onset.as(Age) | Condition.onset.as(Range)"),
        dt("onset-date", "Condition.onset.as(dateTime) | Condition.onset.as(Period)"),
        st("onset-info", "Condition.onset.as(string)"),
        _pat("Condition"),
        dt("recorded-date", "Condition.recordedDate"),
        tok("severity", "Condition.severity"),
        tok("stage", "Condition.stage.summary"),
        ref("subject", "Condition.subject", "Patient", "Group"),
        tok("verification-status", "Condition.verificationStatus"),
    ),
    "Observation": (
        ref(
            "based-on",
            "Observation.basedOn",
            "CarePlan",
            "DeviceRequest",
            "ImmunizationRecommendation",
            "MedicationRequest",
            "NutritionOrder",
            "ServiceRequest",
        ),
        tok("category", "Observation.category"),
        tok("code", "Observation.code"),
        composite("code-value-concept", "Observation"),
        composite("code-value-quantity", "Observation"),
        tok("combo-code", "Observation.code | Observation.component.code"),
        tok(
            "combo-data-absent-reason",
            "Observation.dataAbsentReason | Observation.component.dataAbsentReason",
        ),
        tok(
            "combo-value-concept",
            "Observation.value.as(CodeableConcept) | "
            "Observation.component.value.as(CodeableConcept)",
        ),
        qty(
            "combo-value-quantity",
            "(Observation.value as Quantity) | (Observation.value as SampledData) | "
            "(Observation.component.value as Quantity) | "
            "(Observation.component.value as SampledData)",
            paths=("Observation.valueQuantity", "Observation.component.valueQuantity"),
        ),
        tok("component-code", "Observation.component.code"),
        tok("component-data-absent-reason", "Observation.component.dataAbsentReason"),
        tok("component-value-concept", "(Observation.component.value as CodeableConcept)"),
        qty(
            "component-value-quantity",
            "(Observation.component.value as Quantity) | "
            "(Observation.component.value as SampledData)",
            paths=("Observation.component.valueQuantity",),
        ),
        tok("data-absent-reason", "Observation.dataAbsentReason"),
        dt("date", "Observation.effective", paths=("Observation.effective[x]",)),
        ref(
            "derived-from",
            "Observation.derivedFrom",
            "DocumentReference",
            "ImagingStudy",
            "Media",
            "QuestionnaireResponse",
            "Observation",
            "MolecularSequence",
        ),
        ref("device", "Observation.device", "Device", "DeviceMetric"),
        ref("encounter", "Observation.encounter", "Encounter"),
        ref("focus", "Observation.focus"),
        ref(
            "has-member",
            "Observation.hasMember",
            "Observation",
            "QuestionnaireResponse",
            "MolecularSequence",
        ),
        _ident("Observation"),
        tok("method", "Observation.method"),
        ref(
            "part-of",
            "Observation.partOf",
            "MedicationAdministration",
            "MedicationDispense",
            "MedicationStatement",
            "Procedure",
            "Immunization",
            "ImagingStudy",
        ),
        _pat("Observation"),
        ref(
            "performer",
            "Observation.performer",
            "Practitioner",
            "Organization",
            "Patient",
            "PractitionerRole",
            "CareTeam",
            "RelatedPerson",
        ),
        ref("specimen", "Observation.specimen", "Specimen"),
        tok("status", "Observation.status"),
        ref("subject", "Observation.subject", "Group", "Device", "Patient", "Location"),
        tok("value-concept", "(Observation.value as CodeableConcept)"),
        dt("value-date", "(Observation.value as dateTime) | (Observation.value as Period)"),
        qty(
            "value-quantity",
            "(Observation.value as Quantity) | (Observation.value as SampledData)",
            paths=("Observation.valueQuantity",),
        ),
        st("value-string", "(Observation.value as string)"),
    ),
    "DiagnosticReport": (
        ref(
            "based-on",
            "DiagnosticReport.basedOn",
            "CarePlan",
            "ImmunizationRecommendation",
            "MedicationRequest",
            "NutritionOrder",
            "ServiceRequest",
        ),
        tok("category", "DiagnosticReport.category"),
        tok("code", "DiagnosticReport.code"),
        tok("conclusion", "DiagnosticReport.conclusionCode"),
        dt("date", "DiagnosticReport.effective", paths=("DiagnosticReport.effective[x]",)),
        ref("encounter", "DiagnosticReport.encounter", "Encounter"),
        _ident("DiagnosticReport"),
        dt("issued", "DiagnosticReport.issued"),
        ref("media", "DiagnosticReport.media.link", "Media"),
        _pat("DiagnosticReport"),
        ref("performer", "DiagnosticReport.performer", *_PRACT_ORG_ROLE, "CareTeam"),
        ref("result", "DiagnosticReport.result", "Observation"),
        ref(
            "results-interpreter",
            "DiagnosticReport.resultsInterpreter",
            *_PRACT_ORG_ROLE,
            "CareTeam",
        ),
        ref("specimen", "DiagnosticReport.specimen", "Specimen"),
        tok("status", "DiagnosticReport.status"),
        ref("subject", "DiagnosticReport.subject", "Group", "Device", "Patient", "Location"),
    ),
    "MedicationRequest": (
        dt("authoredon", "MedicationRequest.authoredOn"),
        tok("category", "MedicationRequest.category"),
        tok("code", "(MedicationRequest.medication as CodeableConcept)"),
        dt("date", "MedicationRequest.dosageInstruction.timing.event"),
        ref("encounter", "MedicationRequest.encounter", "Encounter"),
        _ident("MedicationRequest"),
        ref("intended-dispenser", "MedicationRequest.dispenseRequest.performer", "Organization"),
        ref(
            "intended-performer",
            "MedicationRequest.performer",
            *_PERSONS,
            "Device",
            "CareTeam",
        ),
        tok("intended-performertype", "MedicationRequest.performerType"),
        tok("intent", "MedicationRequest.intent"),
        ref("medication", "(MedicationRequest.medication as Reference)", "Medication"),
        _pat("MedicationRequest"),
        tok("priority", "MedicationRequest.priority"),
        ref("requester", "MedicationRequest.requester", *_PERSONS, "Device"),
        tok("status", "MedicationRequest.status"),
        ref("subject", "MedicationRequest.subject", "Group", "Patient"),
    ),
    "MedicationStatement": (
        tok("category", "MedicationStatement.category"),
        tok("code", "(MedicationStatement.medication as CodeableConcept)"),
        ref("context", "MedicationStatement.context", "EpisodeOfCare", "Encounter"),
        dt(
            "effective",
            "MedicationStatement.effective",
            paths=("MedicationStatement.effective[x]",),
        ),
        _ident("MedicationStatement"),
        ref("medication", "(MedicationStatement.medication as Reference)", "Medication"),
        ref(
            "part-of",
            "MedicationStatement.partOf",
            "MedicationDispense",
            "Observation",
            "MedicationAdministration",
            "Procedure",
            "MedicationStatement",
        ),
        _pat("MedicationStatement"),
        ref("source", "MedicationStatement.informationSource", *_PERSONS),
        tok("status", "MedicationStatement.status"),
        ref("subject", "MedicationStatement.subject", "Group", "Patient"),
    ),
    "Procedure": (
        ref("based-on", "Procedure.basedOn", "CarePlan", "ServiceRequest"),
        tok("category", "Procedure.category"),
        tok("code", "Procedure.code"),
        dt("date", "Procedure.performed", paths=("Procedure.performed[x]",)),
        ref("encounter", "Procedure.encounter", "Encounter"),
        _ident("Procedure"),
        ref(
            "instantiates-canonical",
            "Procedure.instantiatesCanonical",
            "PlanDefinition",
            "ActivityDefinition",
            "Measure",
            "OperationDefinition",
            "Questionnaire",
        ),
        uri("instantiates-uri", "Procedure.instantiatesUri"),
        ref("location", "Procedure.location", "Location"),
        ref("part-of", "Procedure.partOf", "Observation", "Procedure", "MedicationAdministration"),
        _pat("Procedure"),
        ref("performer", "Procedure.performer.actor", *_PERSONS, "Device"),
        tok("reason-code", "Procedure.reasonCode"),
        ref(
            "reason-reference",
            "Procedure.reasonReference",
            "Condition",
            "Observation",
            "Procedure",
            "DiagnosticReport",
            "DocumentReference",
        ),
        tok("status", "Procedure.status"),
        ref("subject", "Procedure.subject", "Group", "Patient"),
    ),
    "Immunization": (
        dt("date", "Immunization.occurrence", paths=("Immunization.occurrence[x]",)),
        _ident("Immunization"),
        ref("location", "Immunization.location", "Location"),
        st("lot-number", "Immunization.lotNumber"),
        ref("manufacturer", "Immunization.manufacturer", "Organization"),
        ref("patient", "Immunization.patient", "Patient"),
        ref("performer", "Immunization.performer.actor", *_PRACT_ORG_ROLE),
        ref("reaction", "Immunization.reaction.detail", "Observation"),
        dt("reaction-date", "Immunization.reaction.date"),
        tok("reason-code", "Immunization.reasonCode"),
        ref(
            "reason-reference",
            "Immunization.reasonReference",
            "Condition",
            "Observation",
            "DiagnosticReport",
        ),
        st("series", "Immunization.protocolApplied.series"),
        tok("status", "Immunization.status"),
        tok("status-reason", "Immunization.statusReason"),
        tok("target-disease", "Immunization.protocolApplied.targetDisease"),
        tok("vaccine-code", "Immunization.vaccineCode"),
    ),
    "AllergyIntolerance": (
        ref(
            "asserter",
            "AllergyIntolerance.asserter",
            "Practitioner",
            "Patient",
            "PractitionerRole",
            "RelatedPerson",
        ),
        tok("category", "AllergyIntolerance.category"),
        tok("clinical-status", "AllergyIntolerance.clinicalStatus"),
        tok("code", "AllergyIntolerance.code | AllergyIntolerance.reaction.substance"),
        tok("criticality", "AllergyIntolerance.criticality"),
        dt("date", "AllergyIntolerance.recordedDate"),
        _ident("AllergyIntolerance"),
        dt("last-date", "AllergyIntolerance.lastOccurrence"),
        tok("manifestation", "AllergyIntolerance.reaction.manifestation"),
        dt("onset", "AllergyIntolerance.reaction.onset"),
        ref("patient", "AllergyIntolerance.patient", "Patient"),
        ref(
            "recorder",
            "AllergyIntolerance.recorder",
            "Practitioner",
            "Patient",
            "PractitionerRole",
            "RelatedPerson",
        ),
        tok("route", "AllergyIntolerance.reaction.exposureRoute"),
        tok("severity", "AllergyIntolerance.reaction.severity"),
        tok("type", "AllergyIntolerance.type"),
        tok("verification-status", "AllergyIntolerance.verificationStatus"),
    ),
    "CarePlan": (
        tok("activity-code", "CarePlan.activity.detail.code"),
        dt(
            "activity-date",
            "CarePlan.activity.detail.scheduled",
            paths=("CarePlan.activity.detail.scheduled[x]",),
        ),
        ref(
            "activity-reference",
            "CarePlan.activity.reference",
            "Appointment",
            "MedicationRequest",
            "Task",
            "NutritionOrder",
            "RequestGroup",
            "VisionPrescription",
            "DeviceRequest",
            "ServiceRequest",
            "CommunicationRequest",
        ),
        ref("based-on", "CarePlan.basedOn", "CarePlan"),
        ref("care-team", "CarePlan.careTeam", "CareTeam"),
        tok("category", "CarePlan.category"),
        ref("condition", "CarePlan.addresses", "Condition"),
        dt("date", "CarePlan.period"),
        ref("encounter", "CarePlan.encounter", "Encounter"),
        ref("goal", "CarePlan.goal", "Goal"),
        _ident("CarePlan"),
        ref(
            "instantiates-canonical",
            "CarePlan.instantiatesCanonical",
            "Questionnaire",
            "Measure",
            "PlanDefinition",
            "OperationDefinition",
            "ActivityDefinition",
        ),
        uri("instantiates-uri", "CarePlan.instantiatesUri"),
        tok("intent", "CarePlan.intent"),
        ref("part-of", "CarePlan.partOf", "CarePlan"),
        _pat("CarePlan"),
        ref(
            "performer",
            "CarePlan.activity.detail.performer",
            *_PERSONS,
            "CareTeam",
            "Device",
            "HealthcareService",
        ),
        ref("replaces", "CarePlan.replaces", "CarePlan"),
        tok("status", "CarePlan.status"),
        ref("subject", "CarePlan.subject", "Group", "Patient"),
    ),
    "CareTeam": (
        tok("category", "CareTeam.category"),
        dt("date", "CareTeam.period"),
        ref("encounter", "CareTeam.encounter", "Encounter"),
        _ident("CareTeam"),
        ref("participant", "CareTeam.participant.member", *_PERSONS, "CareTeam"),
        _pat("CareTeam"),
        tok("status", "CareTeam.status"),
        ref("subject", "CareTeam.subject", "Group", "Patient"),
    ),
    "Goal": (
        tok("achievement-status", "Goal.achievementStatus"),
        tok("category", "Goal.category"),
        _ident("Goal"),
        tok("lifecycle-status", "Goal.lifecycleStatus"),
        _pat("Goal"),
        dt("start-date", "(Goal.start as date)"),
        ref("subject", "Goal.subject", "Group", "Organization", "Patient"),
        dt("target-date", "(Goal.target.due as date)"),
    ),
    "Questionnaire": (
        tok("code", "Questionnaire.item.code"),
        tok("context", "(Questionnaire.useContext.value as CodeableConcept)"),
        qty(
            "context-quantity",
            "(Questionnaire.useContext.value as Quantity) | "
            "(Questionnaire.useContext.value as Range)",
            paths=("Questionnaire.useContext.valueQuantity",),
        ),
        tok("context-type", "Questionnaire.useContext.code"),
        dt("date", "Questionnaire.date"),
        uri("definition", "Questionnaire.item.definition"),
        st("description", "Questionnaire.description"),
        dt("effective", "Questionnaire.effectivePeriod"),
        _ident("Questionnaire"),
        tok("jurisdiction", "Questionnaire.jurisdiction"),
        st("name", "Questionnaire.name"),
        st("publisher", "Questionnaire.publisher"),
        tok("status", "Questionnaire.status"),
        tok("subject-type", "Questionnaire.subjectType"),
        st("title", "Questionnaire.title"),
        uri("url", "Questionnaire.url"),
        tok("version", "Questionnaire.version"),
    ),
    "QuestionnaireResponse": (
        ref("author", "QuestionnaireResponse.author", *_PERSONS, "Device"),
        dt("authored", "QuestionnaireResponse.authored"),
        ref("based-on", "QuestionnaireResponse.basedOn", "CarePlan", "ServiceRequest"),
        ref("encounter", "QuestionnaireResponse.encounter", "Encounter"),
        _ident("QuestionnaireResponse"),
        ref("part-of", "QuestionnaireResponse.partOf", "Observation", "Procedure"),
        _pat("QuestionnaireResponse"),
        ref("questionnaire", "QuestionnaireResponse.questionnaire", "Questionnaire"),
        ref(
            "source",
            "QuestionnaireResponse.source",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
        ),
        tok("status", "QuestionnaireResponse.status"),
        ref("subject", "QuestionnaireResponse.subject"),
    ),
    "ServiceRequest": (
        dt("authored", "ServiceRequest.authoredOn"),
        ref(
            "based-on",
            "ServiceRequest.basedOn",
            "CarePlan",
            "MedicationRequest",
            "ServiceRequest",
        ),
        tok("body-site", "ServiceRequest.bodySite"),
        tok("category", "ServiceRequest.category"),
        tok("code", "ServiceRequest.code"),
        ref("encounter", "ServiceRequest.encounter", "Encounter"),
        _ident("ServiceRequest"),
        ref(
            "instantiates-canonical",
            "ServiceRequest.instantiatesCanonical",
            "PlanDefinition",
            "ActivityDefinition",
        ),
        uri("instantiates-uri", "ServiceRequest.instantiatesUri"),
        tok("intent", "ServiceRequest.intent"),
        dt("occurrence", "ServiceRequest.occurrence", paths=("ServiceRequest.occurrence[x]",)),
        _pat("ServiceRequest"),
        ref(
            "performer",
            "ServiceRequest.performer",
            *_PERSONS,
            "CareTeam",
            "HealthcareService",
            "Device",
        ),
        tok("performer-type", "ServiceRequest.performerType"),
        tok("priority", "ServiceRequest.priority"),
        ref("replaces", "ServiceRequest.replaces", "ServiceRequest"),
        ref("requester", "ServiceRequest.requester", *_PERSONS, "Device"),
        tok("requisition", "ServiceRequest.requisition"),
        ref("specimen", "ServiceRequest.specimen", "Specimen"),
        tok("status", "ServiceRequest.status"),
        ref("subject", "ServiceRequest.subject", "Group", "Device", "Patient", "Location"),
    ),
    "Flag": (
        ref(
            "author",
            "Flag.author",
            "Device",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
        ),
        tok("category", "Flag.category", d="Carelight addition (R5): the flag's category"),
        dt("date", "Flag.period"),
        ref("encounter", "Flag.encounter", "Encounter"),
        _ident("Flag"),
        _pat("Flag"),
        tok("status", "Flag.status", d="Carelight addition (R5): active | inactive | ..."),
        ref(
            "subject",
            "Flag.subject",
            "Patient",
            "Location",
            "Group",
            "Organization",
            "Practitioner",
            "PlanDefinition",
            "Medication",
            "PractitionerRole",
        ),
    ),
    "DocumentReference": (
        ref("authenticator", "DocumentReference.authenticator", *_PRACT_ORG_ROLE),
        ref("author", "DocumentReference.author", *_PERSONS, "Device"),
        tok("category", "DocumentReference.category"),
        tok("contenttype", "DocumentReference.content.attachment.contentType"),
        ref("custodian", "DocumentReference.custodian", "Organization"),
        dt("date", "DocumentReference.date"),
        st("description", "DocumentReference.description"),
        ref("encounter", "DocumentReference.context.encounter", "Encounter", "EpisodeOfCare"),
        tok("event", "DocumentReference.context.event"),
        tok("facility", "DocumentReference.context.facilityType"),
        tok("format", "DocumentReference.content.format"),
        tok(
            "identifier",
            "DocumentReference.masterIdentifier | DocumentReference.identifier",
        ),
        tok("language", "DocumentReference.content.attachment.language"),
        uri("location", "DocumentReference.content.attachment.url"),
        _pat("DocumentReference"),
        dt("period", "DocumentReference.context.period"),
        ref("related", "DocumentReference.context.related"),
        ref("relatesto", "DocumentReference.relatesTo.target", "DocumentReference"),
        tok("relation", "DocumentReference.relatesTo.code"),
        tok("security-label", "DocumentReference.securityLabel"),
        tok("setting", "DocumentReference.context.practiceSetting"),
        tok("status", "DocumentReference.status"),
        ref("subject", "DocumentReference.subject", "Practitioner", "Group", "Device", "Patient"),
        tok("type", "DocumentReference.type"),
    ),
    "Consent": (
        tok("action", "Consent.provision.action"),
        ref(
            "actor",
            "Consent.provision.actor.reference",
            *_PERSONS,
            "Device",
            "Group",
            "CareTeam",
        ),
        tok("category", "Consent.category"),
        ref("consentor", "Consent.performer", *_PERSONS),
        ref("data", "Consent.provision.data.reference"),
        dt("date", "Consent.dateTime"),
        _ident("Consent"),
        ref("organization", "Consent.organization", "Organization"),
        ref("patient", "Consent.patient", "Patient"),
        dt("period", "Consent.provision.period"),
        tok("purpose", "Consent.provision.purpose"),
        tok("scope", "Consent.scope"),
        tok("security-label", "Consent.provision.securityLabel"),
        ref(
            "source-reference",
            "Consent.source",
            "Consent",
            "DocumentReference",
            "Contract",
            "QuestionnaireResponse",
            paths=("Consent.sourceReference",),
        ),
        tok("status", "Consent.status"),
    ),
    "Provenance": (
        ref("agent", "Provenance.agent.who", *_PERSONS, "Device"),
        tok("agent-role", "Provenance.agent.role"),
        tok("agent-type", "Provenance.agent.type"),
        ref("entity", "Provenance.entity.what"),
        ref("location", "Provenance.location", "Location"),
        _pat("Provenance", "target"),
        dt("recorded", "Provenance.recorded"),
        tok("signature-type", "Provenance.signature.type"),
        ref("target", "Provenance.target"),
        dt("when", "(Provenance.occurred as dateTime)"),
    ),
    "Task": (
        dt("authored-on", "Task.authoredOn"),
        ref("based-on", "Task.basedOn"),
        tok("business-status", "Task.businessStatus"),
        tok("code", "Task.code"),
        ref("encounter", "Task.encounter", "Encounter"),
        ref("focus", "Task.focus"),
        tok("group-identifier", "Task.groupIdentifier"),
        _ident("Task"),
        tok("intent", "Task.intent"),
        dt("modified", "Task.lastModified"),
        ref(
            "owner",
            "Task.owner",
            *_PERSONS,
            "CareTeam",
            "Device",
            "HealthcareService",
        ),
        ref("part-of", "Task.partOf", "Task"),
        _pat("Task", "for"),
        tok("performer", "Task.performerType"),
        dt("period", "Task.executionPeriod"),
        tok("priority", "Task.priority"),
        ref("requester", "Task.requester", *_PERSONS, "Device"),
        tok("status", "Task.status"),
        ref("subject", "Task.for"),
    ),
    "Group": (
        tok("actual", "Group.actual"),
        tok("characteristic", "Group.characteristic.code"),
        composite("characteristic-value", "Group.characteristic"),
        tok("code", "Group.code"),
        tok("exclude", "Group.characteristic.exclude"),
        _ident("Group"),
        ref("managing-entity", "Group.managingEntity", *_PRACT_ORG_ROLE, "RelatedPerson"),
        ref(
            "member",
            "Group.member.entity",
            "Practitioner",
            "Group",
            "Device",
            "Medication",
            "Patient",
            "Substance",
            "PractitionerRole",
        ),
        tok("type", "Group.type"),
        tok(
            "value",
            "(Group.characteristic.value as CodeableConcept) | (Group.characteristic.value as boolean)",
        ),
    ),
}


def _build() -> dict[str, dict[str, SearchParam]]:
    registry: dict[str, dict[str, SearchParam]] = {}
    common = [_make("Resource", row) for row in COMMON]
    for rtype in SUPPORTED_TYPES:
        params: dict[str, SearchParam] = {p.name: p for p in common}
        for row in TABLES[rtype]:
            param = _make(rtype, row)
            if param.name in params:
                raise ValueError(f"duplicate search parameter {rtype}.{param.name}")
            params[param.name] = param
        registry[rtype] = dict(sorted(params.items()))
    unknown = set(TABLES) - set(SUPPORTED_TYPES)
    if unknown:
        raise ValueError(f"search parameters for unsupported types: {sorted(unknown)}")
    return registry


def _make(base: str, row: _Row) -> SearchParam:
    name, type_, expression, targets, paths, description = row
    if type_ not in PARAM_TYPES:
        raise ValueError(f"bad search parameter type {type_!r} for {base}.{name}")
    if paths is None:
        paths = paths_from_expression(expression)
    return SearchParam(name, type_, base, expression, paths, targets, description)


REGISTRY: dict[str, dict[str, SearchParam]] = _build()
COMMON_PARAMS: dict[str, SearchParam] = {row[0]: _make("Resource", row) for row in COMMON}


@dataclass(frozen=True, slots=True)
class Stored:
    """Where a parameter's index rows are: under ``names`` (a union), and, for a reference
    parameter that is another one restricted to a type, only rows with ``target_type``."""

    names: tuple[str, ...]
    target_type: str | None = None


_WHERE_TYPE = re.compile(r"(.+)\.where\(resolve\(\) is (\w+)\)")


def _derive(params: dict[str, SearchParam]) -> dict[str, Stored]:
    """Parameters answered from other parameters' rows, so their own rows are never written.

    ``combo-code`` (``Observation.code | Observation.component.code``) is the union of
    ``code`` and ``component-code``; ``patient`` (``subject.where(resolve() is Patient)``) is
    ``subject`` with target type Patient. About a fifth of an Observation's index rows were
    such copies (docs/benchmarks.md, issue 3). Derived from the paths, so a new parameter of
    either shape is picked up by itself.
    """
    single: dict[tuple[str, str], str] = {}
    for p in params.values():
        if len(p.paths) == 1 and not _WHERE_TYPE.fullmatch(p.paths[0]):
            single.setdefault((p.type, p.paths[0]), p.name)
    derived: dict[str, Stored] = {}
    for p in params.values():
        if p.type in ("composite", "special") or p.store_handled or not p.paths:
            continue
        if len(p.paths) > 1 and all((p.type, x) in single for x in p.paths):
            derived[p.name] = Stored(tuple(single[(p.type, x)] for x in p.paths))
        elif len(p.paths) == 1 and p.type == "reference":
            m = _WHERE_TYPE.fullmatch(p.paths[0])
            if m and (source := single.get((p.type, m.group(1)))) is not None:
                derived[p.name] = Stored((source,), m.group(2))
    return derived


DERIVED: dict[str, dict[str, Stored]] = {t: _derive(ps) for t, ps in REGISTRY.items()}


def stored_as(p: SearchParam) -> Stored:
    """Which index rows answer ``p``: its own, or those of the parameters it is derived from."""
    derived = DERIVED.get(p.base)
    found = derived.get(p.name) if derived else None
    return found if found is not None else Stored((p.name,))


def get(resource_type: str, name: str) -> SearchParam | None:
    """The search parameter ``name`` of ``resource_type`` (common ones included), or None."""
    params = REGISTRY.get(resource_type)
    if params is None:
        return COMMON_PARAMS.get(name)
    return params.get(name)


def params_for(resource_type: str) -> dict[str, SearchParam]:
    """All search parameters of a type, common ones included (a fresh dict, by name).

    An unsupported type gets only the common parameters.
    """
    return dict(REGISTRY.get(resource_type, COMMON_PARAMS))
