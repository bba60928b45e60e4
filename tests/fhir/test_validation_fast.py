"""The walk alone (``thorough=False``) decides exactly as both passes do (``thorough=True``).

The bulk loader validates with the walk only, REST writes with the walk plus fhir.resources'
``model_validate``. This is a differential test: for valid resources (every shipped example, a
sample of the benchmark generator's output and of a small synthetic population) and for
Hypothesis-generated mutations of them, ``thorough=False`` must reject exactly when
``thorough=True`` does, with the same set of issue expressions. Since ``thorough=True`` reports
the walk's issues plus pass 2's that the walk did not cover, equal sets mean pass 2 found
nothing the walk missed.

Mutations: delete an element or array item; insert a key (unknown, misplaced, ``_x``,
``resourceType``, ``fhir_comments``, another choice type) at any depth; replace a value with
another JSON type, an empty string/array/object or null; wrap a value in an array or unwrap
an array; malformed dates, codes, uris, ids, numbers; a primitive replaced by its ``_x``
sibling; a fragment of the resource moved elsewhere; another resource contained (and referred
to); any element of an object's own type added with a type-aware fuzzed value (random text
with special whitespace, near-miss dates and times, integers around the 32-bit limits, ...);
an extension with a fuzzed value of every primitive type.

CI runs 300 derandomised examples per property (about 5 s for the file). For a deeper, random
run: ``HYPOTHESIS_PROFILE=deep .venv/bin/python -m pytest tests/fhir/test_validation_fast.py``
(``HYPOTHESIS_MAX_EXAMPLES`` sets how many, default 5000).

There are no intended differences. Where pass 2 is stricter than the spec the walk follows it
(``test_where_pass_2_is_stricter_than_the_spec_the_walk_follows_it``); where it is looser, the
walk follows the spec and both modes reject (``..._looser_than_the_spec_both_modes_reject``).
See docs/decisions/0001-fhir-resources-validation.md.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from collections import defaultdict
from functools import cache
from pathlib import Path

import orjson
import pytest
from fhir_core.types import CodeType, StringType
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.strategies import DataObject
from pydantic import TypeAdapter, ValidationError

from carelight.fhir import validation
from carelight.fhir.errors import FhirError
from carelight.fhir.resource_types import SUPPORTED_TYPES
from carelight.fhir.validation import validate_resource

EXAMPLES = Path(validation.__file__).parents[1] / "examples"
PER_TYPE = 12  # resources of each type taken from the bench and synth generators

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
if os.environ.get("HYPOTHESIS_PROFILE") == "deep":
    PROPERTY = settings(
        max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "5000")),
        deadline=None,
        suppress_health_check=_HEALTH,
    )
else:
    PROPERTY = settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_HEALTH,
    )


# -- the corpus of valid resources ----------------------------------------------------------------


def _sample(resources, per_type: int) -> list[dict]:
    """Up to per_type resources of each type, spread over the input."""
    by_type: dict[str, list[dict]] = defaultdict(list)
    for resource in resources:
        by_type[resource["resourceType"]].append(resource)
    picked = []
    for group in by_type.values():
        step = max(1, len(group) // per_type)
        picked += group[::step][:per_type]
    return picked


@cache
def corpus() -> tuple[dict, ...]:
    from bench.generate import generate

    found = [
        orjson.loads(line)
        for path in sorted(EXAMPLES.rglob("*.ndjson"))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]
    found += _sample(generate(5000), PER_TYPE)
    try:
        from carelight.synth import records
        from carelight.synth.directory import all_directory_resources
    except ImportError:  # no synth package in this tree
        pass
    else:
        population = [r for _, r in all_directory_resources()]
        population += [r for index in range(30) for _, r in records(11, index)]
        found += _sample(population, PER_TYPE)
    return tuple(found)


def outcome(resource: dict, thorough: bool) -> tuple[int, frozenset] | None:
    """None if valid, else (HTTP status, the set of issue expressions)."""
    try:
        validate_resource(resource, thorough=thorough)
    except FhirError as exc:
        return exc.status, frozenset(i.expression for i in exc.issues)
    return None


def assert_same_decision(resource: dict, context: str = "") -> None:
    fast, full = outcome(resource, False), outcome(resource, True)
    if currently_in_test_context():
        note(json.dumps(resource, ensure_ascii=True, default=repr)[:4000])
        note(f"fast={fast} full={full}")
        event("rejected" if fast else "accepted")
    assert (fast is None) == (full is None), (context, fast, full)
    assert fast == full, context


def test_the_corpus_is_valid_and_varied():
    resources = corpus()
    assert len(resources) > 150
    assert len({r["resourceType"] for r in resources}) >= 20
    for resource in resources:
        assert outcome(resource, False) is None, resource.get("id")
        assert outcome(resource, True) is None, resource.get("id")


# -- where the pieces are --------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def locations(node: object, path: Path_ = ()) -> list[tuple[Path_, object]]:
    """(path, value) for every value below node, depth first."""
    found: list[tuple[Path_, object]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append(((*path, key), value))
            found += locations(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.append(((*path, i), value))
            found += locations(value, (*path, i))
    return found


def _model_of(node: dict):
    resource_type = node.get("resourceType")
    return validation._model_class(resource_type) if isinstance(resource_type, str) else None


def typed(resource: dict) -> tuple[list[tuple[Path_, str]], list[tuple[Path_, type]]]:
    """Through the models: (path, FHIR primitive type) of every primitive value, and
    (path, model) of every object whose model is known."""
    primitives: list[tuple[Path_, str]] = []
    objects: list[tuple[Path_, type]] = []

    def visit(node: dict, model, path: Path_) -> None:
        objects.append((path, model))
        elements = validation._schema(model).elements
        for key, value in node.items():
            element = elements.get(key)
            if element is None:
                continue
            many = element.many and isinstance(value, list)
            for i, item in enumerate(value) if many else [(None, value)]:
                where = (*path, key) if i is None else (*path, key, i)
                if element.primitive is not None:
                    primitives.append((where, element.primitive))
                elif isinstance(item, dict):
                    child = _model_of(item) if element.any_resource else element.model
                    if child is not None:
                        visit(item, child, where)

    root = _model_of(resource)
    if root is not None:
        visit(resource, root, ())
    return primitives, objects


def required_primitives(resource: dict) -> list[Path_]:
    """Paths of the present primitive elements that are required (status, code, url, ...)."""
    found = []
    for path, model in typed(resource)[1]:
        node = get(resource, path)
        for element in validation._schema(model).required:
            if element.primitive is not None and element.name in node:  # type: ignore[operator]
                found.append((*path, element.name))
    return found


def get(node: object, path: Path_) -> object:
    for seg in path:
        node = node[seg]  # type: ignore[index]
    return node


def put(root: dict, path: Path_, value: object) -> None:
    get(root, path[:-1])[path[-1]] = value  # type: ignore[index]


def delete(root: dict, path: Path_) -> None:
    del get(root, path[:-1])[path[-1]]  # type: ignore[attr-defined]


# -- values to put there -------------------------------------------------------------------------


@cache
def element_names() -> tuple[str, ...]:
    """Every JSON element name of every model reachable from the supported types."""
    names: set[str] = set()
    seen: set = set()

    def visit(model) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, element in validation._schema(model).elements.items():
            names.add(name)
            if element.model is not None and not element.any_resource:
                visit(element.model)

    for resource_type in SUPPORTED_TYPES:
        visit(validation.get_fhir_model_class(resource_type))
    return tuple(sorted(names))


SPECIAL_KEYS = (
    "colour",
    "_colour",
    "resourceType",
    "resource_type",
    "fhir_comments",
    "_id",
    "_url",
    "_extension",
    "_coding",
    "_name",
    "Status",
    "value",
    "_valueString",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueQuantity",
    "contained",
)
SPECIAL_SPACES = "\u00a0\u2028\u2003\u3000\x0b\x0c\x85\x1c\u200b\ufeff"
MALFORMED = (
    "",
    " ",
    "\t",
    "\u00a0",
    "\u2028",
    "\x0b",
    "\x1c",
    "a\x85\x85b",
    "a\ud800b",
    "\udfff",
    " x",
    "x ",
    "a  b",
    "a\tb",
    "a\t\tb",
    "a b",
    "a\nb",
    "a_b",
    "x" * 65,
    "x" * 256,
    "bogus",
    "done",
    "Male",
    "1950-02-30",
    "1951-02-29",
    "1952-02-29",
    "1900-02-29",
    "2000-02-29",
    "2021-04-31",
    "2021-13-01",
    "2021-00-10",
    "2021-1-1",
    "0000",
    "0001",
    "99999",
    "2021-06-15T10:00:00",
    "2021-06-15T10:00Z",
    "2021-06-15T24:00:00Z",
    "2021-06-15T23:59:60Z",
    "2021-06-15T23:59:59.123456789+14:00",
    "2021-06-15T23:59:59+14:01",
    "2021-06-15T23:59:59-13:60",
    "2021-06-15T10:00:00z",
    "2021-06-15 10:00:00Z",
    "2021-02-30T10:00:00Z",
    "10:00",
    "10:00:00Z",
    "24:00:00",
    "23:59:60",
    "12:00:00.5",
    "http://example.org/a b",
    "urn:oid:1.2.3",
    "urn:oid:1.02",
    "urn:oid:3.1",
    "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
    "urn:uuid:C757873D-EC9A-4326-A141-556F43239520",
    "urn:uuid:c757873d-ec9a-1326-a141-556f43239520",
    "urn:uuid:c757873d-ec9a-4326-7141-556f43239520",
    "c757873d-ec9a-4326-a141-556f43239520",
    "aGVsbG8=",
    "aGVsbG8",
    "aGVs bG8=",
    "!!!!",
    "a===",
    "ab==cd==",
    "a/b+",
    "Patient/1",
    "#x",
    "<div>x</div>",
    '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
)
NUMBERS = (
    0,
    1,
    -1,
    2,
    2.0,
    2.5,
    -0.0,
    1e-7,
    1e300,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    10**30,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
)
EXTENSION = {"url": "http://example.org/ext", "valueString": "x"}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(MALFORMED),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(SPECIAL_KEYS), st.text(min_size=1, max_size=6)),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=6,
)
some_text = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(SPECIAL_SPACES)), max_size=12
)
_D = "[0-9]"
near_dates = st.from_regex(
    rf"{_D}{{4}}(-{_D}{{2}}(-{_D}{{2}}(T{_D}{{2}}:{_D}{{2}}(:{_D}{{2}}(\.{_D}{{1,4}})?)?"
    rf"(Z|[+-]{_D}{{2}}:{_D}{{2}})?)?)?)?",
    fullmatch=True,
)
real_moments = st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
near_times = st.from_regex(rf"{_D}{{2}}:{_D}{{2}}(:{_D}{{2}}(\.{_D}{{1,3}})?)?", fullmatch=True)
FUZZ = {
    "date": st.one_of(near_dates, real_moments, st.dates().map(str)),
    "dateTime": st.one_of(near_dates, real_moments, st.dates().map(str)),
    "instant": st.one_of(near_dates, real_moments),
    "time": st.one_of(near_times, st.times().map(str)),
    "integer": st.one_of(st.integers(-(2**32), 2**32), st.sampled_from(NUMBERS)),
    "unsignedInt": st.one_of(st.integers(-5, 5), st.sampled_from(NUMBERS)),
    "positiveInt": st.one_of(st.integers(-5, 5), st.sampled_from(NUMBERS)),
    "decimal": st.one_of(st.floats(), st.integers(), st.sampled_from(NUMBERS)),
    "boolean": json_scalars,
    "uuid": st.one_of(st.uuids(version=None).map(lambda u: f"urn:uuid:{u}"), some_text),
    "base64Binary": st.one_of(
        st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()),
        st.from_regex(r"[A-Za-z0-9+/= !\n]{0,9}", fullmatch=True),
    ),
    "oid": st.from_regex(r"urn:oid:[0-3](\.[0-9]{1,3}){0,3}", fullmatch=True),
}


def fuzz_for(primitive: str):
    return st.one_of(FUZZ.get(primitive, some_text), some_text, st.sampled_from(MALFORMED))


# -- mutations -----------------------------------------------------------------------------------


def mutate(data: DataObject, resource: dict) -> None:
    """Apply one random mutation to resource, in place."""
    places = locations(resource)
    objects = [((), resource)] + [(p, v) for p, v in places if isinstance(v, dict)]
    kind = data.draw(
        st.sampled_from(
            [
                "delete",
                "insert",
                "retype",
                "malformed",
                "wrap",
                "empty",
                "null",
                "to_extension",
                "transplant",
                "fuzz",
                "fuzz",
                "fuzz",
                "add",
                "add",
                "contain",
            ]
        ),
        label="mutation",
    )
    if kind == "insert" or not places:
        path, target = data.draw(st.sampled_from(objects), label="object")
        key = data.draw(
            st.one_of(
                st.sampled_from(SPECIAL_KEYS),
                st.sampled_from(SPECIAL_KEYS),
                st.sampled_from(element_names()),
                st.text(min_size=1, max_size=6),
            ),
            label="key",
        )
        value = data.draw(
            st.one_of(json_values, st.sampled_from([v for _, v in places] or [None])),
            label="value",
        )
        target[key] = copy.deepcopy(value)
        return
    if kind == "fuzz":
        primitives, _ = typed(resource)
        if primitives:
            path, primitive = data.draw(st.sampled_from(primitives), label="primitive")
            put(resource, path, data.draw(fuzz_for(primitive), label=primitive))
            return
        kind = "malformed"
    if kind == "contain":
        # Another resource contained here (or in a contained resource: dom-2), perhaps referred
        # to by "#id".
        _, models = typed(resource)
        hosts = [(p, m) for p, m in models if "contained" in validation._schema(m).elements]
        if hosts:
            path, _ = data.draw(st.sampled_from(hosts), label="host")
            other = copy.deepcopy(data.draw(st.sampled_from(corpus()), label="contained"))
            host: dict = get(resource, path)  # type: ignore[assignment]
            before = host.get("contained")
            host["contained"] = [*(before if isinstance(before, list) else []), other]
            if data.draw(st.booleans(), label="refer to it"):
                references = [p for p, v in places if p[-1] == "reference"]
                if references:
                    where = data.draw(st.sampled_from(references), label="reference")
                    put(resource, where, f"#{other.get('id', '')}")
            return
        kind = "malformed"
    if kind == "add":
        _, models = typed(resource)
        if models:
            add_element(data, resource, models)
            return
        kind = "malformed"
    path, value = data.draw(st.sampled_from(places), label="place")
    if kind == "delete":
        delete(resource, path)
    elif kind == "retype":
        put(resource, path, data.draw(json_values, label="new value"))
    elif kind == "malformed":
        strings = [(p, v) for p, v in places if isinstance(v, str)] or [(path, value)]
        path, _ = data.draw(st.sampled_from(strings), label="string")
        put(resource, path, data.draw(st.sampled_from(MALFORMED), label="malformed"))
    elif kind == "wrap":
        if isinstance(value, list):
            put(resource, path, value[0] if value else None)
        else:
            put(resource, path, [value])
    elif kind == "empty":
        put(resource, path, data.draw(st.sampled_from(["", [], {}]), label="empty"))
    elif kind == "null":
        if isinstance(value, list) and data.draw(st.booleans(), label="into the list"):
            value.insert(data.draw(st.integers(0, len(value)), label="at"), None)
        else:
            put(resource, path, None)
    elif kind == "to_extension" and isinstance(path[-1], str) and not path[-1].startswith("_"):
        to_extension(data, resource, path)
    else:  # transplant: a copy of one part of the resource put in place of another
        _, fragment = data.draw(st.sampled_from(places), label="fragment")
        put(resource, path, copy.deepcopy(fragment))


SIBLINGS = (
    {"extension": [EXTENSION]},
    {"id": "a"},
    {"extension": []},
    {"fhir_comments": "x"},
    {"fhir_comments": None, "extension": None},
    [{"extension": [EXTENSION]}],
    [None, {"extension": [EXTENSION]}],
)


def to_extension(data: DataObject, resource: dict, path: Path_) -> None:
    """The element at path (a primitive, usually) given a "_name" sibling, perhaps in its
    place: an extension standing in for a required value, or a sibling that says nothing."""
    parent: dict = get(resource, path[:-1])  # type: ignore[assignment]
    if data.draw(st.booleans(), label="drop the value"):
        del parent[path[-1]]  # type: ignore[arg-type]
    sibling = data.draw(st.sampled_from(SIBLINGS), label="sibling")
    parent[f"_{path[-1]}"] = copy.deepcopy(sibling)


def add_element(data: DataObject, resource: dict, models: list[tuple[Path_, type]]) -> None:
    """Give an object one of its own elements (or fhir_comments) with a value of the element's
    type, fuzzed, or anything. The kind of element (each primitive type, complex) is drawn
    first, so that rare types such as positiveInt or base64Binary come up as often as string."""
    by_kind: dict[str, list[tuple[Path_, str, object]]] = defaultdict(list)
    for path, model in models:
        for name, element in validation._schema(model).elements.items():
            by_kind[element.primitive or "complex"].append((path, name, element))
        by_kind["fhir_comments"].append((path, "fhir_comments", None))
    kind = data.draw(st.sampled_from(sorted(by_kind)), label="kind of element")
    path, name, element = data.draw(st.sampled_from(by_kind[kind]), label="element")
    if element is not None and element.primitive is not None:  # type: ignore[attr-defined]
        value = data.draw(fuzz_for(kind), label=kind)
        if element.many and data.draw(st.booleans(), label="as a list"):  # type: ignore[attr-defined]
            value = [value]
    else:
        fragments = [v for _, v in locations(resource)] or [None]
        value = data.draw(
            st.one_of(json_values, st.sampled_from(fragments), st.sampled_from([[{}], {}, ""])),
            label="value",
        )
    event(f"added {kind}")
    get(resource, path)[name] = copy.deepcopy(value)  # type: ignore[index]


@PROPERTY
@given(data=st.data())
def test_the_walk_alone_decides_as_both_passes_do(data: DataObject):
    resource = copy.deepcopy(data.draw(st.sampled_from(corpus()), label="resource"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        mutate(data, resource)
    assert_same_decision(resource)


@PROPERTY
@given(data=st.data())
def test_the_walk_alone_decides_as_both_passes_do_on_primitives(data: DataObject):
    """Primitive values fuzzed by type, new elements of the object's own type, and required
    primitives given (or replaced by) a "_name" sibling."""
    resource = copy.deepcopy(data.draw(st.sampled_from(corpus()), label="resource"))
    for _ in range(data.draw(st.integers(1, 2), label="values")):
        primitives, models = typed(resource)
        required = required_primitives(resource)
        how = data.draw(st.sampled_from(["fuzz", "add", "to_extension"]), label="how")
        if how == "to_extension" and required:
            to_extension(data, resource, data.draw(st.sampled_from(required), label="required"))
        elif how == "fuzz" and primitives:
            path, primitive = data.draw(st.sampled_from(primitives), label="primitive")
            put(resource, path, data.draw(fuzz_for(primitive), label=primitive))
        else:
            add_element(data, resource, models)
    assert_same_decision(resource)


# Extension.value[x] has every primitive type but xhtml: "valueBase64Binary" etc.
EXTENSION_TYPES = {
    name[5:6].lower() + name[6:]: name
    for name, element in validation._schema(
        validation.get_fhir_model_class("Extension")
    ).elements.items()
    if name.startswith("value") and element.primitive is not None
}


@PROPERTY
@given(data=st.data())
def test_the_walk_alone_decides_as_both_passes_do_on_every_primitive_type(data: DataObject):
    """An extension with a fuzzed value of a uniformly drawn type, anywhere in a resource."""
    resource = copy.deepcopy(data.draw(st.sampled_from(corpus()), label="resource"))
    _, models = typed(resource)
    hosts = [(p, m) for p, m in models if "extension" in validation._schema(m).elements]
    path, _ = data.draw(st.sampled_from(hosts), label="where")
    kind = data.draw(st.sampled_from(sorted(EXTENSION_TYPES)), label="type")
    value = data.draw(fuzz_for(kind), label=kind)
    host: dict = get(resource, path)  # type: ignore[assignment]
    host["extension"] = [
        *host.get("extension", []),
        {"url": "http://example.org/x", EXTENSION_TYPES[kind]: value},
    ]
    assert_same_decision(resource)


@pytest.mark.parametrize("kind", sorted(EXTENSION_TYPES))
def test_every_primitive_type_on_fixed_values(kind):
    values = [*MALFORMED, *NUMBERS, None, [], {}, ["x"], {"value": 1}]
    for value in values:
        assert_same_decision(
            _extension(**{EXTENSION_TYPES[kind]: value}), f"{kind} = {value!r:.80}"
        )


# Characters that are whitespace to someone: Python's re, Rust's regex (pydantic-core), XML.
WHITESPACE_LIKE = [*range(0x100), 0x1680, 0x180E, *range(0x2000, 0x2030), 0x205F, 0x3000, 0xFEFF]


@pytest.mark.parametrize(
    ("primitive", "adapter"), [("string", StringType), ("code", CodeType)], ids=["string", "code"]
)
def test_whitespace_means_what_it_means_to_fhir_resources(primitive, adapter):
    """string and code rules turn on what counts as whitespace; pass 2's regexes run in Rust,
    where it is Unicode White_Space (not quite Python's idea). Checked over all of Unicode once
    by hand; here over the characters where the definitions differ."""
    validator = (
        validation._schema(validation.get_fhir_model_class("Extension"))
        .elements[f"value{primitive[0].upper()}{primitive[1:]}"]
        .validate
    )
    assert validator is not None
    pass_2 = TypeAdapter(adapter)
    for c in map(chr, WHITESPACE_LIKE):
        for value in (c, c + c, f"a{c}b", f"a{c}{c}b", f"{c}a", f"a{c}"):
            try:
                pass_2.validate_python(value)
                accepted = True
            except ValidationError:
                accepted = False
            assert accepted == (validator(value) is None), (primitive, value)


# -- fixed cases ---------------------------------------------------------------------------------


def _patient(**extra) -> dict:
    return {"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith"}], **extra}


def _extension(**value) -> dict:
    return _patient(extension=[{"url": "http://example.org/x", **value}])


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(
            _extension(valueUuid="urn:uuid:c757873d-ec9a-1326-a141-556f43239520"), id="uuid-v1"
        ),
        pytest.param(_patient(name=[{"family": "\u00a0"}]), id="string-only-nbsp"),
        pytest.param(_patient(gender="a\u2028\u2028b"), id="code-two-line-separators"),
        pytest.param(
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "item": [
                    {
                        "linkId": "1",
                        "type": "boolean",
                        "enableWhen": [
                            {
                                "question": "0",
                                "operator": "exists",
                                "_answerBoolean": {"extension": [EXTENSION]},
                            }
                        ],
                    }
                ],
            },
            id="required-choice-given-only-as-extension",
        ),
    ],
)
def test_where_pass_2_is_stricter_than_the_spec_the_walk_follows_it(resource):
    """These are valid by the letter of R4 but fhir.resources refuses them; the walk refuses
    them too, so the bulk path and REST writes agree (docs/decisions/0001)."""
    assert outcome(resource, True) is not None
    assert_same_decision(resource)


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(_extension(valueUri="http://example.org/a b"), id="uri-with-a-space"),
        pytest.param(_extension(valueUrl="a b"), id="url-with-a-space"),
        pytest.param(_extension(valueBase64Binary="!!!!"), id="base64-not-in-the-alphabet"),
        pytest.param(_extension(valueBase64Binary="ab==cd=="), id="base64-padding-inside"),
        pytest.param(
            _extension(valueUuid="c757873d-ec9a-4326-a141-556f43239520"), id="uuid-no-urn"
        ),
        pytest.param(_extension(valueString="x" * (1024 * 1024 + 1)), id="string-over-1MB"),
        pytest.param(_patient(id="x" * 65), id="id-of-65"),
        pytest.param(_patient(active="true"), id="boolean-as-string"),
        pytest.param(
            _patient(name=[{"family": "x", "resourceType": "HumanName"}]),
            id="resourceType-in-an-element",
        ),
        pytest.param(_patient(resource_type="Patient"), id="resource_type"),
        pytest.param(_patient(text={"status": "generated", "div": "x"}), id="div-not-xhtml"),
    ],
)
def test_where_pass_2_is_looser_than_the_spec_both_modes_reject(resource):
    assert outcome(resource, False) is not None
    assert_same_decision(resource)


@pytest.mark.parametrize(
    "resource",
    [
        _patient(fhir_comments="a comment"),
        _patient(name=[{"family": "Smith", "fhir_comments": ["one", "two"]}]),
        _patient(_birthDate={"fhir_comments": "x", "extension": [EXTENSION]}),
        _extension(valueUuid="urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
        _extension(valueDateTime="2016-12-31T23:59:60Z"),
        _extension(valueTime="23:59:60"),
        _extension(valueDateTime="2000-02-29T10:00:00.123456789+14:00"),
        _extension(valueDecimal=1e-7),
        _extension(valueBase64Binary="aGVs bG8="),
        _extension(valueBase64Binary="aGVsbG8=\n"),
        _extension(valueInteger=-(2**31)),
        _extension(valueString="a\x01b"),
        _extension(valueMarkdown="\u00a0"),
        _patient(gender="male", _gender={"extension": [EXTENSION]}),
    ],
)
def test_accepted_by_both_modes(resource):
    assert outcome(resource, False) is None
    assert outcome(resource, True) is None
