"""Batch and transaction Bundles, and conditional update and delete.

A transaction runs in one database transaction: every entry succeeds or nothing is stored.
Entries run in the R4 order (DELETE, POST, PUT/PATCH, GET); ``urn:uuid:`` full URLs of
created or conditionally updated resources are resolved to their new ``Type/id`` everywhere
they are referenced in the Bundle before anything is written. A batch runs each entry on its
own and reports each entry's outcome.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy import Connection

from carelight.fhir.errors import FhirError, Issue, bad_request, conflict, precondition_failed
from carelight.fhir.resource_types import SUPPORTED
from carelight.fhir.scope import Access
from carelight.fhir.search.execute import match_ids, run_search
from carelight.fhir.search.query import parse_search
from carelight.fhir.store import Store, StoredResource, WriteOutcome, instant_text

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


def conditional_update(
    store: Store,
    res_type: str,
    pairs: list[tuple[str, str]],
    resource: Any,
    conn: Connection | None,
    access: Access | None = None,
) -> WriteOutcome:
    """PUT Type?criteria: no match creates, one match updates it, several is 412."""
    if conn is None:
        with store.write() as c:
            return conditional_update(store, res_type, pairs, resource, c, access)
    found = match_ids(store, conn, res_type, pairs, limit=2, access=access)
    if len(found) > 1:
        raise precondition_failed(
            f"The conditional update matched {len(found)} {res_type} resources; it must match one at most."
        )
    if not isinstance(resource, dict):
        raise bad_request("The body must be a JSON object (a FHIR resource).")
    if found:
        body_id = resource.get("id")
        if body_id is not None and body_id != found[0]:
            raise bad_request(
                f"The resource id '{body_id}' differs from the id of the matching resource.",
                f"{res_type}.id",
            )
        return store.update(
            res_type, found[0], {**resource, "id": found[0]}, conn=conn, access=access
        )
    new_id = resource.get("id") or str(uuid.uuid4())
    return store.update(res_type, new_id, {**resource, "id": new_id}, conn=conn, access=access)


def conditional_delete(
    store: Store,
    res_type: str,
    pairs: list[tuple[str, str]],
    conn: Connection | None,
    access: Access | None = None,
) -> int:
    """DELETE Type?criteria: deletes the one match (none is fine; several is 412)."""
    if conn is None:
        with store.write() as c:
            return conditional_delete(store, res_type, pairs, c, access)
    found = match_ids(store, conn, res_type, pairs, limit=2, access=access)
    if len(found) > 1:
        raise precondition_failed(
            f"The conditional delete matched {len(found)} {res_type} resources; it must match one at most."
        )
    for res_id in found:
        store.delete(res_type, res_id, conn=conn, access=access)
    return len(found)


# -- parsing -------------------------------------------------------------------------------
class _Entry:
    def __init__(self, index: int, raw: dict) -> None:
        self.index = index
        request = raw.get("request")
        if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
            raise bad_request(
                "Every entry needs request.method and request.url.",
                f"Bundle.entry[{index}].request",
            )
        self.method = str(request["method"]).upper()
        if self.method not in ORDER:
            raise bad_request(
                f"Unsupported method {self.method}.", f"Bundle.entry[{index}].request.method"
            )
        self.url = str(request["url"]).lstrip("/")
        self.if_match = request.get("ifMatch")
        self.if_none_exist = request.get("ifNoneExist")
        self.full_url = raw.get("fullUrl")
        self.resource = raw.get("resource")
        path, _, query = self.url.partition("?")
        self.path = [p for p in path.split("/") if p]
        self.query = parse_qsl(query, keep_blank_values=True)
        if not self.path or self.path[0] not in SUPPORTED:
            raise bad_request(
                f"'{self.url}' does not name a supported resource type.",
                f"Bundle.entry[{index}].request.url",
            )
        self.res_type = self.path[0]
        if self.method in ("POST", "PUT") and not isinstance(self.resource, dict):
            raise bad_request(
                f"A {self.method} entry needs a resource.", f"Bundle.entry[{index}].resource"
            )
        if self.method == "PATCH" and self.resource is None:
            raise bad_request(
                "A PATCH entry needs a resource (a Binary or Parameters patch).",
                f"Bundle.entry[{index}].resource",
            )

    def label(self) -> str:
        return f"entry[{self.index}] ({self.method} {self.url})"


def _parse(body: Any) -> tuple[str, list[_Entry]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise bad_request("POST to the base URL takes a Bundle of type batch or transaction.")
    kind = body.get("type")
    if kind not in ("batch", "transaction"):
        raise bad_request(f"Bundle.type must be batch or transaction, not {kind!r}.", "Bundle.type")
    raw_entries = body.get("entry") or []
    if not isinstance(raw_entries, list):
        raise bad_request("Bundle.entry must be an array.", "Bundle.entry")
    return kind, raw_entries


def _replace_refs(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _replace_refs(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_refs(v, mapping) for v in value]
    if isinstance(value, str) and value in mapping:
        return mapping[value]
    return value


def _unresolved_urns(value: Any, path: str) -> list[str]:
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += _unresolved_urns(v, f"{path}.{k}")
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out += _unresolved_urns(v, f"{path}[{i}]")
        return out
    if isinstance(value, str) and value.startswith("urn:uuid:") and path.endswith(".reference"):
        return [path]
    return []


# -- processing ----------------------------------------------------------------------------
def process(store: Store, body: Any, prefer: str = "", access: Access | None = None) -> dict:
    """Run a batch or transaction Bundle; every entry goes through ``access``."""
    kind, raw_entries = _parse(body)
    if kind == "transaction":
        return _transaction(store, raw_entries, prefer, access)
    return _batch(store, raw_entries, prefer, access)


def _response_entry(outcome: WriteOutcome | None, status: int, prefer: str) -> dict:
    if outcome is None:
        return {"response": {"status": STATUS_TEXT.get(status, str(status))}}
    stored = outcome.stored
    entry: dict = {}
    if "return=minimal" not in prefer and stored.content is not None:
        entry["resource"] = orjson.Fragment(stored.content)
    entry["response"] = {
        "status": STATUS_TEXT.get(status, str(status)),
        "location": stored.location,
        "etag": stored.etag,
        "lastModified": instant_text(stored.last_updated),
    }
    return entry


def _run_entry(
    store: Store, e: _Entry, conn: Connection, prefer: str, access: Access | None
) -> dict:
    if e.method in ("GET", "HEAD"):
        return _run_get(store, e, conn, access)
    if e.method == "DELETE":
        if len(e.path) == 2:
            store.delete(e.res_type, e.path[1], conn=conn, access=access)
        elif len(e.path) == 1 and e.query:
            conditional_delete(store, e.res_type, e.query, conn, access)
        else:
            raise bad_request("DELETE needs Type/id or Type?criteria.")
        return _response_entry(None, 204, prefer)
    if e.method == "POST":
        # In a transaction the conditional create was decided before anything ran
        # (_resolve_identity): urn:uuid references already point at that decision.
        matched = getattr(e, "matched_id", None)
        if matched is not None:
            existing = store.read(e.res_type, matched, conn=conn, access=access)
            return _response_entry(
                WriteOutcome(existing, created=False, changed=False), 200, prefer
            )
        resource = {k: v for k, v in e.resource.items() if k != "id"}
        assigned = getattr(e, "assigned_id", None)
        if_none_exist = None if assigned else e.if_none_exist
        outcome = store.create(
            resource, if_none_exist=if_none_exist, conn=conn, res_id=assigned, access=access
        )
        return _response_entry(outcome, 201 if outcome.created else 200, prefer)
    if e.method == "PUT":
        if len(e.path) == 2:
            outcome = store.update(
                e.res_type, e.path[1], e.resource, if_match=e.if_match, conn=conn, access=access
            )
        elif getattr(e, "target_id", None) is not None:  # a transaction's conditional update
            outcome = store.update(e.res_type, e.target_id, e.resource, conn=conn, access=access)
        else:
            outcome = conditional_update(store, e.res_type, e.query, e.resource, conn, access)
        return _response_entry(outcome, 201 if outcome.created else 200, prefer)
    if e.method == "PATCH":
        if len(e.path) != 2:
            raise bad_request("PATCH needs Type/id.")
        ops = _patch_operations(e.resource)
        outcome = store.patch(
            e.res_type, e.path[1], ops, if_match=e.if_match, conn=conn, access=access
        )
        return _response_entry(outcome, 200, prefer)
    raise bad_request(f"Unsupported method {e.method}.")


def _patch_operations(resource: Any) -> Any:
    """A JSON Patch in a Bundle travels as a Binary with base64 data (R4 3.1.0.13)."""
    import base64

    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        try:
            return orjson.loads(base64.b64decode(resource.get("data", "")))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise bad_request(f"The Binary patch does not hold a JSON Patch: {exc}") from exc
    raise bad_request("A PATCH entry's resource must be a Binary holding a JSON Patch.")


def _run_get(store: Store, e: _Entry, conn: Connection, access: Access | None) -> dict:
    # On the transaction's connection: GETs run last and must see the Bundle's own writes.
    if len(e.path) == 1:
        result = run_search(store, parse_search(e.res_type, e.query), conn, access)
        bundle = {"resourceType": "Bundle", "type": "searchset"}
        if result.total is not None:
            bundle["total"] = result.total
        bundle["entry"] = [
            {
                "fullUrl": f"{store.base_url}/{s.res_type}/{s.res_id}",
                "resource": orjson.Fragment(s.content),
                "search": {"mode": mode},
            }
            for mode, items in (("match", result.matches), ("include", result.included))
            for s in items
        ]
        return {"resource": bundle, "response": {"status": "200 OK"}}
    if len(e.path) == 2:
        stored: StoredResource = store.read(e.res_type, e.path[1], conn=conn, access=access)
    elif len(e.path) == 4 and e.path[2] == "_history":
        stored = store.vread(e.res_type, e.path[1], e.path[3], conn=conn, access=access)
    else:
        raise bad_request(f"GET {e.url} is not supported inside a Bundle.")
    return {
        "resource": orjson.Fragment(stored.content),
        "response": {
            "status": "200 OK",
            "etag": stored.etag,
            "lastModified": instant_text(stored.last_updated),
        },
    }


def _entry_error(e: _Entry | None, index: int, err: FhirError) -> FhirError:
    where = e.label() if e else f"entry[{index}]"
    issues = [
        Issue(
            i.code,
            f"{where}: {i.diagnostics}",
            f"Bundle.entry[{index}].resource.{i.expression.split('.', 1)[1]}"
            if i.expression and "." in i.expression and not i.expression.startswith("Bundle.")
            else i.expression,
            i.severity,
        )
        for i in err.issues
    ]
    return FhirError(err.status, issues, err.headers)


def _transaction(store: Store, raw_entries: list, prefer: str, access: Access | None) -> dict:
    entries: list[_Entry] = []
    for i, raw in enumerate(raw_entries):
        if not isinstance(raw, dict):
            raise bad_request("Each Bundle entry must be an object.", f"Bundle.entry[{i}]")
        entries.append(_Entry(i, raw))
    first_with_url: dict[str, int] = {}
    for e in entries:
        if e.full_url and first_with_url.setdefault(e.full_url, e.index) != e.index:
            # A reference to it could mean either entry (R4 bdl-7: fullUrl unique in a Bundle).
            raise bad_request(
                f"entry[{e.index}] has the same fullUrl as entry[{first_with_url[e.full_url]}]; "
                "each entry of a transaction needs its own fullUrl.",
                f"Bundle.entry[{e.index}].fullUrl",
            )
    responses: dict[int, dict] = {}
    with store.write() as conn:
        mapping: dict[str, str] = {}
        identities: dict[str, int] = {}
        for e in entries:
            try:
                identity = _resolve_identity(store, conn, e, mapping, access)
            except FhirError as err:
                raise _entry_error(e, e.index, err) from err
            if identity is not None:
                if identity in identities:
                    raise conflict(
                        f"entry[{e.index}] and entry[{identities[identity]}] both change {identity}; "
                        "a transaction may change each resource once."
                    )
                identities[identity] = e.index
        for e in entries:
            matched = getattr(e, "matched_id", None)
            if (
                matched is not None
                and (other := identities.get(f"{e.res_type}/{matched}")) is not None
            ):
                raise conflict(
                    f"entry[{e.index}] (ifNoneExist) found {e.res_type}/{matched}, which entry[{other}] "
                    "changes; a transaction may not do both."
                )
        for e in entries:
            if e.resource is not None and mapping:
                e.resource = _replace_refs(e.resource, mapping)
            if e.method in ("POST", "PUT") and (bad := _unresolved_urns(e.resource, e.res_type)):
                raise bad_request(
                    f"entry[{e.index}]: {bad[0]} refers to a urn:uuid that no entry in this Bundle has as fullUrl.",
                    f"Bundle.entry[{e.index}].resource.{bad[0].split('.', 1)[1]}",
                )
        for e in sorted(entries, key=lambda x: (ORDER[x.method], x.index)):
            try:
                responses[e.index] = _run_entry(store, e, conn, prefer, access)
            except FhirError as err:
                raise _entry_error(e, e.index, err) from err
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [responses[e.index] for e in entries],
    }


def _resolve_identity(
    store: Store, conn: Connection, e: _Entry, mapping: dict[str, str], access: Access | None
) -> str | None:
    """Decide which resource an entry changes, and map its fullUrl to ``Type/id``."""
    if e.method == "POST":
        if e.if_none_exist:
            query = parse_qsl(e.if_none_exist.split("?")[-1])
            found = match_ids(store, conn, e.res_type, query, 2, access=access)
            if len(found) > 1:
                raise precondition_failed(f"ifNoneExist matched {len(found)} resources.")
            if found:
                e.matched_id = found[0]
                if e.full_url:
                    mapping[e.full_url] = f"{e.res_type}/{found[0]}"
                return None
        e.assigned_id = str(uuid.uuid4())
        if e.full_url:
            mapping[e.full_url] = f"{e.res_type}/{e.assigned_id}"
        return f"{e.res_type}/{e.assigned_id}"
    if e.method in ("PUT", "PATCH", "DELETE"):
        if len(e.path) == 2:
            identity = f"{e.res_type}/{e.path[1]}"
        elif len(e.path) == 1 and e.query and e.method != "PATCH":
            found = match_ids(store, conn, e.res_type, e.query, 2, access=access)
            if len(found) > 1:
                raise precondition_failed(
                    f"The conditional {e.method} matched {len(found)} resources."
                )
            if found:
                identity = f"{e.res_type}/{found[0]}"
                if e.method == "PUT":
                    body_id = e.resource.get("id")
                    if body_id is not None and body_id != found[0]:
                        raise bad_request(
                            f"The resource id '{body_id}' differs from the id of the matching resource.",
                            f"{e.res_type}.id",
                        )
                    e.target_id = found[0]
                    e.resource = {**e.resource, "id": found[0]}
            elif e.method == "PUT":
                new_id = (e.resource or {}).get("id") or str(uuid.uuid4())
                e.resource = {**e.resource, "id": new_id}
                e.target_id = new_id
                identity = f"{e.res_type}/{new_id}"
            else:
                return None
        else:
            raise bad_request(f"{e.method} {e.url}: needs Type/id or Type?criteria.")
        if e.full_url and e.full_url.startswith("urn:"):
            mapping[e.full_url] = identity
        return identity
    return None


def _batch(store: Store, raw_entries: list, prefer: str, access: Access | None) -> dict:
    out = []
    for i, raw in enumerate(raw_entries):
        try:
            if not isinstance(raw, dict):
                raise bad_request("Each Bundle entry must be an object.")
            e = _Entry(i, raw)
            with store.write() as conn:
                out.append(_run_entry(store, e, conn, prefer, access))
        except FhirError as err:
            out.append(
                {
                    "response": {
                        "status": str(err.status),
                        "outcome": _entry_error(None, i, err).outcome(),
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}
