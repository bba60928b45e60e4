"""Write-time validation of FHIR R4 resources.

``validate_resource`` is called on every create/update with the parsed JSON body and reports
every problem it finds in one 422 OperationOutcome. It has two passes:

1. A walk over the JSON, driven by the element definitions that fhir.resources carries in its
   R4B models. On its own it decides validity: it checks every key is an element of its type
   (``resourceType`` only at a resource root, ``_name`` only beside a primitive ``name``),
   JSON value types (the models coerce ``"yes"`` to a boolean and ``"2"`` to an integer), the
   format of every primitive (the R4 regexes, real calendar dates, integer ranges; see
   ``_FORMAT_CHECKS``), empty arrays/objects/strings and nulls, cardinality, required
   elements and choices, conflicting choice types, required value-set bindings
   (``bindings.py``), reference syntax and target types, NHS number check digits and the
   64-character limit on ids.
2. ``model_validate`` on the fhir.resources R4B model (``thorough=True``, the default). It
   finds nothing the walk misses: ``tests/fhir/test_validation_fast.py`` checks that, by
   comparing the two over valid resources and Hypothesis-generated mutations of them. It stays
   on the REST write path as a second opinion. Its errors are translated to FHIRPath-style
   element paths; errors at or below a path the walk already reported are dropped, so each
   problem is reported once.

``thorough=False`` runs the walk alone (~6x cheaper); the bulk loader uses it. Where pass 2 is
stricter than the spec (a ``uuid`` must be a version 4 UUID, a string must not consist only of
no-break and other special spaces, a choice element with ``one_of_many_required`` needs a
value, not just a ``_value`` extension), the walk follows pass 2, so both give the same
decision; where pass 2 is looser (a ``uri`` with spaces, ``"2"`` for an integer, a 65-character
id), the walk follows the spec. See docs/decisions/0001-fhir-resources-validation.md.

R4B is used because fhir.resources 8 has no R4 package; for the supported resource types R4B
is structurally the same as R4 (see the decision record).

Messages never contain element values: they may be patient data. They name the element path
(and an unknown element's name) and, for coded elements, the allowed codes.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
import types
import typing
import uuid
from collections.abc import Callable
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

# -- primitive formats ----------------------------------------------------------------------------
#
# http://hl7.org/fhir/R4/datatypes.html#primitive. Each checker takes a value of the right JSON
# type (and, for strings, not "") and returns None or the diagnostic. fhir_core's validators
# (fhir_core/types.py) are the reference; where they are looser than the spec, the spec wins.
# The regexes are applied with fullmatch: the spec's are XML Schema regexes, implicitly anchored.

_FORMAT_HINTS = {
    "date": "YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date",
    "dateTime": "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.sss] with a time zone, "
    "a real calendar date",
    "instant": "YYYY-MM-DDThh:mm:ss[.sss] with a time zone, a real calendar date",
    "time": "hh:mm:ss[.sss], no time zone",
    "code": "no leading, trailing or repeated whitespace",
    "id": "1-64 characters: A-Z a-z 0-9 - .",
    "uri": "no whitespace",
    "url": "no whitespace",
    "canonical": "no whitespace",
    "oid": "urn:oid:<digits and dots>",
    "uuid": "urn:uuid:<version 4 UUID in lower case>",
    "decimal": "a finite decimal number",
    "integer": "a 32-bit signed integer",
    "unsignedInt": "an integer from 0 to 2147483647",
    "positiveInt": "an integer from 1 to 2147483647",
    "base64Binary": "base64 encoded",
    "string": "non-empty",
}


def _format_message(primitive: str) -> str:
    hint = _FORMAT_HINTS.get(primitive)
    return f"Not a valid FHIR {primitive}" + (f" ({hint})" if hint else "")


# Strings: at most 1024*1024 characters (R4 datatypes, string). Python strings from json.loads
# may hold lone surrogates, which are not Unicode text (pydantic refuses them too).
_MAX_STRING = 1024 * 1024
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Unicode White_Space, which is what pydantic-core's (Rust) regexes mean by \s. Python's \s
# differs (it also matches U+001C-U+001F), so the classes are spelled out.
_OTHER_WS = "\x0b\x0c\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS = "\t\n\r " + _OTHER_WS
# fhir_core's string regex [ \r\n\t\S]+ is searched, not anchored: a string passes if it has one
# character that is not "other" whitespace. It refuses "\u00a0" alone, which the spec would allow
# (strings SHOULD contain non-whitespace); the walk follows fhir_core so both passes agree.
_STRING_CONTENT = re.compile(f"[^{_OTHER_WS}]")
_CODE = re.compile(f"[^{_WS}]+(?:[{_WS}][^{_WS}]+)*")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NO_WHITESPACE = re.compile(r"\S*")
_OID = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+")
# The spec: urn:uuid: and lower-case hex. fhir_core (pydantic's UUID4) also requires version 4
# and the RFC 4122 variant; the walk follows it so both passes agree.
_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_YEAR = r"(?:[0-9](?:[0-9](?:[0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"  # 0001-9999
_MONTH_DAY = r"(?:0[1-9]|1[0-2])-(?:0[1-9]|[1-2][0-9]|3[0-1])"
_CLOCK = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"  # 60: leap second
_ZONE = r"(?:Z|[+\-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DATE = re.compile(rf"{_YEAR}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[1-2][0-9]|3[0-1]))?)?")
_DATETIME = re.compile(
    rf"{_YEAR}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[1-2][0-9]|3[0-1])(?:T{_CLOCK}{_ZONE})?)?)?"
)
_INSTANT = re.compile(rf"{_YEAR}-{_MONTH_DAY}T{_CLOCK}{_ZONE}")
_TIME = re.compile(_CLOCK)
# base64 (RFC 4648) in groups of four, whitespace allowed between groups as in the spec's regex
# (\s*([0-9a-zA-Z\+\=]){4}\s*)+ -- which omits "/", an erratum: "/" is part of the alphabet.
# fhir_core only checks that the characters it keeps decode; "!!!!" passes it.
_BASE64_COMPACT = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_BASE64_SPACED = re.compile(
    r"[ \t\r\n]*(?:[A-Za-z0-9+/]{4}[ \t\r\n]*)*"
    r"(?:(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)[ \t\r\n]*)?"
)
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_TOO_LONG = "String is longer than FHIR allows (1,048,576 characters)"
_BAD_UNICODE = "String is not valid Unicode text (it contains a lone surrogate)"
_ONLY_SPECIAL_SPACES = (
    "String must contain a character other than no-break and other special spaces"
)


def _unicode_problem(value: str) -> str | None:
    if not value.isascii() and _SURROGATE.search(value) is not None:
        return _BAD_UNICODE
    return None


_CODE_MESSAGE = _format_message("code")


def _printable(text: str) -> str:
    """text with lone surrogates escaped (\\ud800), so that it can be encoded as UTF-8 JSON."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _real_day(value: str) -> bool:
    """For a value that starts with a regex-checked YYYY-MM-DD: is it a day of the calendar?"""
    day = int(value[8:10])
    if day <= 28:
        return True
    month = int(value[5:7])
    if day > _DAYS_IN_MONTH[month]:
        return False
    if month == 2 and day == 29:
        year = int(value[0:4])
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return True


def _pattern_check(
    pattern: re.Pattern[str], message: str, *, text: bool = False
) -> Callable[[str], str | None]:
    """A checker for a string primitive with a fullmatch regex (text: also check Unicode)."""
    fullmatch = pattern.fullmatch
    if text:

        def check(value: str) -> str | None:
            if fullmatch(value) is None:
                return message
            return None if value.isascii() else _unicode_problem(value)

    else:

        def check(value: str) -> str | None:
            return None if fullmatch(value) is not None else message

    return check


def _check_string(value: str) -> str | None:
    if len(value) > _MAX_STRING:
        return _TOO_LONG
    if value.isascii():  # the common case: only U+000B and U+000C are "other" whitespace
        if value[0] not in "\x0b\x0c" or value.strip("\x0b\x0c"):
            return None
        return _ONLY_SPECIAL_SPACES
    if _STRING_CONTENT.search(value) is None:
        return _ONLY_SPECIAL_SPACES
    return _unicode_problem(value)


def _check_markdown(value: str) -> str | None:  # the spec's regex \s*(\S|\s)* allows anything
    if len(value) > _MAX_STRING:
        return _TOO_LONG
    return None if value.isascii() else _unicode_problem(value)


def _check_code(value: str) -> str | None:
    if _CODE.fullmatch(value) is None:
        return _CODE_MESSAGE
    if len(value) > _MAX_STRING:
        return _TOO_LONG
    return None if value.isascii() else _unicode_problem(value)


def _date_check(pattern: re.Pattern[str], message: str) -> Callable[[str], str | None]:
    fullmatch = pattern.fullmatch

    def check(value: str) -> str | None:
        if fullmatch(value) is None or (len(value) >= 10 and not _real_day(value)):
            return message
        return None

    return check


def _check_base64(value: str) -> str | None:
    if len(value) % 4 == 0 and _BASE64_COMPACT.fullmatch(value) is not None:
        return None
    if value.strip(" \t\r\n") and _BASE64_SPACED.fullmatch(value) is not None:
        return None
    return _format_message("base64Binary")


def _range_check(low: int, high: int, message: str) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if low <= value <= high else message

    return check


def _check_decimal(value: float) -> str | None:
    # JSON numbers are finite; Python's json module still reads NaN and Infinity.
    if value.__class__ is float and not math.isfinite(value):
        return _format_message("decimal")
    return None


_INT32_MAX = 2**31 - 1
_FORMAT_CHECKS: dict[str, Callable[[typing.Any], str | None]] = {
    "string": _check_string,
    "markdown": _check_markdown,
    "code": _check_code,
    "id": _pattern_check(_ID, _format_message("id")),
    "uri": _pattern_check(_NO_WHITESPACE, _format_message("uri"), text=True),
    "url": _pattern_check(_NO_WHITESPACE, _format_message("url"), text=True),
    "canonical": _pattern_check(_NO_WHITESPACE, _format_message("canonical"), text=True),
    "oid": _pattern_check(_OID, _format_message("oid")),
    "uuid": _pattern_check(_UUID, _format_message("uuid")),
    "xhtml": _unicode_problem,  # the Narrative div is checked beyond this (_Walk.node)
    "base64Binary": _check_base64,
    "date": _date_check(_DATE, _format_message("date")),
    "dateTime": _date_check(_DATETIME, _format_message("dateTime")),
    "instant": _date_check(_INSTANT, _format_message("instant")),
    "time": _pattern_check(_TIME, _format_message("time")),
    "decimal": _check_decimal,
    "integer": _range_check(-(2**31), _INT32_MAX, _format_message("integer")),
    "unsignedInt": _range_check(0, _INT32_MAX, _format_message("unsignedInt")),
    "positiveInt": _range_check(1, _INT32_MAX, _format_message("positiveInt")),
    # boolean: the JSON type is all there is to check.
}


def _comments_ok(value: object) -> bool:
    """fhir_comments, which fhir.resources accepts on every element: a string, a list of
    strings, or null (its field is ``str | list[str] | None``). Kept as pass 2 has it."""
    if value is None:
        return True
    if isinstance(value, str):
        return _unicode_problem(value) is None
    return isinstance(value, list) and all(
        isinstance(v, str) and _unicode_problem(v) is None for v in value
    )


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
    check: Callable[[typing.Any], str | None] | None  # the primitive's format checker
    binding: Binding | None = None
    extension_name: str | None = None  # "_name", if the model has that primitive extension
    # For a primitive: JSON type, format and binding in one call (see _primitive_validator).
    validate: Callable[[typing.Any], tuple[str, str] | None] | None = None
    schema: _Schema | None = None  # for a complex element: the model's schema, once looked up


@dataclass(slots=True)
class _Schema:
    elements: dict[str, _Element]
    required: tuple[_Element, ...]
    # Choice elements (value[x]) whose one-of is mandatory: prefix -> the JSON names.
    required_choices: dict[str, tuple[str, ...]]
    is_resource: bool
    special: str | None  # one of _SPECIAL_MODELS: checked beyond their elements


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


_SPECIAL_MODELS = ("Reference", "Identifier", "Narrative", "FHIRPrimitiveExtension")


def _compile(model: type[FHIRAbstractModel]) -> _Schema:
    elements: dict[str, _Element] = {}
    for name, info in model.model_fields.items():
        if name == "fhir_comments":
            continue  # not an element; _Walk.node checks it as fhir.resources does
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
            choice=None if json_name[0] == "_" else extra.get("one_of_many"),
            targets=None if not targets or "Resource" in targets else frozenset(targets),
            check=_FORMAT_CHECKS.get(primitive) if primitive else None,
        )
    for element in elements.values():
        if element.primitive is not None and f"_{element.name}" in elements:
            element.extension_name = f"_{element.name}"
    required_choices: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("one_of_many_required"):
            required_choices.setdefault(extra["one_of_many"], []).append(info.alias or name)
    special = model.__name__ if model.__name__ in _SPECIAL_MODELS else None
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
        schema = _compile(model)
        for (bound_model, element_name), binding in _bindings().items():
            if bound_model is model:
                schema.elements[element_name].binding = binding
        for element in schema.elements.values():
            if element.primitive is not None:
                element.validate = _primitive_validator(element)
        # Published only when complete: another thread may be validating.
        _SCHEMAS[model] = schema
    return schema


def _primitive_validator(element: _Element) -> Callable[[typing.Any], tuple[str, str] | None]:
    """One function that checks a (non-null) primitive value: its JSON type, then that a string
    is not empty, its format and a required binding. Returns None or (issue code, diagnostics).

    The hot path of the bulk loader: the common cases (a bound code, a plain ASCII string, uri
    or code) are answered without calling the format checker; anything else goes through it.
    """
    kind = element.json_kind
    wrong_type = (
        "structure",
        f"Wrong JSON type: a FHIR {element.primitive} must be {_JSON_KIND_TEXT[kind]}",
    )
    check = element.check or (lambda value: None)

    if kind == _JSON_BOOLEAN:

        def validate(value: typing.Any) -> tuple[str, str] | None:
            return None if value is True or value is False else wrong_type

    elif kind != _JSON_STRING:
        numbers = (int,) if kind == _JSON_INTEGER else (int, float)

        def validate(value: typing.Any) -> tuple[str, str] | None:
            if not isinstance(value, numbers) or isinstance(value, bool):
                return wrong_type
            problem = check(value)
            return None if problem is None else ("value", problem)

    elif element.binding is not None:
        codes = element.binding.codes  # codes in a value set are well-formed codes
        not_bound = ("code-invalid", _binding_message(element.binding))

        def validate(value: typing.Any) -> tuple[str, str] | None:
            if not isinstance(value, str):
                return wrong_type
            if value in codes:
                return None
            if not value:
                return _EMPTY_STRING
            problem = check(value)
            return not_bound if problem is None else ("value", problem)

    elif element.primitive == "string":

        def validate(value: typing.Any) -> tuple[str, str] | None:
            if not isinstance(value, str):
                return wrong_type
            if not value:
                return _EMPTY_STRING
            # Plain ASCII not starting with U+000B/U+000C (see _check_string) is a good string.
            if value.isascii() and value[0] > "\x0c" and len(value) <= _MAX_STRING:
                return None
            problem = _check_string(value)
            return None if problem is None else ("value", problem)

    elif element.primitive in ("code", "uri", "url", "canonical"):
        # Printable ASCII without spaces has no whitespace at all: a good code and uri.
        def validate(value: typing.Any) -> tuple[str, str] | None:
            if not isinstance(value, str):
                return wrong_type
            if not value:
                return _EMPTY_STRING
            if (
                value.isascii()
                and " " not in value
                and value.isprintable()
                and len(value) <= _MAX_STRING
            ):
                return None
            problem = check(value)
            return None if problem is None else ("value", problem)

    else:

        def validate(value: typing.Any) -> tuple[str, str] | None:
            if not isinstance(value, str):
                return wrong_type
            if not value:
                return _EMPTY_STRING
            problem = check(value)
            return None if problem is None else ("value", problem)

    return validate


_EMPTY_STRING = ("value", "String must not be empty")


def _binding_message(binding: Binding) -> str:
    system = f" (system {binding.system})" if binding.system else ""
    return (
        f"Code is not in the required value set {binding.value_set}{system}; "
        f"allowed codes: {binding.allowed()}"
    )


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
        # The hot loop of the bulk loader: paths are only built for an issue or a child object.
        elements = schema.elements
        choices_seen: set[str] | None = None
        for key, value in data.items():
            element = elements.get(key)
            if element is None:
                if key == "resourceType" and schema.is_resource:
                    continue  # checked by validate_resource, or chose the contained model
                if key == "fhir_comments":
                    if not _comments_ok(value):
                        self.add(
                            "structure",
                            "fhir_comments must be a string or an array of strings",
                            f"{path}.{key}",
                        )
                    continue
                self.unknown(schema, key, path)
                continue
            if element.choice is not None:  # never set on a "_valueX" extension
                if choices_seen is None:
                    choices_seen = {element.choice}
                elif element.choice in choices_seen:
                    self.add(
                        "structure",
                        f"Only one {element.choice}[x] element may be present",
                        f"{path}.{element.choice}[x]",
                    )
                else:
                    choices_seen.add(element.choice)
            validate = element.validate
            if value is None:
                self.add("structure", "Element must not be null", f"{path}.{key}")
            elif element.many:
                if not isinstance(value, list):
                    self.add("structure", "Element must be a JSON array", f"{path}.{key}")
                elif not value:
                    self.add("structure", "Array must not be empty", f"{path}.{key}")
                elif validate is not None:
                    for i, item in enumerate(value):
                        if item is None:
                            # A null in a primitive array lines values up with "_name" extensions.
                            if element.extension_name not in data:
                                self.add(
                                    "structure",
                                    "Array must not contain null",
                                    f"{path}.{key}[{i}]",
                                )
                        else:
                            problem = validate(item)
                            if problem is not None:
                                self.add(*problem, f"{path}.{key}[{i}]")
                else:
                    where = f"{path}.{key}"
                    nulls_ok = key[0] == "_"  # "_given": [null, {...}] lines up with given
                    for i, item in enumerate(value):
                        if item is None:
                            if not nulls_ok:
                                self.add(
                                    "structure", "Array must not contain null", f"{where}[{i}]"
                                )
                        else:
                            self.item(element, item, f"{where}[{i}]")
            elif isinstance(value, list):
                self.add(
                    "structure",
                    "Element must be a single value, not an array",
                    f"{path}.{key}",
                )
            elif validate is not None:
                problem = validate(value)
                if problem is not None:
                    self.add(*problem, f"{path}.{key}")
            else:
                self.item(element, value, f"{path}.{key}")
        for element in schema.required:
            if data.get(element.name) is None and not (
                element.primitive_required and self.stands_in(data, element)
            ):
                self.add("required", "Required element is missing", f"{path}.{element.name}")
        if schema.required_choices:
            for choice, names in schema.required_choices.items():
                # Only a value counts: fhir.resources does not take a "_valueX" extension alone.
                if not any(data.get(n) is not None for n in names):
                    self.add(
                        "required",
                        f"One of {', '.join(names)} is required",
                        f"{path}.{choice}[x]",
                    )
        special = schema.special
        if special is None or special == "Reference":  # Reference: see item()
            return
        if special == "Identifier":
            self.identifier(data, path)
        elif special == "Narrative":
            div = data.get("div")
            if isinstance(div, str) and div and not _XHTML_DIV.match(div):
                self.add(
                    "value",
                    "Narrative div must be an XHTML <div> element with "
                    'xmlns="http://www.w3.org/1999/xhtml"',
                    f"{path}.div",
                )
        elif special == "FHIRPrimitiveExtension" and not any(
            data.get(k) is not None for k in ("id", "extension", "fhir_comments")
        ):
            # "_name": {...} must say something (ele-1), as fhir.resources has it. (item() has
            # already reported an empty object.)
            self.add(
                "structure", "A primitive's '_' extension sibling needs an id or extensions", path
            )

    @staticmethod
    def stands_in(data: dict, element: _Element) -> bool:
        """A "_name" extension stands in for a missing required primitive if it has extensions
        (http://hl7.org/fhir/R4/extensibility.html#Special-Case), as fhir.resources has it."""
        if element.extension_name is None:
            return False
        extension = data.get(element.extension_name)
        return isinstance(extension, dict) and bool(extension.get("extension"))

    def unknown(self, schema: _Schema, key: str, path: str) -> None:
        if _unicode_problem(key) is not None:  # reported on the object, as fhir.resources does
            self.add("structure", "An element name is not valid Unicode text", path)
            return
        if key == "resourceType":
            why = " (only a resource has a resourceType)"
        elif key[:1] == "_" and key[1:] in schema.elements:
            why = " (only a primitive element has a '_' extension sibling)"
        else:
            why = ""
        shown = key if len(key) <= 64 else key[:64] + "..."
        self.add("structure", f"Unknown element '{shown}'{why}", f"{path}.{key}")

    def item(self, element: _Element, value: object, where: str) -> None:
        """A complex value (not null, not a list)."""
        if not isinstance(value, dict):
            self.add("structure", "Element must be a JSON object", where)
            return
        if not value:
            self.add("structure", "Object must not be empty", where)
            return
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
            schema = _schema(model)
        else:
            schema = element.schema
            if schema is None:
                assert element.model is not None
                schema = element.schema = _schema(element.model)
        binding = element.binding
        if binding is not None:
            self.codings(binding, value, where)
        self.node(value, schema, where)
        if schema.special == "Reference":
            self.reference(value, where, element.targets)

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
        self.add("code-invalid", _binding_message(binding), where)

    def reference(self, data: dict, path: str, targets: frozenset[str] | None) -> None:
        """Reference.reference: its syntax and, for a relative or local reference, that it
        points at a type the element allows (targets; None means any)."""
        ref = data.get("reference")
        if not isinstance(ref, str) or not ref:
            return  # type errors are already reported
        where = f"{path}.reference"
        if ref[0] == "#":
            match = _LOCAL_REF.fullmatch(ref)
            if match is None:
                self.add("value", f"Malformed reference: must be {_REFERENCE_FORMS}", where)
            elif match["id"] is not None:
                target = self.contained.get(match["id"])
                if target is None:
                    self.add(
                        "value",
                        "Local reference does not match the id of a contained resource",
                        where,
                    )
                elif targets is not None:
                    self.reference_target(target, targets, where)
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
        elif targets is not None:
            self.reference_target(match["type"], targets, where)

    def reference_target(self, target: str, targets: frozenset[str], where: str) -> None:
        if target in R4_RESOURCE_TYPES and target not in targets:
            self.add(
                "value",
                f"Reference to {target} is not allowed here; allowed types: "
                + ", ".join(sorted(targets)),
                where,
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

_CHOICE_FIELDS = re.compile(r"\[(.*?)\]")


def _resolve_loc(
    loc: tuple[int | str, ...], data: dict, model: type[FHIRAbstractModel], path: str
) -> tuple[str, _Element | None, type[FHIRAbstractModel] | None, object]:
    """Turn a pydantic error location into (element path, element, model, JSON value there).

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
    return path, element, current, node


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
    path, element, here, node = _resolve_loc(tuple(err["loc"]), data, model, root)
    path = _printable(path)  # as the walk has it (an unknown key may hold anything)
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
        # A resourceType (or resource_type) inside an element: the walk names the key itself.
        for key in ("resourceType", "resource_type"):
            if isinstance(node, dict) and key in node:
                path = f"{path}.{key}"
                break
        return Issue("structure", "Unexpected or wrong resourceType", path)
    if primitive is not None:
        return Issue("value", _format_message(primitive), path)
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
    resource: object,
    *,
    expected_type: str | None = None,
    allow_urn: bool = True,
    thorough: bool = True,
) -> dict:
    """Validate a parsed JSON resource for a write; return it unchanged or raise FhirError.

    400 if it is not a JSON object with a supported resourceType (or not ``expected_type``,
    e.g. the type in the URL); 422 with one issue per problem if it is not valid FHIR R4.
    ``allow_urn=False`` rejects ``urn:uuid:`` references, which are only meaningful inside a
    transaction/batch Bundle that resolves them before storage.

    ``thorough=False`` runs only the walk (pass 1), about six times cheaper. It accepts and
    rejects exactly what ``thorough=True`` does (tests/fhir/test_validation_fast.py); the
    issues are the same too, apart from pass 2's wording. REST writes keep the default.
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
            f"Resource type '{_printable(resource_type[:64])}' is not supported; supported types are "
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
        issues = _issues(resource, model, resource_type, allow_urn, thorough)
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
    resource: dict,
    model: type[FHIRAbstractModel],
    resource_type: str,
    allow_urn: bool,
    thorough: bool = True,
) -> list[Issue]:
    walk = _Walk(allow_urn=allow_urn, contained=_contained_ids(resource))
    walk.node(resource, _schema(model), resource_type)
    issues = walk.issues
    if not thorough or walk.unknown_resource_type:
        return issues
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        reported = {i.expression for i in issues if i.expression}
        try:
            errors = exc.errors(include_url=False, include_input=False)
        except UnicodeError:
            # pydantic cannot render a message that quotes a lone surrogate; the walk has
            # reported every string that holds one.
            errors = []
            if not issues:
                issues.append(Issue("value", "The resource contains text that is not Unicode"))
        for err in errors:
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
