"""FHIR errors and their OperationOutcome form.

Every error the data layer raises is a :class:`FhirError`; the REST layer turns it into an
OperationOutcome with the right HTTP status. Messages say what was wrong and never carry
patient data beyond the element path.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One problem, as an OperationOutcome.issue."""

    code: str  # OperationOutcome issue-type: invalid, structure, required, value, not-found, ...
    diagnostics: str
    expression: str | None = None  # FHIRPath-style element path, e.g. "Patient.name[0].given"
    severity: str = "error"

    def to_fhir(self) -> dict:
        issue: dict = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


@dataclass
class FhirError(Exception):
    """An error with an HTTP status and one or more issues."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(
            f"{i.expression}: {i.diagnostics}" if i.expression else i.diagnostics
            for i in self.issues
        )

    def __str__(self) -> str:
        return self.message

    def outcome(self) -> dict:
        return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in self.issues]}


def error(status: int, code: str, diagnostics: str, expression: str | None = None) -> FhirError:
    return FhirError(status, [Issue(code, diagnostics, expression)])


def bad_request(diagnostics: str, expression: str | None = None) -> FhirError:
    return error(400, "invalid", diagnostics, expression)


def not_found(diagnostics: str) -> FhirError:
    return error(404, "not-found", diagnostics)


def gone(diagnostics: str) -> FhirError:
    return error(410, "deleted", diagnostics)


def conflict(diagnostics: str) -> FhirError:
    return error(409, "conflict", diagnostics)


def precondition_failed(diagnostics: str) -> FhirError:
    return error(412, "conflict", diagnostics)


def method_not_allowed(diagnostics: str) -> FhirError:
    return error(405, "not-supported", diagnostics)


def unprocessable(issues: list[Issue]) -> FhirError:
    return FhirError(422, issues)
