"""FHIR R4 (4.0.1) required value-set bindings that fhir.resources does not enforce.

fhir.resources checks only that a ``code`` matches the code regex, so ``"status": "bogus"``
passes it. The tables below hold the *required* bindings (the spec's strongest strength: the
code SHALL come from the value set) for the supported resource types and for the data types
they use. Extensible, preferred and example bindings are deliberately absent: other codes are
legal there. Bindings whose value sets cannot be listed here (MIME types, ISO 4217 currencies,
BCP 47 languages) are absent too.

Keys are spec element paths, e.g. ``"Observation.status"`` or ``"Questionnaire.item.type"``; a
path that starts with a data type (``"Identifier.use"``) applies wherever that type appears.
The validator resolves each path to its fhir.resources model once, so a recursive element
(``Questionnaire.item.item.type``) is covered by the same entry.

For a CodeableConcept element (``Condition.clinicalStatus``) the binding names the code system:
only codings with that system are checked, because a concept may also carry translations.
"""

from __future__ import annotations

from dataclasses import dataclass

VALUE_SET_BASE = "http://hl7.org/fhir/ValueSet/"
TERMINOLOGY_BASE = "http://terminology.hl7.org/CodeSystem/"


@dataclass(frozen=True, slots=True)
class Binding:
    value_set: str  # canonical URL of the value set, used in messages
    codes: frozenset[str]
    system: str | None = None  # set for CodeableConcept/Coding elements

    def allowed(self) -> str:
        """The codes for a message, in a stable order."""
        return ", ".join(sorted(self.codes))


def _codes(value_set: str, codes: str, system: str | None = None) -> Binding:
    return Binding(VALUE_SET_BASE + value_set, frozenset(codes.split()), system)


# The resource types of FHIR R4 4.0.1 (http://hl7.org/fhir/R4/resourcelist.html). References may
# point at any of these, not only at the types this server stores.
R4_RESOURCE_TYPES: frozenset[str] = frozenset(
    """
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
    AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement
    CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse
    ClinicalImpression CodeSystem Communication CommunicationRequest CompartmentDefinition
    Composition ConceptMap Condition Consent Contract Coverage CoverageEligibilityRequest
    CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric DeviceRequest
    DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference EffectEvidenceSynthesis
    Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence
    EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal
    GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization
    ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice
    Library Linkage List Location Measure MeasureReport Media Medication MedicationAdministration
    MedicationDispense MedicationKnowledge MedicationRequest MedicationStatement MedicinalProduct
    MedicinalProductAuthorization MedicinalProductContraindication MedicinalProductIndication
    MedicinalProductIngredient MedicinalProductInteraction MedicinalProductManufactured
    MedicinalProductPackaged MedicinalProductPharmaceutical MedicinalProductUndesirableEffect
    MessageDefinition MessageHeader MolecularSequence NamingSystem NutritionOrder Observation
    ObservationDefinition OperationDefinition OperationOutcome Organization
    OrganizationAffiliation Parameters Patient PaymentNotice PaymentReconciliation Person
    PlanDefinition Practitioner PractitionerRole Procedure Provenance Questionnaire
    QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition ResearchElementDefinition
    ResearchStudy ResearchSubject RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter
    ServiceRequest Slot Specimen SpecimenDefinition StructureDefinition StructureMap Subscription
    Substance SubstanceNucleicAcid SubstancePolymer SubstanceProtein
    SubstanceReferenceInformation SubstanceSourceMaterial SubstanceSpecification SupplyDelivery
    SupplyRequest Task TerminologyCapabilities TestReport TestScript ValueSet VerificationResult
    VisionPrescription
    """.split()  # noqa: SIM905 - a word list reads (and diffs) better than 146 quoted strings
)

# Value sets used by more than one element.
ADMINISTRATIVE_GENDER = _codes("administrative-gender", "male female other unknown")
DAYS_OF_WEEK = _codes("days-of-week", "mon tue wed thu fri sat sun")
UNITS_OF_TIME = _codes("units-of-time", "s min h d wk mo a")
QUANTITY_COMPARATOR = _codes("quantity-comparator", "< <= >= >")
REQUEST_PRIORITY = _codes("request-priority", "routine urgent asap stat")
REQUEST_STATUS = _codes(
    "request-status", "draft active on-hold revoked completed entered-in-error unknown"
)
ENCOUNTER_STATUS = _codes(
    "encounter-status",
    "planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown",
)
EPISODE_OF_CARE_STATUS = _codes(
    "episode-of-care-status",
    "planned waitlist active onhold finished cancelled entered-in-error",
)
RESOURCE_TYPES = Binding(VALUE_SET_BASE + "resource-types", R4_RESOURCE_TYPES)

# Bindings on data types: they apply wherever the type is used.
DATA_TYPE_BINDINGS: dict[str, Binding] = {
    "Identifier.use": _codes("identifier-use", "usual official temp secondary old"),
    "HumanName.use": _codes("name-use", "usual official temp nickname anonymous old maiden"),
    "ContactPoint.system": _codes("contact-point-system", "phone fax email pager url sms other"),
    "ContactPoint.use": _codes("contact-point-use", "home work temp old mobile"),
    "Address.use": _codes("address-use", "home work temp old billing"),
    "Address.type": _codes("address-type", "postal physical both"),
    "Narrative.status": _codes("narrative-status", "generated extensions additional empty"),
    # Age, Count, Distance and Duration are Quantity profiles but separate models in
    # fhir.resources, so each needs its own entry.
    "Quantity.comparator": QUANTITY_COMPARATOR,
    "Age.comparator": QUANTITY_COMPARATOR,
    "Count.comparator": QUANTITY_COMPARATOR,
    "Distance.comparator": QUANTITY_COMPARATOR,
    "Duration.comparator": QUANTITY_COMPARATOR,
    "Timing.repeat.durationUnit": UNITS_OF_TIME,
    "Timing.repeat.periodUnit": UNITS_OF_TIME,
    "Timing.repeat.dayOfWeek": DAYS_OF_WEEK,
    "Timing.repeat.when": _codes(
        "event-timing",
        "MORN MORN.early MORN.late NOON AFT AFT.early AFT.late EVE EVE.early EVE.late NIGHT PHS"
        " HS WAKE C CM CD CV AC ACM ACD ACV PC PCM PCD PCV",
    ),
    "RelatedArtifact.type": _codes(
        "related-artifact-type",
        "documentation justification citation predecessor successor derived-from depends-on"
        " composed-of",
    ),
    "TriggerDefinition.type": _codes(
        "trigger-type",
        "named-event periodic data-changed data-added data-modified data-removed data-accessed"
        " data-access-ended",
    ),
    "DataRequirement.sort.direction": _codes("sort-direction", "ascending descending"),
    "ParameterDefinition.use": _codes("operation-parameter-use", "in out"),
    "Contributor.type": _codes("contributor-type", "author editor reviewer endorser"),
}

# Bindings on resource elements, for the supported resource types.
RESOURCE_BINDINGS: dict[str, Binding] = {
    "Patient.gender": ADMINISTRATIVE_GENDER,
    "Patient.contact.gender": ADMINISTRATIVE_GENDER,
    "Patient.link.type": _codes("link-type", "replaced-by replaces refer seealso"),
    "RelatedPerson.gender": ADMINISTRATIVE_GENDER,
    "Practitioner.gender": ADMINISTRATIVE_GENDER,
    "PractitionerRole.availableTime.daysOfWeek": DAYS_OF_WEEK,
    "Location.status": _codes("location-status", "active suspended inactive"),
    "Location.mode": _codes("location-mode", "instance kind"),
    "Location.hoursOfOperation.daysOfWeek": DAYS_OF_WEEK,
    "Encounter.status": ENCOUNTER_STATUS,
    "Encounter.statusHistory.status": ENCOUNTER_STATUS,
    "Encounter.location.status": _codes(
        "encounter-location-status", "planned active reserved completed"
    ),
    "EpisodeOfCare.status": EPISODE_OF_CARE_STATUS,
    "EpisodeOfCare.statusHistory.status": EPISODE_OF_CARE_STATUS,
    "Condition.clinicalStatus": _codes(
        "condition-clinical",
        "active recurrence relapse inactive remission resolved",
        TERMINOLOGY_BASE + "condition-clinical",
    ),
    "Condition.verificationStatus": _codes(
        "condition-ver-status",
        "unconfirmed provisional differential confirmed refuted entered-in-error",
        TERMINOLOGY_BASE + "condition-ver-status",
    ),
    "Observation.status": _codes(
        "observation-status",
        "registered preliminary final amended corrected cancelled entered-in-error unknown",
    ),
    "DiagnosticReport.status": _codes(
        "diagnostic-report-status",
        "registered partial preliminary final amended corrected appended cancelled"
        " entered-in-error unknown",
    ),
    "MedicationRequest.status": _codes(
        "medicationrequest-status",
        "active on-hold cancelled completed entered-in-error stopped draft unknown",
    ),
    "MedicationRequest.intent": _codes(
        "medicationrequest-intent",
        "proposal plan order original-order reflex-order filler-order instance-order option",
    ),
    "MedicationRequest.priority": REQUEST_PRIORITY,
    "MedicationStatement.status": _codes(
        "medication-statement-status",
        "active completed entered-in-error intended stopped on-hold unknown not-taken",
    ),
    "Procedure.status": _codes(
        "event-status",
        "preparation in-progress not-done on-hold stopped completed entered-in-error unknown",
    ),
    "Immunization.status": _codes("immunization-status", "completed entered-in-error not-done"),
    "AllergyIntolerance.clinicalStatus": _codes(
        "allergyintolerance-clinical",
        "active inactive resolved",
        TERMINOLOGY_BASE + "allergyintolerance-clinical",
    ),
    "AllergyIntolerance.verificationStatus": _codes(
        "allergyintolerance-verification",
        "unconfirmed confirmed refuted entered-in-error",
        TERMINOLOGY_BASE + "allergyintolerance-verification",
    ),
    "AllergyIntolerance.type": _codes("allergy-intolerance-type", "allergy intolerance"),
    "AllergyIntolerance.category": _codes(
        "allergy-intolerance-category", "food medication environment biologic"
    ),
    "AllergyIntolerance.criticality": _codes(
        "allergy-intolerance-criticality", "low high unable-to-assess"
    ),
    "AllergyIntolerance.reaction.severity": _codes(
        "reaction-event-severity", "mild moderate severe"
    ),
    "CarePlan.status": REQUEST_STATUS,
    "CarePlan.intent": _codes("care-plan-intent", "proposal plan order option"),
    "CarePlan.activity.detail.kind": _codes(
        "care-plan-activity-kind",
        "Appointment CommunicationRequest DeviceRequest MedicationRequest NutritionOrder Task"
        " ServiceRequest VisionPrescription",
    ),
    "CarePlan.activity.detail.status": _codes(
        "care-plan-activity-status",
        "not-started scheduled in-progress on-hold completed cancelled stopped unknown"
        " entered-in-error",
    ),
    "CareTeam.status": _codes(
        "care-team-status", "proposed active suspended inactive entered-in-error"
    ),
    "Goal.lifecycleStatus": _codes(
        "goal-status",
        "proposed planned accepted active on-hold completed cancelled entered-in-error rejected",
    ),
    "Questionnaire.status": _codes("publication-status", "draft active retired unknown"),
    "Questionnaire.subjectType": RESOURCE_TYPES,
    # R4 item-type also has the abstract code "question", which instances may not use.
    "Questionnaire.item.type": _codes(
        "item-type",
        "group display boolean decimal integer date dateTime time string text url choice"
        " open-choice attachment reference quantity",
    ),
    "Questionnaire.item.enableWhen.operator": _codes(
        "questionnaire-enable-operator", "exists = != > < >= <="
    ),
    "Questionnaire.item.enableBehavior": _codes("questionnaire-enable-behavior", "all any"),
    "QuestionnaireResponse.status": _codes(
        "questionnaire-answers-status", "in-progress completed amended entered-in-error stopped"
    ),
    "ServiceRequest.status": REQUEST_STATUS,
    "ServiceRequest.intent": _codes(
        "request-intent",
        "proposal plan directive order original-order reflex-order filler-order instance-order"
        " option",
    ),
    "ServiceRequest.priority": REQUEST_PRIORITY,
    "Flag.status": _codes("flag-status", "active inactive entered-in-error"),
    "DocumentReference.status": _codes(
        "document-reference-status", "current superseded entered-in-error"
    ),
    "DocumentReference.docStatus": _codes(
        "composition-status", "preliminary final amended entered-in-error"
    ),
    "DocumentReference.relatesTo.code": _codes(
        "document-relationship-type", "replaces transforms signs appends"
    ),
    "Consent.status": _codes(
        "consent-state-codes", "draft proposed active rejected inactive entered-in-error"
    ),
    "Consent.provision.type": _codes("consent-provision-type", "deny permit"),
    "Consent.provision.data.meaning": _codes(
        "consent-data-meaning", "instance related dependents authoredby"
    ),
    "Provenance.entity.role": _codes(
        "provenance-entity-role", "derivation revision quotation source removal"
    ),
    "Task.status": _codes(
        "task-status",
        "draft requested received accepted rejected ready cancelled in-progress on-hold failed"
        " completed entered-in-error",
    ),
    "Task.intent": _codes(
        "task-intent",
        "unknown proposal plan order original-order reflex-order filler-order instance-order"
        " option",
    ),
    "Task.priority": REQUEST_PRIORITY,
    "Group.type": _codes("group-type", "person animal practitioner device medication substance"),
}

REQUIRED_BINDINGS: dict[str, Binding] = {**DATA_TYPE_BINDINGS, **RESOURCE_BINDINGS}
