"""Write-time validation of FHIR R4 resources.

``validate_resource`` is called on every create/update with the parsed JSON body. It runs two
passes and reports every problem it finds in one 422 OperationOutcome:

1. A walk over the JSON, driven by the element definitions that fhir.resources carries in its
   R4B models. It checks what the models let through: JSON value types (the models coerce
   ``"yes"`` to a boolean and ``"2"`` to an integer), empty arrays/objects/strings and nulls,
   required elements (the models only report these when the rest of the element is valid),
   required value-set bindings (``bindings.py``), reference syntax and target types, NHS number
   check digits, and the 64-character limit on ids.
2. ``model_validate`` on the fhir.resources R4B model: unknown elements, primitive formats
   (dates, codes, uris, decimals, ...), choice-type conflicts and everything else the models
   know. Its errors are translated to FHIRPath-style element paths; errors at a path the walk
   already reported are dropped, so each problem is reported once.

R4B is used because fhir.resources 8 has no R4 package; for the supported resource types R4B
is structurally the same as R4 (see docs/decisions/0001-fhir-resources-validation.md).

Messages never contain element values: they may be patient data. They name the element path
and, for coded elements, the allowed codes.
"""

from __future__ import annotations

import datetime
import decimal
import re
import types
import typing
import uuid
from dataclasses import dataclass, field
from functools import cache

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import ValidationError

from carelight.fhir.bindings import R4_RESOURCE_TYPES, REQUIRED_BINDINGS, Binding
from carelight.fhir.errors import Issue, error, unprocessable
from carelight.fhir.resource_types import NHS_NUMBER_SYSTEM, SUPPORTED, SUPPORTED_TYPES
from carelight.identity.nhs_number import is_valid_nhs_number

__all__ = ["validate_resource", "warm_up"]

MAX_ISSUES = 100  # keeps a pathological body from producing a multi-megabyte OperationOutcome

# -- element definitions, compiled once per fhir.resources model class ---------------------------

# What JSON value a primitive needs. FHIR JSON: booleans are true/false, integer types and decimal
# are numbers, every other primitive is a string.
_JSON_STRING, _JSON_BOOLEAN, _JSON_INTEGER, _JSON_NUMBER = range(4)
_JSON_KIND = {
    "boolean": _JSON_BOOLEAN,
    "integer": _JSON_INTEGER,
    "unsignedInt": _JSON_INTEGER,
    "positiveInt": _JSON_INTEGER,
    "decimal": _JSON_NUMBER,
}
_JSON_KIND_TEXT = {
    _JSON_STRING: "a JSON string",
    _JSON_BOOLEAN: "a JSON boolean (true or false)",
    _JSON_INTEGER: "a JSON number without a fractional part",
    _JSON_NUMBER: "a JSON number",
}
_PYTHON_PRIMITIVES = {
    bool: "boolean",
    str: "string",
    int: "integer",
    bytes: "base64Binary",
    decimal.Decimal: "decimal",
    datetime.date: "date",
    datetime.datetime: "dateTime",
    datetime.time: "time",
    uuid.UUID: "uuid",
}


@dataclass(slots=True)
class _Element:
    name: str  # JSON name, e.g. "class" (the model field is class_fhir)
    many: bool
    primitive: str | None  # FHIR primitive type, or None for a complex type
    json_kind: int
    model: type[FHIRAbstractModel] | None  # for complex types
    any_resource: bool  # contained / Bundle.entry.resource: the model comes from resourceType
    required: bool
    primitive_required: bool  # min 1, but a "_name" extension may stand in for the value
    choice: str | None  # "value" for valueQuantity etc.
    targets: frozenset[str] | None  # allowed Reference targets; None means any
    binding: Binding | None = None


@dataclass(slots=True)
class _Schema:
    elements: dict[str, _Element]
    required: tuple[_Element, ...]
    # Choice elements (value[x]) whose one-of is mandatory: prefix -> the JSON names.
    required_choices: dict[str, tuple[str, ...]]
    is_resource: bool
    special: str | None  # "Reference", "Identifier", "Narrative": checked beyond their elements


def _field_type(annotation: typing.Any) -> tuple[bool, typing.Any]:
    """(is a list, the item type) with Optional/None stripped at both levels."""
    many = False
    tp = annotation
    while True:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]  # FHIRResourceModel.id is Union[IdType, StringType]: both strings
        elif origin is list:
            many = True
            tp = typing.get_args(tp)[0]
        else:
            return many, tp


def _primitive_name(tp: typing.Any) -> str | None:
    """The FHIR primitive type of an annotation such as Annotated[str, Code()]."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *metadata = typing.get_args(tp)
        for meta in metadata:
            name = getattr(meta, "__visit_name__", None)
            if name:
                return name
        return _PYTHON_PRIMITIVES.get(base)
    return _PYTHON_PRIMITIVES.get(tp)


def _compile(model: type[FHIRAbstractModel]) -> _Schema:
    elements: dict[str, _Element] = {}
    for name, info in model.model_fields.items():
        if name == "fhir_comments":
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        many, tp = _field_type(info.annotation)
        child = primitive = None
        any_resource = False
        if isinstance(tp, type) and issubclass(tp, FhirBase):
            child = tp.get_model_klass()
            any_resource = issubclass(tp, FhirElementOrResourceBase)
        else:
            primitive = _primitive_name(tp) or "string"
        targets = extra.get("enum_reference_types")
        json_name = info.alias or name
        elements[json_name] = _Element(
            name=json_name,
            many=many,
            primitive=primitive,
            json_kind=_JSON_KIND.get(primitive, _JSON_STRING) if primitive else -1,
            model=child,
            any_resource=any_resource,
            required=info.is_required(),
            primitive_required=bool(extra.get("element_required")),
            choice=extra.get("one_of_many"),
            targets=None if not targets or "Resource" in targets else frozenset(targets),
        )
    required_choices: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("one_of_many_required"):
            required_choices.setdefault(extra["one_of_many"], []).append(info.alias or name)
    special = model.__name__ if model.__name__ in ("Reference", "Identifier", "Narrative") else None
    return _Schema(
        elements=elements,
        required=tuple(e for e in elements.values() if e.required or e.primitive_required),
        required_choices={k: tuple(v) for k, v in required_choices.items()},
        is_resource=model.has_resource_base(),
        special=special,
    )


_SCHEMAS: dict[type, _Schema] = {}


def _schema(model: type[FHIRAbstractModel]) -> _Schema:
    schema = _SCHEMAS.get(model)
    if schema is None:
        schema = _SCHEMAS[model] = _compile(model)
        for (bound_model, element_name), binding in _bindings().items():
            if bound_model is model:
                schema.elements[element_name].binding = binding
    return schema


@cache
def _bindings() -> dict[tuple[type, str], Binding]:
    """REQUIRED_BINDINGS keyed by (model class, element name), resolved through the models.

    Raises if a path does not resolve, so a typo in the table fails loudly (and in the tests).
    """
    resolved: dict[tuple[type, str], Binding] = {}
    for path, binding in REQUIRED_BINDINGS.items():
        head, *steps, last = path.split(".")
        model = get_fhir_model_class(head)
        for step in steps:
            model = _compile(model).elements[step].model
            if model is None:
                raise LookupError(f"binding path {path}: {step} is not a complex element")
        if last not in _compile(model).elements:
            raise LookupError(f"binding path {path}: no element {last}")
        resolved[(model, last)] = binding
    return resolved


def _model_class(resource_type: str) -> type[FHIRAbstractModel] | None:
    """The R4B model for an R4 resource type, or None (not R4, or not in R4B).

    The membership test comes first so arbitrary client strings never reach a cache.
    """
    return _r4b_model(resource_type) if resource_type in R4_RESOURCE_TYPES else None


@cache
def _r4b_model(resource_type: str) -> type[FHIRAbstractModel] | None:
    try:
        return get_fhir_model_class(resource_type)
    except ValueError:  # an R4 type that R4B dropped, e.g. MedicinalProduct
        return None


# -- pass 1: the walk ----------------------------------------------------------------------------

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_RELATIVE_REF = re.compile(
    r"(?P<type>[A-Z][A-Za-z]{1,63})/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
_ABSOLUTE_REF = re.compile(r"https?://[^\s/?#]+\S*")
_URN_UUID_REF = re.compile(
    r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_LOCAL_REF = re.compile(r"#(?P<id>[A-Za-z0-9\-.]{1,64})?")
_XHTML_DIV = re.compile(r"\s*<div\b[^>]*\bxmlns\s*=\s*[\"']http://www\.w3\.org/1999/xhtml[\"']")
_REFERENCE_FORMS = (
    "'Type/id', 'Type/id/_history/vid', an absolute http(s) URL, 'urn:uuid:<uuid>' "
    "or '#id' of a contained resource"
)


@dataclass(slots=True)
class _Walk:
    allow_urn: bool
    contained: dict[str, str]  # contained resource id -> resourceType, for '#id' references
    issues: list[Issue] = field(default_factory=list)
    # Set when a nested resourceType has no model: fhir.resources then fails with a KeyError
    # rather than a ValidationError, so pass 2 is skipped.
    unknown_resource_type: bool = False

    def add(self, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(Issue(code, diagnostics, expression))

    def node(self, data: dict, schema: _Schema, path: str) -> None:
        elements = schema.elements
        choices_seen: set[str] | None = None
        for key, value in data.items():
            element = elements.get(key)
            if element is None:
                continue  # unknown elements (and resourceType) are left to pass 2
            where = f"{path}.{key}"
            if element.choice is not None and not key.startswith("_"):
                choices_seen = choices_seen or set()
                if element.choice in choices_seen:
                    self.add(
                        "structure",
                        f"Only one {element.choice}[x] element may be present",
                        f"{path}.{element.choice}[x]",
                    )
                choices_seen.add(element.choice)
            if value is None:
                self.add("structure", "Element must not be null", where)
            elif element.many:
                if not isinstance(value, list):
                    self.add("structure", "Element must be a JSON array", where)
                elif not value:
                    self.add("structure", "Array must not be empty", where)
                else:
                    # A null in a primitive array only lines values up with "_name" extensions.
                    nulls_ok = element.primitive is not None and f"_{key}" in data
                    nulls_ok = nulls_ok or key.startswith("_")
                    for i, item in enumerate(value):
                        if item is None:
                            if not nulls_ok:
                                self.add(
                                    "structure", "Array must not contain null", f"{where}[{i}]"
                                )
                        else:
                            self.item(element, item, f"{where}[{i}]")
            elif isinstance(value, list):
                self.add("structure", "Element must be a single value, not an array", where)
            else:
                self.item(element, value, where)
        for element in schema.required:
            if data.get(element.name) is None and not (
                element.primitive_required and data.get(f"_{element.name}") is not None
            ):
                self.add("required", "Required element is missing", f"{path}.{element.name}")
        for choice, names in schema.required_choices.items():
            if not any(data.get(n) is not None or data.get(f"_{n}") is not None for n in names):
                self.add(
                    "required",
                    f"One of {', '.join(names)} is required",
                    f"{path}.{choice}[x]",
                )
        if schema.special == "Reference":
            self.reference(data, path)
        elif schema.special == "Identifier":
            self.identifier(data, path)
        elif schema.special == "Narrative":
            div = data.get("div")
            if isinstance(div, str) and div and not _XHTML_DIV.match(div):
                self.add(
                    "value",
                    "Narrative div must be an XHTML <div> element with "
                    'xmlns="http://www.w3.org/1999/xhtml"',
                    f"{path}.div",
                )

    def item(self, element: _Element, value: object, where: str) -> None:
        if element.primitive is not None:
            self.primitive(element, value, where)
            return
        if not isinstance(value, dict):
            self.add("structure", "Element must be a JSON object", where)
            return
        if not value:
            self.add("structure", "Object must not be empty", where)
            return
        model = element.model
        if element.any_resource:
            resource_type = value.get("resourceType")
            model = _model_class(resource_type) if isinstance(resource_type, str) else None
            if model is None:
                self.unknown_resource_type = True
                self.add(
                    "structure",
                    "resourceType is missing or not an R4 resource type this server can validate",
                    where,
                )
                return
            if element.name == "contained" and "contained" in value:
                # dom-2: a contained resource SHALL NOT contain other resources.
                self.add("structure", "A contained resource must not contain resources", where)
        binding = element.binding
        if binding is not None:
            self.codings(binding, value, where)
        assert model is not None
        self.node(value, _schema(model), where)
        if element.targets is not None and model.__name__ == "Reference":
            self.reference_target(element.targets, value, where)

    def primitive(self, element: _Element, value: object, where: str) -> None:
        kind = element.json_kind
        if kind == _JSON_STRING:
            ok = isinstance(value, str)
        elif kind == _JSON_BOOLEAN:
            ok = isinstance(value, bool)
        elif kind == _JSON_INTEGER:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            self.add(
                "structure",
                f"Wrong JSON type: a FHIR {element.primitive} must be {_JSON_KIND_TEXT[kind]}",
                where,
            )
            return
        if value == "":
            self.add("value", "String must not be empty", where)
        elif element.primitive == "id" and not _ID.fullmatch(value):  # type: ignore[arg-type]
            self.add("value", "Not a valid FHIR id (1-64 characters: A-Z a-z 0-9 - .)", where)
        elif element.binding is not None and value not in element.binding.codes:
            self.binding_issue(element.binding, where)

    def codings(self, binding: Binding, value: dict, where: str) -> None:
        """A required binding on a CodeableConcept or Coding: check codes from its system."""
        if "coding" in value:
            codings = value["coding"]
            if isinstance(codings, list):
                for i, coding in enumerate(codings):
                    if isinstance(coding, dict):
                        self.coding(binding, coding, f"{where}.coding[{i}]")
        else:
            self.coding(binding, value, where)

    def coding(self, binding: Binding, coding: dict, where: str) -> None:
        code = coding.get("code")
        system_matches = coding.get("system") == binding.system
        if system_matches and isinstance(code, str) and code not in binding.codes:
            self.binding_issue(binding, f"{where}.code")

    def binding_issue(self, binding: Binding, where: str) -> None:
        system = f" (system {binding.system})" if binding.system else ""
        self.add(
            "code-invalid",
            f"Code is not in the required value set {binding.value_set}{system}; "
            f"allowed codes: {binding.allowed()}",
            where,
        )

    def reference(self, data: dict, path: str) -> None:
        ref = data.get("reference")
        if not isinstance(ref, str) or not ref:
            return  # type errors are already reported
        where = f"{path}.reference"
        if ref[0] == "#":
            match = _LOCAL_REF.fullmatch(ref)
            if match is None:
                self.add("value", f"Malformed reference: must be {_REFERENCE_FORMS}", where)
            elif match["id"] is not None and match["id"] not in self.contained:
                self.add(
                    "value", "Local reference does not match the id of a contained resource", where
                )
            return
        if ref.startswith("urn:"):
            if not _URN_UUID_REF.fullmatch(ref):
                self.add("value", f"Malformed reference: must be {_REFERENCE_FORMS}", where)
            elif not self.allow_urn:
                self.add(
                    "value",
                    "urn:uuid references are only allowed inside a transaction or batch Bundle",
                    where,
                )
            return
        if ref.startswith(("http://", "https://")):
            if not _ABSOLUTE_REF.fullmatch(ref):
                self.add("value", "Malformed reference: not a valid absolute URL", where)
            return
        match = _RELATIVE_REF.fullmatch(ref)
        if match is None:
            self.add("value", f"Malformed reference: must be {_REFERENCE_FORMS}", where)
        elif match["type"] not in R4_RESOURCE_TYPES:
            self.add("value", "Reference type is not a FHIR R4 resource type", where)

    def reference_target(self, targets: frozenset[str], data: dict, path: str) -> None:
        """Check a relative or local reference points at a type this element allows."""
        ref = data.get("reference")
        if not isinstance(ref, str):
            return
        match = _RELATIVE_REF.fullmatch(ref)
        if match is not None:
            target = match["type"]
        else:
            local = _LOCAL_REF.fullmatch(ref)
            target = self.contained.get(local["id"] or "") if local else None
        if target is not None and target in R4_RESOURCE_TYPES and target not in targets:
            self.add(
                "value",
                f"Reference to {target} is not allowed here; allowed types: "
                + ", ".join(sorted(targets)),
                f"{path}.reference",
            )

    def identifier(self, data: dict, path: str) -> None:
        value = data.get("value")
        if data.get("system") != NHS_NUMBER_SYSTEM or not isinstance(value, str) or not value:
            return
        if not is_valid_nhs_number(value):
            self.add(
                "value",
                "Identifier value is not a valid NHS number "
                "(10 digits, no spaces, modulus 11 check digit)",
                f"{path}.value",
            )


# -- pass 2: fhir.resources ----------------------------------------------------------------------

_FORMAT_HINTS = {
    "date": "YYYY, YYYY-MM or YYYY-MM-DD",
    "dateTime": "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone",
    "instant": "YYYY-MM-DDThh:mm:ss[.sss] with a time zone",
    "time": "hh:mm:ss",
    "code": "no leading, trailing or repeated whitespace",
    "id": "1-64 characters: A-Z a-z 0-9 - .",
    "uri": "no whitespace",
    "url": "no whitespace",
    "canonical": "no whitespace",
    "oid": "urn:oid:<digits and dots>",
    "uuid": "urn:uuid:<uuid>",
    "decimal": "a decimal number",
    "integer": "a 32-bit signed integer",
    "unsignedInt": "an integer 0 or more",
    "positiveInt": "an integer 1 or more",
    "base64Binary": "base64 encoded",
    "string": "non-empty",
}
_CHOICE_FIELDS = re.compile(r"\[(.*?)\]")


def _resolve_loc(
    loc: tuple[int | str, ...], data: dict, model: type[FHIRAbstractModel], path: str
) -> tuple[str, _Element | None, type[FHIRAbstractModel] | None]:
    """Turn a pydantic error location into (element path, element, model at that path).

    The location is followed through the JSON itself: segments that are neither an element of
    the current model nor a key of the current object are pydantic internals (union members,
    "resource_type") and are skipped.
    """
    node: object = data
    current: type[FHIRAbstractModel] | None = model
    element: _Element | None = None
    for seg in loc:
        if isinstance(seg, int):
            if isinstance(node, list) and 0 <= seg < len(node):
                path += f"[{seg}]"
                node = node[seg]
        elif isinstance(node, dict) and current is not None:
            element = _schema(current).elements.get(seg)
            if element is None and seg not in node:
                continue
            path += f".{seg}"
            node = node.get(seg)
            current = element.model if element is not None else None
        else:
            continue
        if element is not None and element.any_resource and isinstance(node, dict):
            resource_type = node.get("resourceType")
            current = _model_class(resource_type) if isinstance(resource_type, str) else None
    return path, element, current


def _choice_issue(message: str, model: type[FHIRAbstractModel] | None, path: str) -> Issue:
    names = re.findall(r"'([^']+)'", m[1]) if (m := _CHOICE_FIELDS.search(message)) else []
    element = _schema(model).elements.get(names[0]) if model is not None and names else None
    if element is not None and element.choice:
        path = f"{path}.{element.choice}[x]"
    shown = ", ".join(names) if names else "the choices"
    if "multiple" in message:
        return Issue("structure", f"Only one of {shown} may be present", path)
    return Issue("required", f"One of {shown} is required", path)


def _translate(err: dict, data: dict, model: type[FHIRAbstractModel], root: str) -> Issue | None:
    """The Issue for one pydantic error, or None for errors the walk always reports itself."""
    kind = err["type"]
    message = str(err.get("msg", ""))
    if kind == "list_type" and "None is not allowed" in message:
        return None  # reported by the walk at the null's own index, which pydantic omits
    path, element, here = _resolve_loc(tuple(err["loc"]), data, model, root)
    primitive = element.primitive if element is not None else None
    if kind == "extra_forbidden":
        return Issue("structure", "Unknown element (not defined for this type in FHIR R4)", path)
    if kind in ("missing", "model_field_validation.missing"):
        return Issue("required", "Required element is missing", path)
    if kind == "list_type":
        return Issue("structure", "Element must be a JSON array", path)
    if kind in ("model_type", "dict_type", "model_attributes_type", "json_invalid", "json_type"):
        return Issue("structure", "Element must be a JSON object", path)
    if kind == "value_error" and primitive is None and "field value" in message:
        return _choice_issue(message, here, path)
    if kind in ("fhir-validation-wrong-resource-type", "model_validation_format"):
        return Issue("structure", "Unexpected or wrong resourceType", path)
    if primitive is not None:
        hint = _FORMAT_HINTS.get(primitive)
        return Issue(
            "value", f"Not a valid FHIR {primitive}" + (f" ({hint})" if hint else ""), path
        )
    # pydantic messages describe the expectation, not the input, so they are safe to pass on.
    return Issue("value", f"Invalid value: {message}", path)


def _covered(expression: str, reported: set[str]) -> bool:
    """True if the walk already reported this path or one that contains it."""
    if expression in reported:
        return True
    for end in range(len(expression) - 1, 0, -1):
        if expression[end] in ".[" and expression[:end] in reported:
            return True
    return False


# -- entry point ---------------------------------------------------------------------------------


def validate_resource(
    resource: object, *, expected_type: str | None = None, allow_urn: bool = True
) -> dict:
    """Validate a parsed JSON resource for a write; return it unchanged or raise FhirError.

    400 if it is not a JSON object with a supported resourceType (or not ``expected_type``,
    e.g. the type in the URL); 422 with one issue per problem if it is not valid FHIR R4.
    ``allow_urn=False`` rejects ``urn:uuid:`` references, which are only meaningful inside a
    transaction/batch Bundle that resolves them before storage.
    """
    if not isinstance(resource, dict):
        raise error(400, "structure", "The body must be a JSON object (a FHIR resource)")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise error(400, "structure", "The resource has no resourceType", "resourceType")
    if resource_type not in SUPPORTED:
        raise error(
            400,
            "not-supported",
            f"Resource type '{resource_type[:64]}' is not supported; supported types are "
            + ", ".join(SUPPORTED_TYPES),
            "resourceType",
        )
    if expected_type is not None and resource_type != expected_type:
        raise error(
            400,
            "invalid",
            f"Resource type '{resource_type}' does not match the expected type '{expected_type}'",
            "resourceType",
        )

    model = get_fhir_model_class(resource_type)
    try:
        issues = _issues(resource, model, resource_type, allow_urn)
    except RecursionError:
        # Only a pathologically deep body gets here (each level of JSON is a few Python frames).
        issues = [Issue("structure", "The resource is nested too deeply to validate")]
    if issues:
        if len(issues) > MAX_ISSUES:
            dropped = len(issues) - MAX_ISSUES
            note = Issue("too-costly", f"{dropped} more issues not shown", severity="information")
            issues = [*issues[:MAX_ISSUES], note]
        raise unprocessable(issues)
    return resource


def _issues(
    resource: dict, model: type[FHIRAbstractModel], resource_type: str, allow_urn: bool
) -> list[Issue]:
    walk = _Walk(allow_urn=allow_urn, contained=_contained_ids(resource))
    walk.node(resource, _schema(model), resource_type)
    issues = walk.issues
    if walk.unknown_resource_type:
        return issues
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        reported = {i.expression for i in issues if i.expression}
        for err in exc.errors(include_url=False, include_input=False):
            issue = _translate(err, resource, model, resource_type)
            if issue is not None and not _covered(issue.expression or "", reported):
                issues.append(issue)
    except (KeyError, TypeError, AttributeError):
        # fhir.resources failing on a shape it did not expect. The walk has normally explained
        # the problem already; if not, the body is still not something we can store.
        if not issues:
            issues.append(Issue("structure", "The resource could not be parsed as FHIR R4"))
    return issues


def warm_up() -> None:
    """Import the models and compile the element tables for all supported types (~0.5 s).

    Optional: call it at application start so the first write does not pay this cost.
    """
    for resource_type in SUPPORTED_TYPES:
        _schema(get_fhir_model_class(resource_type))


def _contained_ids(resource: dict) -> dict[str, str]:
    contained = resource.get("contained")
    if not isinstance(contained, list):
        return {}
    ids: dict[str, str] = {}
    for item in contained:
        if isinstance(item, dict):
            cid, ctype = item.get("id"), item.get("resourceType")
            if isinstance(cid, str) and isinstance(ctype, str):
                ids[cid] = ctype
    return ids
