"""Properties: the API's search results equal a brute-force filter written here, on every engine.

Hypothesis generates small sets of Patients and Observations (names with accents and mixed
case, genders, dates at every precision, quantities with and without decimals) and queries
over them; each query's result must equal what the plain-Python reference below computes
from the R4 search rules (http://hl7.org/fhir/R4/search.html):

* string: case- and accent-insensitive "starts with"; ``:exact`` equal as written;
  ``:contains`` anywhere. ``name`` matches any part of the HumanName.
* token: the code; ``:not`` everything else, resources without a value included.
* date: the value is a range [low, high] over its precision; the search value is one too.
  eq: target inside search; ne: not eq; gt: target.high > search.high; lt: target.low <
  search.low; ge: gt or eq; le: lt or eq; sa: target.low > search.high; eb: target.high <
  search.low.
* number/quantity: eq/ne honour the implicit precision of the search value (5.4 is [5.35,
  5.45)); gt lt ge le sa eb compare with the value as written; ``|system|code`` must match.
* a comma ORs values; a repeated parameter ANDs.
* ``_sort`` orders by the lowest value ascending and the highest descending; pages of
  ``_count`` concatenated are the whole result, no duplicates, no gaps.

CI runs 25 derandomised examples per test. For a deeper run:
``HYPOTHESIS_PROFILE=deep .venv/bin/python -m pytest tests/spec/test_properties.py``
(``HYPOTHESIS_MAX_EXAMPLES`` sets how many, default 500; random, not derandomised).
"""

from __future__ import annotations

import calendar
import os
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import DataObject
from sqlalchemy import text

from carelight.fhir import schema

_FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
if os.environ.get("HYPOTHESIS_PROFILE") == "deep":
    PROPERTY = settings(
        max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "500")),
        deadline=None,
        suppress_health_check=_FIXTURE_OK,
    )
else:
    PROPERTY = settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_FIXTURE_OK,
    )

UCUM = "http://unitsofmeasure.org"
DATE_PREFIXES = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
NUMBER_PREFIXES = DATE_PREFIXES
GENDERS = ("male", "female", "other", "unknown", None)


# -- the store, emptied between examples ------------------------------------------------------
def empty(store) -> None:
    """Every table emptied: each Hypothesis example starts from nothing."""
    tables = (*schema.INDEX_TABLES, schema.compartment, schema.resource_version, schema.resource)
    with store.engine.begin() as conn:
        for table in tables:
            conn.execute(text(f"DELETE FROM {table.name}"))


def load(client, store, resources: list[dict]) -> None:
    empty(store)
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})  # fmt: skip
    assert r.status_code == 200, r.text


def search(client, res_type: str, pairs: list[tuple[str, str]]) -> list[str]:
    r = client.get(f"/fhir/{res_type}", params=[*pairs, ("_count", "1000")])
    assert r.status_code == 200, f"{pairs}: {r.text}"
    body = r.json()
    assert "next" not in {link["relation"] for link in body["link"]}
    return [e["resource"]["id"] for e in body.get("entry", [])]


# -- the reference: R4 semantics in plain Python ---------------------------------------------
def fold(s: str) -> str:
    """Case- and accent-insensitive form, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFD", s)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.lower().split())


_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2}))?)?)?"
)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp()) * 1000


def date_range(value: str) -> tuple[int, int]:
    """[low, high] in epoch milliseconds, both inclusive, over the precision written."""
    m = _DATE.fullmatch(value)
    assert m, value
    y, mo, d, h, mi, s, tz = m.groups()
    year = int(y)
    if mo is None:
        start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    elif d is None:
        start = datetime(year, int(mo), 1, tzinfo=UTC)
        end = start + timedelta(days=calendar.monthrange(year, int(mo))[1])
    elif h is None:
        start = datetime(year, int(mo), int(d), tzinfo=UTC)
        end = start + timedelta(days=1)
    else:
        if tz == "Z":
            zone = UTC
        else:
            sign = 1 if tz[0] == "+" else -1
            zone = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
        start = datetime(year, int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=zone)
        end = start + (timedelta(seconds=1) if s is not None else timedelta(minutes=1))
    return _ms(start), _ms(end) - 1


def date_matches(prefix: str, search_value: str, target: str | None) -> bool:
    if target is None:
        return False
    lo, hi = date_range(target)
    s_lo, s_hi = date_range(search_value)
    eq = lo >= s_lo and hi <= s_hi
    return {
        "": eq,
        "eq": eq,
        "ne": not eq,
        "gt": hi > s_hi,
        "lt": lo < s_lo,
        "ge": hi > s_hi or eq,
        "le": lo < s_lo or eq,
        "sa": lo > s_hi,
        "eb": hi < s_lo,
    }[prefix]


def number_matches(prefix: str, search_value: str, target: Decimal) -> bool:
    d = Decimal(search_value)
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    eq = d - half <= target < d + half
    return {
        "": eq,
        "eq": eq,
        "ne": not eq,
        "gt": target > d,
        "lt": target < d,
        "ge": target >= d,
        "le": target <= d,
        "sa": target > d,
        "eb": target < d,
    }[prefix]


def string_matches(modifier: str, query: str, parts: list[str]) -> bool:
    if modifier == ":exact":
        return query in parts
    if modifier == ":contains":
        return any(fold(query) in fold(p) for p in parts)
    return any(fold(p).startswith(fold(query)) for p in parts)


def name_parts(patient: dict, param: str) -> list[str]:
    name = patient["name"][0]
    family, given = [name["family"]], name.get("given", [])
    return {"family": family, "given": given, "name": family + given}[param]


# A criterion: (parameter with modifier, [values]); values are ORed, criteria ANDed.
Criterion = tuple[str, list[str]]


def patient_matches(patient: dict, criterion: Criterion) -> bool:
    key, values = criterion
    param, _, modifier = key.partition(":")
    modifier = f":{modifier}" if modifier else ""
    if param in ("family", "given", "name"):
        parts = name_parts(patient, param)
        return any(string_matches(modifier, v, parts) for v in values)
    if param == "gender":
        has = patient.get("gender") in values
        return not has if modifier == ":not" else has
    if param == "birthdate":
        return any(date_matches(*_prefixed(v), patient["birthDate"]) for v in values)
    if param == "_id":
        has = patient["id"] in values
        return not has if modifier == ":not" else has
    raise AssertionError(key)


def observation_matches(obs: dict, criterion: Criterion) -> bool:
    key, values = criterion
    if key == "date":
        return any(date_matches(*_prefixed(v), obs.get("effectiveDateTime")) for v in values)
    if key == "value-quantity":
        quantity = obs["valueQuantity"]
        target = Decimal(str(quantity["value"]))
        for v in values:
            prefix, rest = _prefixed(v)
            number, *unit = rest.split("|")
            if unit and ((unit[0] and unit[0] != quantity["system"]) or (unit[1] and unit[1] != quantity["code"])):  # fmt: skip
                continue
            if number_matches(prefix, number, target):
                return True
        return False
    raise AssertionError(key)


def _prefixed(value: str) -> tuple[str, str]:
    if value[:2] in DATE_PREFIXES and not value[:1].isdigit():
        return value[:2], value[2:]
    return "", value


def expected(resources: list[dict], criteria: list[Criterion], matches) -> list[str]:
    return sorted(r["id"] for r in resources if all(matches(r, c) for c in criteria))


def escape(value: str) -> str:
    """R4 search escaping: a literal backslash or comma in a value is preceded by a backslash."""
    return value.replace("\\", "\\\\").replace(",", "\\,")


def as_pairs(criteria: list[Criterion]) -> list[tuple[str, str]]:
    return [(key, ",".join(escape(v) for v in values)) for key, values in criteria]


# -- generators ------------------------------------------------------------------------------
VARIANTS = {
    "a": "aAáÁ", "b": "bB", "e": "eEéÉëË", "n": "nNñÑ", "o": "oOöÖ", " ": " ", "-": "-", "'": "'",
}  # fmt: skip
LETTERS = "abenoABENOáéëñöÁÉÑÖ"
word = st.text(alphabet=LETTERS, min_size=1, max_size=4)
names = st.builds(
    lambda a, sep, b: a if sep is None else f"{a}{sep}{b}",
    word,
    st.sampled_from([None, None, " ", "-", "'", "_", "%", ", "]),  # LIKE and OR characters too
    word,
)


@st.composite
def fhir_dates(draw, with_time: bool = False, minutes: bool = False) -> str:
    year = draw(st.sampled_from((1989, 1990, 1991)))
    precisions = ["year", "month", "day"] + (["second"] if with_time else [])
    precision = draw(st.sampled_from(precisions + (["minute"] if minutes else [])))
    if precision == "year":
        return f"{year}"
    month = draw(st.sampled_from((1, 2, 6, 12)))
    if precision == "month":
        return f"{year}-{month:02d}"
    last = calendar.monthrange(year, month)[1]
    day = draw(st.sampled_from([d for d in (1, 15, 28, 29, 30, 31) if d <= last]))
    if precision == "day":
        return f"{year}-{month:02d}-{day:02d}"
    hour = draw(st.sampled_from((0, 1, 12, 22, 23)))
    minute = draw(st.sampled_from((0, 30, 59)))
    tz = draw(st.sampled_from(("Z", "+00:00", "+01:00", "-05:00", "+05:30")))
    if precision == "minute":
        return f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}{tz}"
    second = draw(st.sampled_from((0, 59)))
    return f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{tz}"


@st.composite
def decimals(draw) -> Decimal:
    return Decimal(draw(st.integers(0, 300))).scaleb(-draw(st.sampled_from((0, 1, 2))))


@st.composite
def patients(draw) -> list[dict]:
    out = []
    for i in range(draw(st.integers(5, 15))):
        name: dict = {"family": draw(names)}
        given = draw(st.lists(names, max_size=2))
        if given:
            name["given"] = given
        res = {"resourceType": "Patient", "id": f"p{i}", "name": [name], "birthDate": draw(fhir_dates())}  # fmt: skip
        gender = draw(st.sampled_from(GENDERS))
        if gender:
            res["gender"] = gender
        out.append(res)
    return out


@st.composite
def observations(draw) -> list[dict]:
    out = []
    for i in range(draw(st.integers(5, 15))):
        value = draw(decimals())
        unit = draw(st.sampled_from(("mg", "g")))
        res = {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "valueQuantity": {"value": float(value), "unit": unit, "system": UCUM, "code": unit},
        }
        if draw(st.integers(0, 5)):  # now and then no date at all
            res["effectiveDateTime"] = draw(fhir_dates(with_time=True))
        out.append(res)
    return out


@st.composite
def string_values(draw, parts: list[str]) -> str:
    """Mostly a piece of an existing name, its case and accents varied; sometimes anything."""
    if parts and draw(st.integers(0, 4)):
        part = draw(st.sampled_from(parts))
        start = draw(st.integers(0, len(part) - 1)) if draw(st.booleans()) else 0
        end = draw(st.integers(start + 1, len(part)))
        piece = part[start:end]
        if draw(st.booleans()):
            piece = "".join(draw(st.sampled_from(VARIANTS.get(fold(ch), ch))) for ch in piece)
    else:
        piece = draw(word)
    piece = piece.strip()
    return piece or draw(word)


@st.composite
def patient_criteria(draw, people: list[dict]) -> list[Criterion]:
    criteria = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(("string", "string", "gender", "birthdate", "birthdate", "_id")))  # fmt: skip
        count = draw(st.integers(1, 3))
        if kind == "string":
            param = draw(st.sampled_from(("family", "given", "name")))
            modifier = draw(st.sampled_from(("", ":exact", ":contains")))
            parts = [p for person in people for p in name_parts(person, param)]
            values = [draw(string_values(parts)) for _ in range(count)]
            criteria.append((param + modifier, values))
        elif kind == "gender":
            modifier = draw(st.sampled_from(("", ":not")))
            values = draw(st.lists(st.sampled_from(GENDERS[:4]), min_size=1, max_size=2, unique=True))  # fmt: skip
            criteria.append(("gender" + modifier, values))
        elif kind == "birthdate":
            values = [
                draw(st.sampled_from(DATE_PREFIXES))
                + draw(fhir_dates(with_time=True, minutes=True))
                for _ in range(count)
            ]
            criteria.append(("birthdate", values))
        else:
            modifier = draw(st.sampled_from(("", ":not")))
            ids = [p["id"] for p in people] + ["nobody"]
            criteria.append(("_id" + modifier, draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))))  # fmt: skip
    return criteria


@st.composite
def quantity_values(draw, obs: list[dict]) -> str:
    prefix = draw(st.sampled_from(NUMBER_PREFIXES))
    if draw(st.booleans()):
        # an existing value at another precision: 5.4 as 5, 5.40 or 5.4
        value = Decimal(str(draw(st.sampled_from(obs))["valueQuantity"]["value"]))
        number = value.quantize(Decimal(1).scaleb(-draw(st.sampled_from((0, 1, 2)))))
    else:
        number = draw(decimals())
    unit = draw(st.sampled_from(("", "", f"|{UCUM}|mg", "||g", f"|{UCUM}|", "||kg")))
    return f"{prefix}{number}{unit}"


@st.composite
def observation_criteria(draw, obs: list[dict]) -> list[Criterion]:
    criteria = []
    for _ in range(draw(st.integers(1, 2))):
        count = draw(st.integers(1, 2))
        if draw(st.booleans()):
            criteria.append(("value-quantity", [draw(quantity_values(obs)) for _ in range(count)]))
        else:
            values = [
                draw(st.sampled_from(DATE_PREFIXES))
                + draw(fhir_dates(with_time=True, minutes=True))
                for _ in range(count)
            ]
            criteria.append(("date", values))
    return criteria


# -- the properties ---------------------------------------------------------------------------
QUERIES_PER_EXAMPLE = 6


@PROPERTY
@given(data=st.data())
def test_patient_search_equals_reference(client, store, data: DataObject):
    people = data.draw(patients(), "patients")
    load(client, store, people)
    for _ in range(QUERIES_PER_EXAMPLE):
        criteria = data.draw(patient_criteria(people), "criteria")
        pairs = as_pairs(criteria)
        got = sorted(search(client, "Patient", pairs))
        assert got == expected(people, criteria, patient_matches), pairs


@PROPERTY
@given(data=st.data())
def test_observation_search_equals_reference(client, store, data: DataObject):
    obs = data.draw(observations(), "observations")
    load(client, store, obs)
    for _ in range(QUERIES_PER_EXAMPLE):
        criteria = data.draw(observation_criteria(obs), "criteria")
        pairs = as_pairs(criteria)
        got = sorted(search(client, "Observation", pairs))
        assert got == expected(obs, criteria, observation_matches), pairs


def _sort_key(patient: dict, param: str, descending: bool):
    if param == "family":
        return fold(patient["name"][0]["family"])
    low, high = date_range(patient["birthDate"])
    return high if descending else low


@PROPERTY
@given(data=st.data())
def test_sort_and_paging(client, store, data: DataObject):
    people = data.draw(patients(), "patients")
    load(client, store, people)
    by_id = {p["id"]: p for p in people}
    for _ in range(3):
        keys = data.draw(
            st.lists(st.sampled_from(("family", "birthdate")), min_size=1, max_size=2, unique=True)
        )
        order = [(k, data.draw(st.booleans())) for k in keys]
        sort = ",".join(("-" if desc else "") + k for k, desc in order)
        count = data.draw(st.integers(1, 5))
        note(f"_sort={sort}&_count={count}")
        whole = search(client, "Patient", [("_sort", sort)])
        assert sorted(whole) == sorted(by_id), "a sort must not change what matches"

        def key(pid: str, order=order) -> tuple:
            return tuple(
                _Reversed(_sort_key(by_id[pid], k, desc))
                if desc
                else _sort_key(by_id[pid], k, desc)
                for k, desc in order
            )

        assert [key(pid) for pid in whole] == sorted(key(pid) for pid in whole), sort
        pages, url = [], f"/fhir/Patient?_sort={sort}&_count={count}"
        while url:
            r = client.get(url)
            assert r.status_code == 200, r.text
            page = r.json()
            ids = [e["resource"]["id"] for e in page.get("entry", [])]
            assert 0 < len(ids) <= count or (not ids and not pages and not people)
            pages += ids
            links = {link["relation"]: link["url"] for link in page["link"]}
            url = links.get("next", "").replace("http://testserver", "")
            assert len(pages) <= len(people), "paging does not end"
        assert pages == whole, sort
        assert page["total"] == len(people)


class _Reversed:
    """Orders the other way round (for descending sort keys of any type)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def test_gender_code_with_its_implied_system(client):
    """R4: a ``code`` element's system is the one its binding implies."""
    r = client.put(
        "/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", "gender": "male"}
    )
    assert r.status_code == 201
    system = "http://hl7.org/fhir/administrative-gender"
    assert search(client, "Patient", [("gender", "male")]) == ["p1"]
    assert search(client, "Patient", [("gender", "|male")]) == ["p1"]
    assert search(client, "Patient", [("gender", f"{system}|female")]) == []
    assert search(client, "Patient", [("gender", "http://other.example|male")]) == []


def test_gender_with_the_administrative_gender_system(client):
    r = client.put(
        "/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", "gender": "male"}
    )
    assert r.status_code == 201
    system = "http://hl7.org/fhir/administrative-gender"
    assert search(client, "Patient", [("gender", f"{system}|male")]) == ["p1"]


def test_ne_needs_a_value(client):
    obs = {
        "resourceType": "Observation",
        "id": "no-date",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": 5, "unit": "mg", "system": UCUM, "code": "mg"},
    }
    assert client.put("/fhir/Observation/no-date", json=obs).status_code == 201
    assert search(client, "Observation", [("date", "ne2020")]) == []
    assert search(client, "Observation", [("value-quantity", "ne4")]) == ["no-date"]
    # the unit still has to match: 5 mg is not an answer to "not 4 g"
    assert search(client, "Observation", [("value-quantity", "ne4||g")]) == []
    assert search(client, "Observation", [("value-quantity", "ne4||mg")]) == ["no-date"]
