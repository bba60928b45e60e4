"""Search-index extraction: resource JSON -> :class:`IndexEntries` (R4 search semantics).

``extract(resource)`` is pure and runs on every write and on the bulk-load path, so the work
per resource is kept small: at import time every search parameter's paths are compiled and
grouped by the top-level JSON key that starts them, and extraction only looks at the keys the
resource actually has. Repeated short strings (code displays, names) and date strings hit
small caches.

Measured (CPython 3.11, this repository's venv, one core of an otherwise idle 2-core VM,
``timeit``, best of 5 x 20 000 calls): a typical vital-signs Observation (identifier, meta
profile+tag+source, category, LOINC+SNOMED code with text, subject, encounter,
effectiveDateTime, issued, performer, valueQuantity; 19 entries) takes about 23 µs; a minimal
one (code, subject, effectiveDateTime, valueQuantity) about 17 µs; a rich Patient (two
identifiers, two names, three telecoms, address, GP, managing organisation; 30 entries) about
32 µs. About a third of that is building the frozen entry dataclasses.
``tests/fhir/test_extract.py::test_extract_is_fast`` guards against regressions.

Value semantics
---------------
token
    Coding -> (system, code, normalised display). CodeableConcept -> one entry per coding,
    plus ``(None, None, text)`` for ``CodeableConcept.text`` unless a coding's display already
    says the same, so ``:text`` can match either.
    Identifier -> (system, value, normalised ``Identifier.type.text``).
    ContactPoint -> (``ContactPoint.use``, value): R4 leaves the system column empty for
    ContactPoint and lets a server use ``ContactPoint.use`` ("home", "work", "mobile"...),
    which we do; a bare ``phone=0113...`` search is system-agnostic anyway.
    code / string / id / uri primitives -> (None, value). The system of a plain ``code``
    element (e.g. ``gender``, implied by its required binding) is *not* stored, so
    ``gender=female`` matches (system-agnostic) and so does ``gender=|female``, while
    ``gender=http://hl7.org/fhir/administrative-gender|female`` only matches if the search
    compiler drops implied systems.
    boolean -> (None, "true"/"false").
string
    HumanName -> family, each given, prefix, suffix, text as separate entries; Address ->
    each line, city, district, state, postalCode, country, text; plain strings as they are.
    ``value`` is :func:`normalize_string`, ``exact`` as written.
date
    date/dateTime/instant -> [low, high] epoch seconds UTC over the precision written (see
    :func:`date_range`; a value with fractional seconds is a point); Period -> start.low ..
    end.high with open ends DATE_MIN/DATE_MAX;
    Timing -> each event, plus repeat.boundsPeriod; other choice types (Age, Range, string)
    are never read.
number / quantity
    value (bools ignored); Quantity/Age/Duration code = ``code`` or else ``unit``;
    Money -> system ``urn:iso:std:iso:4217``, code = currency. No entry without a value.
reference
    "Type/id" and "Type/id/_history/v" -> (Type, id, None); absolute "http(s)://.../Type/id"
    -> (Type, id, url) (url without any /_history/v); "#contained" and "urn:..." -> nothing;
    Reference with only an identifier -> nothing; canonical -> (None, None, url), plus the
    url without "|version" when one is given.
uri
    uri / url / canonical values as written.
meta
    ``meta.tag``/``meta.security`` -> tokens ``_tag``/``_security``; ``meta.profile`` ->
    uri ``_profile``; ``meta.source`` -> uri ``_source``. ``_id``/``_lastUpdated`` are never
    emitted (the store has them as columns).
compartments
    For the parameters in :data:`carelight.fhir.compartment.PATIENT_COMPARTMENT`, the ids of
    *local* ``Patient/<id>`` references. Absolute URLs are not counted: ``http://other/Patient/1``
    is not our Patient 1, and counting it would leak a resource into a stranger's compartment
    (writers should turn references to this server's own base URL into relative ones). A
    Patient with an id is in its own compartment.

Entries are de-duplicated within each list (order of first appearance kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from carelight.fhir.compartment import PATIENT_COMPARTMENT
from carelight.fhir.fhirpath import CHOICE, KEY, compile_path, walk
from carelight.fhir.index_entries import (
    DATE_MAX,
    DATE_MIN,
    DateEntry,
    IndexEntries,
    NumberEntry,
    QuantityEntry,
    ReferenceEntry,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from carelight.fhir.resource_types import SUPPORTED_TYPES
from carelight.fhir.searchparams import COMMON_PARAMS, DERIVED, REGISTRY, SearchParam
from carelight.fhir.text import normalise

__all__ = [
    "date_range",
    "extract",
    "normalize_string",
    "parse_reference",
]

# --- strings ---------------------------------------------------------------------------------

_NORM_CACHE: dict[str, str] = {}
_CACHE_LIMIT = 100_000
_CACHEABLE_LEN = 128


def normalize_string(s: str) -> str:
    """:func:`carelight.fhir.text.normalise` (shared with the search compiler), cached.

    Lower-case, accents removed (NFKD, combining marks dropped), whitespace collapsed, trimmed.
    """
    r = _NORM_CACHE.get(s)
    if r is None:
        r = normalise(s)
        if len(s) <= _CACHEABLE_LEN:
            if len(_NORM_CACHE) >= _CACHE_LIMIT:
                _NORM_CACHE.clear()
            _NORM_CACHE[s] = r
    return r


# --- dates -----------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DATE_CACHE: dict[str, tuple[float, float] | None] = {}
_MIN_MS = round(DATE_MIN * 1000)
_MAX_MS = round(DATE_MAX * 1000)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _month_days(y: int, m: int) -> int:
    if m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[m]


def _parse_date(s: str) -> tuple[float, float] | None:
    m = _DATE_RE.fullmatch(s)
    if m is None:
        return None
    ys, ms, ds, hs, mins, secs, frac, tz = m.groups()
    y = int(ys)
    if ms is None:  # year
        lo = _days_from_civil(y, 1, 1) * 86_400_000
        hi = _days_from_civil(y + 1, 1, 1) * 86_400_000 - 1
    else:
        mo = int(ms)
        if not 1 <= mo <= 12:
            return None
        if ds is None:  # month
            lo = _days_from_civil(y, mo, 1) * 86_400_000
            hi = lo + _month_days(y, mo) * 86_400_000 - 1
        else:
            d = int(ds)
            if not 1 <= d <= _month_days(y, mo):
                return None
            day_ms = _days_from_civil(y, mo, d) * 86_400_000
            if hs is None:  # day
                lo = day_ms
                hi = lo + 86_400_000 - 1
            else:
                h, mi = int(hs), int(mins)
                if h > 23 or mi > 59:
                    return None
                base = day_ms + (h * 3600 + mi * 60) * 1000
                if tz is not None and tz != "Z":
                    oh, om = int(tz[1:3]), int(tz[4:6])
                    if oh > 14 or om > 59:
                        return None
                    offset = (oh * 3600 + om * 60) * 1000
                    base = base - offset if tz[0] == "+" else base + offset
                if secs is None:  # minute
                    lo = base
                    hi = lo + 60_000 - 1
                else:
                    sec = int(secs)
                    if sec > 60:  # 60: a leap second, kept as written
                        return None
                    lo = base + sec * 1000
                    if frac is None:  # second
                        hi = lo + 999
                    else:  # a fraction makes the value a point (as the search side reads it)
                        scale = 10 ** len(frac)
                        exact = (lo // 1000 * scale + int(frac)) / scale  # correctly rounded
                        point = min(max(exact, DATE_MIN), DATE_MAX)
                        return (point, point)
    lo = min(max(lo, _MIN_MS), _MAX_MS)
    hi = min(max(hi, _MIN_MS), _MAX_MS)
    return (lo / 1000, hi / 1000)


def date_range(s: str) -> tuple[float, float] | None:
    """[low, high] in epoch seconds (UTC) covered by a FHIR date/dateTime/instant string.

    The range spans the precision written: "2020" is 2020-01-01T00:00:00Z ..
    2020-12-31T23:59:59.999Z, "2020-03-01T10:00+01:00" is 09:00:00 .. 09:00:59.999 UTC; a
    value with fractional seconds is a point (as the search side reads one). A dateTime
    without a timezone is taken as UTC.
    Values outside year 1..9999 are clamped to DATE_MIN/DATE_MAX. None if not a valid date.
    """
    try:
        return _DATE_CACHE[s]
    except KeyError:
        pass
    r = _parse_date(s)
    if len(_DATE_CACHE) >= _CACHE_LIMIT:
        _DATE_CACHE.clear()
    _DATE_CACHE[s] = r
    return r


# --- references ------------------------------------------------------------------------------

_TYPE = r"[A-Z][A-Za-z]+"
_ID = r"[A-Za-z0-9\-.]{1,64}"
_RELATIVE = re.compile(rf"({_TYPE})/({_ID})(?:/_history/[^/]+)?")
_ABS_TAIL = re.compile(rf"/({_TYPE})/({_ID})$")
_HISTORY = re.compile(r"/_history/[^/]*$")

Ref = tuple[str | None, str | None, str | None]


_REF_CACHE: dict[str, Ref | None] = {}


def parse_reference(reference: str) -> Ref | None:
    """(target_type, target_id, url) for a Reference.reference string; None to skip it."""
    try:
        return _REF_CACHE[reference]
    except KeyError:
        pass
    r = _parse_reference(reference)
    if len(reference) <= _CACHEABLE_LEN:
        if len(_REF_CACHE) >= _CACHE_LIMIT:
            _REF_CACHE.clear()
        _REF_CACHE[reference] = r
    return r


def _parse_reference(reference: str) -> Ref | None:
    if not reference or reference[0] == "#" or reference.startswith("urn:"):
        return None
    m = _RELATIVE.fullmatch(reference)
    if m is not None:
        return (m.group(1), m.group(2), None)
    if "://" in reference:
        url = _HISTORY.sub("", reference)
        m = _ABS_TAIL.search(url)
        if m is not None:
            return (m.group(1), m.group(2), url)
        return (None, None, url)
    return None


# --- per-value handlers ----------------------------------------------------------------------
# A handler appends parameter-less tuples for one value to ``out``; extraction prefixes the
# parameter names, so an element shared by several parameters (code / combo-code, subject /
# patient) is read once.

Handler = Callable[[Any, list], None]


def _coding(c: Any, out: list) -> None:
    if type(c) is not dict:
        return
    code = c.get("code")
    if type(code) is not str or not code:
        return
    display = c.get("display")
    text = normalize_string(display) if type(display) is str and display else None
    out.append((c.get("system") or None, code, text or None))


def _token(v: Any, out: list) -> None:
    t = type(v)
    if t is str:
        if v:
            out.append((None, v, None))
    elif t is bool:
        out.append((None, "true" if v else "false", None))
    elif t is dict:
        coding = v.get("coding")
        if coding is not None or ("text" in v and "value" not in v and "code" not in v):
            start = len(out)
            if type(coding) is list:  # CodeableConcept
                for c in coding:
                    _coding(c, out)
            text = v.get("text")
            if type(text) is str and text:
                norm = normalize_string(text)
                # When a coding's display already says the same, :text finds it there; a
                # text-only row would only grow the index (it is most of the time the case).
                if norm and not any(e[2] == norm for e in out[start:]):
                    out.append((None, None, norm))
        elif "code" in v:  # Coding
            _coding(v, out)
        else:  # Identifier
            value = v.get("value")
            if type(value) is str and value:
                itype = v.get("type")
                text = None
                if type(itype) is dict:
                    ttext = itype.get("text")
                    if type(ttext) is str and ttext:
                        text = normalize_string(ttext) or None
                out.append((v.get("system") or None, value, text))


def _contact_point(v: Any, out: list) -> None:
    if type(v) is dict:
        value = v.get("value")
        if type(value) is str and value:
            use = v.get("use")
            out.append((use if type(use) is str and use else None, value, None))


_STRING_PARTS = frozenset(
    {
        # HumanName
        "family",
        "given",
        "prefix",
        "suffix",
        "text",
        # Address
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
    }
)


def _add_string(s: Any, out: list) -> None:
    if type(s) is str and s:
        norm = normalize_string(s)
        if norm:
            out.append((norm, s))


def _string(v: Any, out: list) -> None:
    t = type(v)
    if t is str:
        _add_string(v, out)
    elif t is dict:  # HumanName / Address
        for key, part in v.items():
            if key in _STRING_PARTS:
                if type(part) is list:
                    for p in part:
                        _add_string(p, out)
                else:
                    _add_string(part, out)


def _period(v: dict) -> tuple[float, float] | None:
    start, end = v.get("start"), v.get("end")
    if start is None and end is None:
        return None
    if start is None:
        lo = DATE_MIN
    else:
        r = date_range(start) if type(start) is str else None
        if r is None:
            return None
        lo = r[0]
    if end is None:
        hi = DATE_MAX
    else:
        r = date_range(end) if type(end) is str else None
        if r is None:
            return None
        hi = r[1]
    if lo > hi:  # end before start: keep the entry usable rather than drop it
        lo, hi = hi, lo
    return (lo, hi)


def _date(v: Any, out: list) -> None:
    t = type(v)
    if t is str:
        r = date_range(v)
        if r is not None:
            out.append(r)
    elif t is dict:
        if "start" in v or "end" in v:  # Period
            r = _period(v)
            if r is not None:
                out.append(r)
        else:  # Timing (Range, Age ... have neither and add nothing)
            events = v.get("event")
            if type(events) is list:
                for e in events:
                    if type(e) is str:
                        r = date_range(e)
                        if r is not None:
                            out.append(r)
            repeat = v.get("repeat")
            if type(repeat) is dict:
                bounds = repeat.get("boundsPeriod")
                if type(bounds) is dict:
                    r = _period(bounds)
                    if r is not None:
                        out.append(r)


_INF = float("inf")


def _as_number(value: Any) -> float | None:
    t = type(value)
    if t is float:
        return value if value == value and abs(value) != _INF else None
    if t is int:
        return float(value)
    if t is str:  # decimals kept as strings by some pipelines
        try:
            f = float(value)
        except ValueError:
            return None
        return f if f == f and abs(f) != _INF else None
    return None  # bool and everything else


def _number(v: Any, out: list) -> None:
    n = _as_number(v)
    if n is not None:
        out.append((n,))


def _quantity(v: Any, out: list) -> None:
    if type(v) is not dict:
        return
    n = _as_number(v.get("value"))
    if n is None:
        return
    currency = v.get("currency")
    if type(currency) is str and currency:  # Money
        out.append((n, "urn:iso:std:iso:4217", currency))
        return
    code = v.get("code") or v.get("unit")
    out.append((n, v.get("system") or None, code if type(code) is str and code else None))


def _reference(v: Any, out: list) -> None:
    t = type(v)
    if t is dict:
        ref = v.get("reference")
        if type(ref) is str:
            parsed = parse_reference(ref)
            if parsed is not None:
                out.append(parsed)
    elif t is str and v and v[0] != "#":  # canonical
        m = _RELATIVE.fullmatch(v)
        if m is not None:
            out.append((m.group(1), m.group(2), None))
            return
        out.append((None, None, v))
        bar = v.find("|")
        if bar > 0:
            out.append((None, None, v[:bar]))


def _uri(v: Any, out: list) -> None:
    if type(v) is str and v:
        out.append((v,))


# Index of each kind's list in the per-call accumulator.
TOKENS, STRINGS, DATES, NUMBERS, QUANTITIES, REFERENCES, URIS = range(7)

_HANDLERS: dict[str, tuple[Handler, int]] = {
    "token": (_token, TOKENS),
    "string": (_string, STRINGS),
    "date": (_date, DATES),
    "number": (_number, NUMBERS),
    "quantity": (_quantity, QUANTITIES),
    "reference": (_reference, REFERENCES),
    "uri": (_uri, URIS),
}

# --- plans -----------------------------------------------------------------------------------

# (parameter names, remaining steps, handler, kind): one evaluation feeds every name.
_Entry = tuple[tuple[str, ...], tuple, Handler, int]


class _Plan:
    __slots__ = ("always", "by_key", "compartment_params")

    def __init__(
        self,
        by_key: dict[str, tuple[_Entry, ...]],
        always: tuple[_Entry, ...],
        compartment_params: frozenset[str],
    ) -> None:
        self.by_key = by_key
        self.always = always
        self.compartment_params = compartment_params


def _build_plan(
    params: dict[str, SearchParam], compartment: tuple[str, ...], derived: dict | None = None
) -> _Plan:
    derived = derived or {}
    # (key or None for "always", steps, handler, kind) -> parameter names
    grouped: dict[tuple, list[str]] = {}
    # Parameters answered from other parameters' rows (searchparams.DERIVED) are not written;
    # a compartment named by one is found through the rows it is derived from.
    compartment = tuple(
        n for c in compartment for n in (derived[c].names if c in derived else (c,))
    )
    for param in params.values():
        if param.type not in _HANDLERS or param.store_handled or not param.paths:
            continue
        if param.name in derived:
            continue
        handler, kind = _HANDLERS[param.type]
        for path in param.paths:
            cp = compile_path(path, param.type)
            h = _contact_point if handler is _token and cp.last_key == "telecom" else handler
            if cp.always:
                grouped.setdefault((None, cp.steps, h, kind), []).append(param.name)
                continue
            first = cp.steps[0]
            if first[0] not in (KEY, CHOICE):  # pragma: no cover - compile_path guarantees it
                raise ValueError(f"bad path {path!r}")
            keys = (first[1],) if first[0] == KEY else first[1]
            for key in keys:
                names = grouped.setdefault((key, cp.steps[1:], h, kind), [])
                if param.name not in names:
                    names.append(param.name)
    by_key: dict[str, list[_Entry]] = {}
    always: list[_Entry] = []
    for (key, steps, h, kind), names in grouped.items():
        entry = (tuple(names), steps, h, kind)
        if key is None:
            always.append(entry)
        else:
            by_key.setdefault(key, []).append(entry)
    return _Plan({k: tuple(v) for k, v in by_key.items()}, tuple(always), frozenset(compartment))


_PLANS: dict[str, _Plan] = {
    t: _build_plan(REGISTRY[t], PATIENT_COMPARTMENT.get(t, ()), DERIVED.get(t))
    for t in SUPPORTED_TYPES
}
_COMMON_PLAN = _build_plan(COMMON_PARAMS, ())
_PATIENT_PLAN = _PLANS["Patient"]


# --- extraction ------------------------------------------------------------------------------


def _collect(resource: dict) -> tuple[tuple[list, ...], set[str]]:
    """Raw entry tuples per parameter type (with repeats) and the compartments' Patient ids."""
    plan = _PLANS.get(resource.get("resourceType"), _COMMON_PLAN)  # type: ignore[arg-type]
    acc: tuple[list, ...] = ([], [], [], [], [], [], [])
    by_key = plan.by_key
    found: list = []
    for key, value in resource.items():
        entries = by_key.get(key)
        if entries is None:
            continue
        for names, steps, handler, kind in entries:
            if steps:
                if len(steps) == 1 and steps[0][0] == KEY:  # the common case, inlined
                    sub = steps[0][1]
                    for item in value if type(value) is list else (value,):
                        if type(item) is dict:
                            v = item.get(sub)
                            if type(v) is list:
                                for x in v:
                                    handler(x, found)
                            elif v is not None:
                                handler(v, found)
                else:
                    for v in walk(value if type(value) is list else [value], steps):
                        handler(v, found)
            elif type(value) is list:
                for v in value:
                    handler(v, found)
            else:
                handler(value, found)
            if found:
                target = acc[kind]
                for name in names:
                    for f in found:
                        target.append((name, *f))
                found = []
    for names, steps, handler, kind in plan.always:
        for v in walk([resource], steps):
            handler(v, found)
        if found:
            target = acc[kind]
            for name in names:
                for f in found:
                    target.append((name, *f))
            found = []

    compartments: set[str] = set()
    references = acc[5]
    if references and plan.compartment_params:
        cparams = plan.compartment_params
        for param, ttype, tid, url in references:
            if ttype == "Patient" and url is None and param in cparams:
                compartments.add(tid)
    if plan is _PATIENT_PLAN:
        rid = resource.get("id")
        if type(rid) is str and rid:
            compartments.add(rid)
    return acc, compartments


def extract(resource: dict) -> IndexEntries:
    """The search-index entries of one resource (see the module docstring for the rules).

    Unsupported or missing ``resourceType``: only the common (meta) parameters are extracted.
    """
    acc, compartments = _collect(resource)
    tokens, strings, dates, numbers, quantities, references, uris = acc
    result = IndexEntries(compartments=compartments)
    if tokens:
        result.tokens = [TokenEntry(*t) for t in dict.fromkeys(tokens)]
    if strings:
        result.strings = [StringEntry(*t) for t in dict.fromkeys(strings)]
    if dates:
        result.dates = [DateEntry(*t) for t in dict.fromkeys(dates)]
    if numbers:
        result.numbers = [NumberEntry(*t) for t in dict.fromkeys(numbers)]
    if quantities:
        result.quantities = [QuantityEntry(*t) for t in dict.fromkeys(quantities)]
    if references:
        result.references = [ReferenceEntry(*t) for t in dict.fromkeys(references)]
    if uris:
        result.uris = [UriEntry(*t) for t in dict.fromkeys(uris)]
    return result


# Stored string values are cut to the column width (512).
STRING_WIDTH = 512


def extract_rows(resource: dict) -> tuple[list[tuple], ...]:
    """What :func:`extract` finds, as plain tuples ready to insert (the bulk path's form).

    One list per index table, in the order of ``IndexEntries``' fields, then the compartment
    list as ``(patient_id,)`` tuples, sorted. Tuples pickle and insert far faster than the entry
    objects, and building them directly skips a conversion on the hottest path of a load.
    """
    acc, compartments = _collect(resource)
    tokens, strings, dates, numbers, quantities, references, uris = acc
    return (
        list(dict.fromkeys(tokens)),
        list(dict.fromkeys((p, v[:STRING_WIDTH], e[:STRING_WIDTH]) for p, v, e in strings)),
        list(dict.fromkeys(dates)),
        list(dict.fromkeys(numbers)),
        list(dict.fromkeys(quantities)),
        list(dict.fromkeys(references)),
        list(dict.fromkeys(uris)),
        [(p,) for p in sorted(compartments)],
    )
