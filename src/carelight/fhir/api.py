"""The FHIR R4 REST API at ``/fhir``: JSON only, errors as OperationOutcome.

Each route translates HTTP (headers, status codes, bundles) to one call on the store; the
semantics live in the store and the search modules. Handlers are plain ``def`` functions so
database work runs in the thread pool, never on the event loop.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from carelight.access.http import guard, query_names
from carelight.fhir import bundles
from carelight.fhir.capability import capability_statement
from carelight.fhir.errors import FhirError, bad_request, error
from carelight.fhir.resource_types import SUPPORTED
from carelight.fhir.search.execute import parse_query_string, run_search
from carelight.fhir.search.query import parse_search
from carelight.fhir.search.values import bounded_int, parse_date_range
from carelight.fhir.shaping import shape
from carelight.fhir.store import Store, StoredResource, WriteOutcome, check_type, instant_text

FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
PATCH_TYPES = ("application/json-patch+json",)

router = APIRouter()


def get_store(request: Request) -> Store:
    return request.app.state.store


def fhir_response(
    body: bytes | str | None, status: int = 200, headers: dict | None = None
) -> Response:
    if isinstance(body, str):
        body = body.encode()
    return Response(content=body or b"", status_code=status, headers=headers, media_type=FHIR_JSON)


def outcome_response(err: FhirError) -> Response:
    return fhir_response(orjson.dumps(err.outcome()), err.status, err.headers or None)


def _resource_headers(stored: StoredResource) -> dict[str, str]:
    return {"ETag": stored.etag, "Last-Modified": stored.last_modified}


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query, keep_blank_values=True)


def _check_format(pairs: list[tuple[str, str]], request: Request) -> None:
    for key, value in pairs:
        if key == "_format" and "json" not in value:
            raise error(406, "not-supported", "This server speaks JSON only (_format=json).")
    accept = request.headers.get("accept")
    if accept and not any(t in accept for t in ("json", "*/*")):
        raise error(
            406, "not-supported", f"Cannot answer with {accept}; this server speaks JSON only."
        )


async def _json_body(request: Request, allowed: tuple[str, ...] = JSON_TYPES):
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in allowed:
        raise error(
            415, "not-supported", f"Content-Type {ctype} is not supported; use {allowed[0]}."
        )
    raw = await request.body()
    if not raw:
        raise bad_request("The request has no body.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The body is not valid JSON: {exc}") from exc


def _write_response(request: Request, outcome: WriteOutcome, base: str, status: int) -> Response:
    stored = outcome.stored
    headers = _resource_headers(stored)
    headers["Location"] = f"{base}/{stored.location}"
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return fhir_response(None, status, headers)
    if "return=OperationOutcome" in prefer:
        oo = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": f"{stored.res_type}/{stored.res_id} version {stored.version_id}",
                }
            ],
        }
        return fhir_response(orjson.dumps(oo), status, headers)
    return fhir_response(stored.content, status, headers)


# -- capability -------------------------------------------------------------------------------
@router.get("/metadata")
def metadata(request: Request) -> Response:
    _check_format(_query_pairs(request), request)
    return fhir_response(orjson.dumps(capability_statement(get_store(request).base_url)))


@router.api_route("/metadata", methods=["POST", "PUT", "PATCH", "DELETE"])
def metadata_not_allowed(request: Request) -> Response:
    raise error(405, "not-supported", f"{request.method} is not allowed on /metadata; use GET.")


# -- system level -------------------------------------------------------------------------------
@router.post("")
@router.post("/")
async def transaction_or_batch(request: Request) -> Response:
    body = await _json_body(request)
    store = get_store(request)
    kind = body.get("type") if isinstance(body, dict) else None
    with guard(request, kind if kind in ("batch", "transaction") else "transaction") as g:
        result = await run_in_threadpool(
            bundles.process, store, body, request.headers.get("prefer", ""), g.ctx
        )
        g.done(_bundle_resources(result))
    return fhir_response(orjson.dumps(result))


def _bundle_resources(result: dict) -> list[StoredResource]:
    """What a batch or transaction response names (for the log): written and read resources."""
    found = []
    for entry in result.get("entry", []):
        location = (entry.get("response") or {}).get("location")
        if location and location.count("/") >= 1:
            res_type, res_id = location.split("/")[:2]
            found.append(StoredResource(res_type, res_id, 0, 0.0, False, None))
    return found


@router.get("/_history")
def system_history(request: Request) -> Response:
    return _history(request, None, None)


# -- type level ------------------------------------------------------------------------------
@router.get("/{res_type}/_history")
def type_history(request: Request, res_type: str) -> Response:
    return _history(request, res_type, None)


@router.get("/{res_type}")
def search(request: Request, res_type: str) -> Response:
    return _search(request, res_type, _query_pairs(request))


@router.post("/{res_type}/_search")
async def search_post(request: Request, res_type: str) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    pairs = _query_pairs(request)
    if ctype == "application/x-www-form-urlencoded":
        pairs += parse_qsl((await request.body()).decode(), keep_blank_values=True)
    elif ctype:
        raise error(415, "not-supported", "POST _search takes application/x-www-form-urlencoded.")
    return await run_in_threadpool(_search, request, res_type, pairs)


@router.post("/{res_type}")
async def create(request: Request, res_type: str) -> Response:
    check_type(res_type)
    body = await _json_body(request)
    store = get_store(request)
    if isinstance(body, dict) and body.get("resourceType") != res_type:
        raise bad_request(
            f"The body is a {body.get('resourceType')!r}, but was posted to /{res_type}.",
            "resourceType",
        )
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "id"}  # server assigns ids on create
    with guard(request, "create", res_type) as g:
        outcome = await run_in_threadpool(
            partial(
                store.create,
                body,
                if_none_exist=request.headers.get("if-none-exist"),
                access=g.ctx,
            )
        )
        g.done([outcome.stored])
    return _write_response(request, outcome, store.base_url, 201 if outcome.created else 200)


@router.put("/{res_type}")
async def conditional_update(request: Request, res_type: str) -> Response:
    pairs = _query_pairs(request)
    if not pairs:
        raise error(
            405,
            "not-supported",
            f"PUT /{res_type} needs search criteria (conditional update) or an id.",
        )
    body = await _json_body(request)
    store = get_store(request)
    with guard(request, "update", query_names(res_type, pairs)) as g:
        outcome = await run_in_threadpool(
            bundles.conditional_update, store, res_type, pairs, body, None, g.ctx
        )
        g.done([outcome.stored])
    return _write_response(request, outcome, store.base_url, 201 if outcome.created else 200)


@router.delete("/{res_type}")
def conditional_delete(request: Request, res_type: str) -> Response:
    pairs = _query_pairs(request)
    if not pairs:
        raise error(
            405,
            "not-supported",
            f"DELETE /{res_type} needs search criteria (conditional delete) or an id.",
        )
    with guard(request, "delete", query_names(res_type, pairs)) as g:
        bundles.conditional_delete(get_store(request), res_type, pairs, None, g.ctx)
        g.done()
    return fhir_response(None, 204)


# -- instance level ------------------------------------------------------------------------
@router.get("/Patient/{res_id}/$everything")
def everything(request: Request, res_id: str) -> Response:
    store = get_store(request)
    pairs = _query_pairs(request)
    since, types, count, offset = None, None, 1000, 0
    for key, value in pairs:
        if key == "_since":
            since = parse_date_range(value, "_since").low
        elif key == "_type":
            types = [t for t in value.split(",") if t]
        elif key == "_count":
            count = bounded_int(key, value, 1, 5000)
        elif key == "_offset":
            offset = bounded_int(key, value, 0, None)
        elif key not in ("_format",):
            raise bad_request(f"$everything does not take the parameter '{key}'.")
    with guard(request, "everything", query_names("Patient/$everything", pairs)) as g:
        # A person's whole record: demographics are open for tracing, the record is not.
        g.require_record(res_id)
        found, more = store.everything(
            res_id, since=since, types=types, count=count, offset=offset, access=g.ctx
        )
        g.done(found)
    base = store.base_url
    self_url = f"{base}/Patient/{res_id}/$everything"
    links = [{"relation": "self", "url": _with_query(self_url, pairs)}]
    if more:
        links.append(
            {"relation": "next", "url": _with_query(self_url, _paged(pairs, offset + count))}
        )
    if offset:
        links.append(
            {
                "relation": "previous",
                "url": _with_query(self_url, _paged(pairs, max(offset - count, 0))),
            }
        )
    entries = [_entry(base, s, "match") for s in found]
    bundle = {"resourceType": "Bundle", "type": "searchset"}
    if not more and offset == 0:
        bundle["total"] = len(found)
    bundle["link"] = links
    bundle["entry"] = entries
    return fhir_response(orjson.dumps(bundle))


@router.get("/{res_type}/{res_id}")
async def read(request: Request, res_type: str, res_id: str) -> Response:
    store = get_store(request)
    pairs = _query_pairs(request)
    with guard(request, "read", res_type) as g:
        if store.dialect == "sqlite":
            # A primary-key read from a local file takes tens of microseconds: cheaper to do on
            # the event loop than to hand to the thread pool and back. A server engine waits
            # on the network, so it goes to the pool.
            stored = store.read(res_type, res_id, access=g.ctx)
            g.done([stored])
        else:
            stored = await run_in_threadpool(partial(store.read, res_type, res_id, access=g.ctx))
            await run_in_threadpool(g.done, [stored])
    headers = _resource_headers(stored)
    _check_format(pairs, request)
    if pairs:
        summary, elements = _shaping(pairs)
        return fhir_response(shape(stored.content, summary, elements), 200, headers)
    none_match = request.headers.get("if-none-match")
    if none_match and none_match.strip() == stored.etag:
        return Response(status_code=304, headers=headers)
    return fhir_response(stored.content, 200, headers)


@router.put("/{res_type}/{res_id}")
async def update(request: Request, res_type: str, res_id: str) -> Response:
    body = await _json_body(request)
    store = get_store(request)
    with guard(request, "update", res_type) as g:
        outcome = await run_in_threadpool(
            partial(
                store.update,
                res_type,
                res_id,
                body,
                if_match=request.headers.get("if-match"),
                access=g.ctx,
            )
        )
        g.done([outcome.stored])
    return _write_response(request, outcome, store.base_url, 201 if outcome.created else 200)


@router.patch("/{res_type}/{res_id}")
async def patch(request: Request, res_type: str, res_id: str) -> Response:
    body = await _json_body(request, PATCH_TYPES + JSON_TYPES)
    store = get_store(request)
    with guard(request, "patch", res_type) as g:
        outcome = await run_in_threadpool(
            partial(
                store.patch,
                res_type,
                res_id,
                body,
                if_match=request.headers.get("if-match"),
                access=g.ctx,
            )
        )
        g.done([outcome.stored])
    return _write_response(request, outcome, store.base_url, 200)


@router.delete("/{res_type}/{res_id}")
def delete(request: Request, res_type: str, res_id: str) -> Response:
    store = get_store(request)
    with guard(request, "delete", res_type) as g:
        gone_now = StoredResource(res_type, res_id, 0, 0.0, True, None)
        patients = g.patients([gone_now]) if res_type in SUPPORTED else []  # before the delete
        store.delete(res_type, res_id, access=g.ctx)
        g.done([gone_now], patients=patients)
    return fhir_response(None, 204)


@router.get("/{res_type}/{res_id}/_history")
def instance_history(request: Request, res_type: str, res_id: str) -> Response:
    return _history(request, res_type, res_id)


@router.get("/{res_type}/{res_id}/_history/{version_id}")
def vread(request: Request, res_type: str, res_id: str, version_id: str) -> Response:
    with guard(request, "read", f"{res_type}/_history") as g:
        stored = get_store(request).vread(res_type, res_id, version_id, access=g.ctx)
        g.done([stored])
    return fhir_response(stored.content, 200, _resource_headers(stored))


# -- helpers ---------------------------------------------------------------------------------
def _shaping(pairs: list[tuple[str, str]]) -> tuple[str | None, list[str] | None]:
    summary = elements = None
    for key, value in pairs:
        if key == "_summary":
            if value not in ("true", "false", "text", "data"):
                raise bad_request("_summary on a read must be true, false, text or data.")
            summary = value
        elif key == "_elements":
            elements = [e.split(".")[-1] for e in value.split(",") if e]
        elif key not in ("_format", "_pretty"):
            raise bad_request(f"A read does not take the parameter '{key}'.")
    return summary, elements


def _with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    return f"{url}?{urlencode(pairs)}" if pairs else url


def _paged(pairs: list[tuple[str, str]], offset: int) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in pairs if k != "_offset"]
    return [*kept, ("_offset", str(offset))] if offset else kept


def _entry(base: str, stored: StoredResource, mode: str, resource: object = None) -> dict:
    return {
        "fullUrl": f"{base}/{stored.res_type}/{stored.res_id}",
        "resource": resource if resource is not None else orjson.Fragment(stored.content),
        "search": {"mode": mode},
    }


def _search(request: Request, res_type: str, pairs: list[tuple[str, str]]) -> Response:
    store = get_store(request)
    _check_format(pairs, request)
    check_type(res_type)
    q = parse_search(res_type, pairs)
    with guard(request, "search", query_names(res_type, pairs)) as g:
        result = run_search(store, q, access=g.ctx)
        g.done([*result.matches, *result.included])
    base = store.base_url
    self_url = f"{base}/{res_type}"
    links = [{"relation": "self", "url": _with_query(self_url, pairs)}]
    if result.has_next:
        links.append(
            {"relation": "next", "url": _with_query(self_url, _paged(pairs, q.offset + q.count))}
        )
    if q.offset > 0:
        prev = max(q.offset - q.count, 0)
        links.append({"relation": "previous", "url": _with_query(self_url, _paged(pairs, prev))})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = links
    if q.summary != "count":
        entries = []
        for mode, items in (("match", result.matches), ("include", result.included)):
            for s in items:
                shaped = (
                    shape(s.content, q.summary, q.elements) if (q.summary or q.elements) else None
                )
                resource = orjson.Fragment(shaped) if shaped is not None else None
                entries.append(_entry(base, s, mode, resource))
        if entries:
            bundle["entry"] = entries
    return fhir_response(orjson.dumps(bundle))


def _history(request: Request, res_type: str | None, res_id: str | None) -> Response:
    store = get_store(request)
    pairs = _query_pairs(request)
    since, count, offset = None, 50, 0
    for key, value in pairs:
        if key == "_since":
            since = parse_date_range(value, "_since").low
        elif key == "_count":
            count = bounded_int(key, value, 1, 1000)
        elif key == "_offset":
            offset = bounded_int(key, value, 0, None)
        elif key not in ("_format",):
            raise bad_request(f"History does not take the parameter '{key}'.")
    what = "/".join(p for p in (res_type, res_id) if p)
    with guard(request, "history", query_names(f"{what}/_history".lstrip("/"), pairs)) as g:
        rows, more = store.history(
            res_type, res_id, since=since, count=count, offset=offset, access=g.ctx
        )
        g.done(
            StoredResource(r["res_type"], r["res_id"], r["version_id"], 0.0, r["deleted"], None)
            for r in rows
        )
    base = store.base_url
    path = "/".join(p for p in (base, res_type, res_id, "_history") if p)
    links = [{"relation": "self", "url": _with_query(path, pairs)}]
    if more:
        links.append({"relation": "next", "url": _with_query(path, _paged(pairs, offset + count))})
    if offset:
        links.append(
            {
                "relation": "previous",
                "url": _with_query(path, _paged(pairs, max(offset - count, 0))),
            }
        )
    entries = []
    for row in rows:
        stored = StoredResource(
            row["res_type"],
            row["res_id"],
            row["version_id"],
            row["last_updated"],
            row["deleted"],
            row["content"],
        )
        method = row["method"]
        entry: dict = {"fullUrl": f"{base}/{stored.res_type}/{stored.res_id}"}
        if not stored.deleted:
            entry["resource"] = orjson.Fragment(stored.content)
        entry["request"] = {
            "method": "PUT" if method == "PATCH" else method,
            "url": stored.res_type if method == "POST" else f"{stored.res_type}/{stored.res_id}",
        }
        created = method == "POST" or (stored.version_id == 1 and not stored.deleted)
        entry["response"] = {
            "status": "201 Created"
            if created
            else ("204 No Content" if stored.deleted else "200 OK"),
            "etag": stored.etag,
            # Bundle.entry.response.lastModified is a FHIR instant, not an HTTP date
            "lastModified": instant_text(stored.last_updated),
        }
        entries.append(entry)
    bundle: dict = {"resourceType": "Bundle", "type": "history"}
    if not more and (entries or offset == 0):
        bundle["total"] = offset + len(entries)
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return fhir_response(orjson.dumps(bundle))


__all__ = ["fhir_response", "outcome_response", "parse_query_string", "router"]
