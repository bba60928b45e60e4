"""HTTP for the master patient index: the review queue, splitting, persons, the model.

The review queue is a boundary of its own (it shows identifying details side by side), so
every route here checks the role itself and logs what it shows or decides before answering:

* ``GET /mpi/review[?status=open|accepted|rejected|superseded]``: review items (ids and
  scores, no details). Data-quality officers.
* ``GET /mpi/review/{id}``: the two records side by side, with each comparison's level and
  weight. Logged as a read of both records.
* ``POST /mpi/review/{id}`` ``{"decision": "accept"|"reject", "note": "…"}``: accept links the
  record to the candidate person (and gives it their NHS number); reject keeps them apart for
  good. Logged as ``link``.
* ``POST /mpi/split`` ``{"patient": "Patient/<id>", "note": "…"}``: take one record out of its
  person (a wrong link): it becomes a person of its own, loses an NHS number the index gave it,
  and automatic matching never puts it back. Logged as ``link``.
* ``GET /mpi/persons/{id}``: a person's records and how each was linked. Data quality.
* ``GET /mpi/model``: the active model's thresholds, training summary and every comparison
  level's m, u and match weight; ``GET /mpi/model/chart``: the match-weight chart (HTML with an
  SVG drawn here; ``?format=vega-lite`` gives Splink's own chart specification).
  Administrators and data quality.
"""

from __future__ import annotations

import html
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select, update

from carelight.access.http import gate_of, json_object, json_response, principal_of, record
from carelight.access.principal import Principal, Purpose, Role
from carelight.audit.events import AccessEvent
from carelight.fhir.errors import bad_request, error, not_found
from carelight.identity.linkage.comparisons import COMPARISONS
from carelight.identity.mpi.core import MR, RV, Decision, Pending, new_person_id, record_from_json

router = APIRouter(prefix="/mpi")
STATUSES = ("open", "accepted", "rejected", "superseded")
DECISIONS = ("accept", "reject")


def _allowed(request: Request, roles: tuple[Role, ...]) -> Principal:
    """The signed-in principal if their role is one of ``roles``; else 401/403 (logged)."""
    principal = principal_of(request)
    if principal is None:
        gate_of(request).context(None)  # 401, as everywhere else
    assert principal is not None
    if principal.role not in roles:
        record(
            request,
            AccessEvent(
                action="read",
                outcome="refused",
                username=principal.username,
                principal=principal,
                query="mpi",
                reason="the master patient index is for data-quality officers",
            ),
        )
        names = " and ".join(r.value for r in roles)
        raise error(403, "forbidden", f"The master patient index is open to {names} roles only.")
    return principal


def _purpose(principal: Principal) -> str:
    return (Purpose.HSYSADMIN if principal.role == Role.ADMIN else Purpose.HOPERAT).value


def _log(request: Request, principal: Principal, action: str, **fields) -> int:
    """Append what the index shows or does to the log, before the answer (fail closed)."""
    return record(
        request,
        AccessEvent(
            action=action,
            outcome="success",
            username=principal.username,
            principal=principal,
            purpose=_purpose(principal),
            **fields,
        ),
    )


def _item(row) -> dict:
    return {
        "id": row.id,
        "patient": f"Patient/{row.patient_id}",
        "candidatePerson": f"Person/{row.candidate_person}",
        "matched": f"Patient/{row.matched_id}" if row.matched_id else None,
        "matchProbability": row.probability,
        "matchWeight": row.match_weight,
        "reason": row.reason,
        "status": row.status,
        "created": row.created_at,
        "decidedBy": row.decided_by,
        "decided": row.decided_at,
        "note": row.note,
    }


# -- the review queue ----------------------------------------------------------------------------
@router.get("/review")
async def review_list(request: Request) -> Response:
    principal = _allowed(request, (Role.DATA_QUALITY,))
    status = request.query_params.get("status", "open")
    if status not in STATUSES:
        raise bad_request(f"status must be one of {', '.join(STATUSES)}.", "status")
    try:
        count = min(int(request.query_params.get("_count", "100")), 1000)
    except ValueError:
        raise bad_request("_count must be a whole number.", "_count") from None
    store = request.app.state.store
    with store.read_conn() as conn:
        rows = conn.execute(
            select(RV).where(RV.c.status == status).order_by(RV.c.id).limit(count)
        ).all()
        total = conn.execute(
            select(func.count()).select_from(RV).where(RV.c.status == status)
        ).scalar_one()
    items = [_item(r) for r in rows]
    _log(
        request,
        principal,
        "search",
        patients=tuple(dict.fromkeys(r.patient_id for r in rows)),
        query="mpi/review?status",
    )
    return json_response({"status": status, "total": total, "items": items})


def _details(doc: dict) -> dict:
    """What a reviewer compares: names, birth date, sex, home address, NHS number, source."""
    names = [
        {"use": n.get("use"), "text": " ".join([*(n.get("given") or []), n.get("family") or ""])}
        for n in doc.get("name") or ()
        if isinstance(n, dict)
    ]
    addresses = [
        {
            "use": a.get("use"),
            "text": ", ".join(
                [*(a.get("line") or []), a.get("city") or "", a.get("postalCode") or ""]
            ),
        }
        for a in doc.get("address") or ()
        if isinstance(a, dict)
    ]
    numbers = [
        i.get("value")
        for i in doc.get("identifier") or ()
        if isinstance(i, dict) and i.get("system") == "https://fhir.nhs.uk/Id/nhs-number"
    ]
    return {
        "id": f"Patient/{doc.get('id')}",
        "source": (doc.get("meta") or {}).get("source"),
        "names": names,
        "birthDate": doc.get("birthDate"),
        "gender": doc.get("gender"),
        "addresses": addresses,
        "nhsNumbers": numbers,
    }


@router.get("/review/{item_id}")
async def review_compare(item_id: int, request: Request) -> Response:
    principal = _allowed(request, (Role.DATA_QUALITY,))
    store = request.app.state.store
    with store.read_conn() as conn:
        row = conn.execute(select(RV).where(RV.c.id == item_id)).first()
        if row is None:
            raise not_found(f"Review item {item_id} is not known.")
        left = _record_row(conn, row.patient_id)
        right = _record_row(conn, row.matched_id) if row.matched_id else None
        members = (
            conn.execute(select(MR.c.patient_id).where(MR.c.person == row.candidate_person))
            .scalars()
            .all()
        )
        model = store.mpi.model(conn)
    body = {
        "item": _item(row),
        "record": _details(store.read("Patient", row.patient_id).json()),
        "candidate": _details(store.read("Patient", row.matched_id).json()) if right else None,
        "candidatePersonRecords": [f"Patient/{m}" for m in members],
        "comparisons": _explain(model, left, right),
    }
    _log(
        request,
        principal,
        "read",
        patients=tuple(p for p in (row.patient_id, row.matched_id) if p),
        resources=tuple(f"Patient/{p}" for p in (row.patient_id, row.matched_id) if p),
        query="mpi/review",
    )
    return json_response(body)


def _record_row(conn, patient_id: str | None):
    if patient_id is None:
        return None
    text = conn.execute(select(MR.c.features).where(MR.c.patient_id == patient_id)).scalar()
    return record_from_json(text) if text else None


def _explain(model, left, right) -> list[dict]:
    """Each comparison's level for the pair, and its weight in the active model."""
    if left is None or right is None:
        return []
    weights = {}
    if model is not None:
        for p in model.parameters():
            weights[(p["comparison"], p["level"])] = p["match_weight"]
    out = []
    for comparison in COMPARISONS:
        label = comparison.levels[comparison.level_of(left, right)].label
        out.append(
            {
                "comparison": comparison.name,
                "level": label,
                "matchWeight": weights.get((comparison.name, label)),
            }
        )
    return out


@router.post("/review/{item_id}")
async def review_decide(item_id: int, request: Request) -> Response:
    principal = _allowed(request, (Role.DATA_QUALITY,))
    body = await json_object(request)
    decision = body.get("decision")
    if decision not in DECISIONS:
        raise bad_request('decision must be "accept" or "reject".', "decision")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 1000):
        raise bad_request("note must be text of at most 1,000 characters.", "note")
    store = request.app.state.store
    now = time.time()
    with store.write() as conn:
        row = conn.execute(select(RV).where(RV.c.id == item_id)).first()
        if row is None:
            raise not_found(f"Review item {item_id} is not known.")
        if row.status != "open":
            raise error(
                409,
                "conflict",
                f"Review item {item_id} is {row.status}, not open: nothing to decide.",
            )
        patient_id, person = row.patient_id, row.candidate_person
        target = conn.execute(select(MR.c.patient_id).where(MR.c.person == person)).first()
        if decision == "accept" and target is None:
            raise error(
                409,
                "conflict",
                f"Person/{person} has no records any more (they were changed or deleted); "
                "nothing to link to.",
            )
        conn.execute(
            update(RV)
            .where(RV.c.id == item_id)
            .values(
                status="accepted" if decision == "accept" else "rejected",
                decided_by=principal.username,
                decided_at=now,
                note=note,
            )
        )
        events: list[AccessEvent] = []
        if decision == "accept":
            events += _move(store, conn, patient_id, person, "reviewed", principal, row.probability)
            conn.execute(
                update(RV)
                .where(RV.c.patient_id == patient_id, RV.c.status == "open")
                .values(status="superseded", decided_at=now)
            )
        else:
            events.append(
                _link_event(principal, patient_id, person, f"rejected, review item {item_id}")
            )
        for event in events:  # in the transaction: no decision without its log entry
            record(request, event)
    return json_response(
        {"item": item_id, "decision": decision, "patient": f"Patient/{patient_id}"}
    )


# -- splitting a wrong link ----------------------------------------------------------------------
@router.post("/split")
async def split(request: Request) -> Response:
    principal = _allowed(request, (Role.DATA_QUALITY,))
    body = await json_object(request)
    ref = body.get("patient")
    if not isinstance(ref, str) or not ref.startswith("Patient/") or len(ref) <= 8:
        raise bad_request('Name the record: {"patient": "Patient/<id>", "note": "…"}.', "patient")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 1000):
        raise bad_request("note must be text of at most 1,000 characters.", "note")
    patient_id = ref.removeprefix("Patient/")
    store = request.app.state.store
    with store.write() as conn:
        row = conn.execute(select(MR.c.person).where(MR.c.patient_id == patient_id)).first()
        if row is None:
            raise not_found(f"Patient/{patient_id} is not in the index (unknown or deleted).")
        others = conn.execute(
            select(MR.c.patient_id).where(MR.c.person == row.person, MR.c.patient_id != patient_id)
        ).first()
        if others is None:
            raise error(
                409,
                "conflict",
                f"Patient/{patient_id} is the only record of its person: there is no link to split.",
            )
        old = row.person
        new = new_person_id()
        events = _move(store, conn, patient_id, new, "split", principal, None)
        # Remember the decision: automatic matching never links it to that person again.
        now = time.time()
        conn.execute(
            RV.insert().values(
                patient_id=patient_id,
                candidate_person=old,
                reason="split",
                status="rejected",
                created_at=now,
                decided_by=principal.username,
                decided_at=now,
                note=note,
            )
        )
        for event in events:
            record(request, event)
    return json_response(
        {"patient": f"Patient/{patient_id}", "from": f"Person/{old}", "to": f"Person/{new}"}
    )


def _move(store, conn, patient_id: str, person: str, how: str, principal, probability):
    """Put one record into ``person`` as a person decided, and let what depends on it follow
    (person_link, the NHS number the index gave it)."""
    mpi = store.mpi
    text, pk = conn.execute(
        select(MR.c.features, MR.c.res_pk).where(MR.c.patient_id == patient_id)
    ).one()
    rec = record_from_json(text)
    decision = Decision(patient_id, "auto", person, probability, None, None, None, how)
    pending = Pending(rec, decision, person, how, {}, None, principal.username)
    # after_write keeps a manual record's decision; this *is* the manual decision, so write it.
    conn.execute(
        update(MR)
        .where(MR.c.patient_id == patient_id)
        .values(how=how, person=person, decided_by=principal.username, decided_at=time.time(),
                probability=probability, match_weight=None, matched_id=None, model_version=None)
    )  # fmt: skip
    mpi.after_write(conn, pk, pending)
    number = mpi._person_number(conn, person, patient_id)
    store.set_assigned_number(conn, patient_id, number)
    return [
        _link_event(principal, patient_id, person, f"{how} by a data-quality officer"),
    ]


def _link_event(principal, patient_id: str, person: str, detail: str) -> AccessEvent:
    return AccessEvent(
        action="link",
        outcome="success",
        username=principal.username,
        principal=principal,
        purpose=_purpose(principal),
        patients=(patient_id,),
        resources=(f"Patient/{patient_id}", f"Person/{person}"),
        reason=detail,
    )


# -- persons ------------------------------------------------------------------------------------
@router.get("/persons/{person}")
async def person_records(person: str, request: Request) -> Response:
    principal = _allowed(request, (Role.DATA_QUALITY,))
    store = request.app.state.store
    with store.read_conn() as conn:
        rows = conn.execute(
            select(MR.c.patient_id, MR.c.how, MR.c.probability, MR.c.decided_at, MR.c.decided_by)
            .where(MR.c.person == person)
            .order_by(MR.c.patient_id)
        ).all()
    if not rows:
        raise not_found(f"Person/{person} is not known.")
    _log(
        request,
        principal,
        "read",
        patients=tuple(r.patient_id for r in rows),
        resources=(f"Person/{person}",),
        query="mpi/persons",
    )
    return json_response(
        {
            "person": f"Person/{person}",
            "records": [
                {
                    "patient": f"Patient/{r.patient_id}",
                    "how": r.how,
                    "matchProbability": r.probability,
                    "decided": r.decided_at,
                    "decidedBy": r.decided_by,
                }
                for r in rows
            ],
        }
    )


# -- the model ----------------------------------------------------------------------------------
def _active_model(request: Request):
    store = request.app.state.store
    with store.read_conn() as conn:
        model = store.mpi.model(conn)
    if model is None:
        raise not_found("No linkage model is trained yet (carelight mpi train).")
    return model


@router.get("/model")
async def model_view(request: Request) -> Response:
    principal = _allowed(request, (Role.ADMIN, Role.DATA_QUALITY))
    model = _active_model(request)
    _log(request, principal, "read", query="mpi/model")
    return json_response(
        {
            "version": model.version,
            "trainedAt": model.trained_at,
            "thresholds": {"upper": model.thresholds.upper, "lower": model.thresholds.lower},
            "training": model.training,
            "priorMatchProbability": model.settings.get("probability_two_random_records_match"),
            "parameters": model.parameters(),
            "versions": request.app.state.store.mpi.models(),
        }
    )


@router.get("/model/chart")
async def model_chart(request: Request) -> Response:
    principal = _allowed(request, (Role.ADMIN, Role.DATA_QUALITY))
    model = _active_model(request)
    _log(request, principal, "read", query="mpi/model/chart")
    if request.query_params.get("format") == "vega-lite":
        return json_response(_splink_chart(model))
    return HTMLResponse(chart_html(model))


def _splink_chart(model) -> dict:
    """Splink's own match-weight chart (a Vega-Lite specification) for this model."""
    import pandas as pd
    from splink import DuckDBAPI, Linker

    from carelight.identity.linkage.features import COLUMNS

    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
    linker = Linker(frame, model.settings, DuckDBAPI(), set_up_basic_logging=False)
    return linker.visualisations.match_weights_chart(as_dict=True)


def chart_html(model) -> str:
    """Every comparison level's match weight as a horizontal bar (SVG, no script)."""
    rows = [p for p in model.parameters() if p["match_weight"] is not None]
    prior = model.settings.get("probability_two_random_records_match") or 0
    import math

    if 0 < prior < 1:
        rows.insert(
            0,
            {
                "comparison": "prior",
                "level": "two random records match",
                "match_weight": math.log2(prior / (1 - prior)),
            },
        )
    top = max([abs(r["match_weight"]) for r in rows] + [1.0])
    width, label_w, bar_h = 760, 360, 18
    half = (width - label_w) / 2
    parts = []
    for i, r in enumerate(rows):
        y = 30 + i * (bar_h + 4)
        w = abs(r["match_weight"]) / top * (half - 10)
        x = label_w + half - (w if r["match_weight"] < 0 else 0)
        colour = "#007f3b" if r["match_weight"] >= 0 else "#d5281b"
        label = html.escape(f"{r['comparison']}: {r['level']}")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end" font-size="12">{label}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{label}: {r['match_weight']:+.2f}</title></rect>"
            f'<text x="{x + w + 4 if r["match_weight"] >= 0 else x - 4:.1f}" y="{y + 13}" '
            f'font-size="11" text-anchor="{"start" if r["match_weight"] >= 0 else "end"}">'
            f"{r['match_weight']:+.2f}</text>"
        )
    height = 40 + len(rows) * (bar_h + 4)
    axis = label_w + half
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 60}" height="{height}" '
        f'role="img" aria-label="Match weights of linkage model version {model.version}">'
        f'<line x1="{axis}" y1="20" x2="{axis}" y2="{height - 5}" stroke="#425563"/>'
        + "".join(parts)
        + "</svg>"
    )
    table = "".join(
        f"<tr><td>{html.escape(r['comparison'])}</td><td>{html.escape(r['level'])}</td>"
        f"<td>{r['match_weight']:+.2f}</td></tr>"
        for r in rows
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Linkage model {model.version}: match weights</title></head><body>"
        f"<h1>Linkage model version {model.version}</h1>"
        f"<p>Trained {html.escape(str(model.trained_at))}. Upper threshold "
        f"{model.thresholds.upper}, lower {model.thresholds.lower}. A bar is log2(m/u): "
        "green is evidence for a match, red against.</p>"
        f"{svg}<table><caption>Match weights</caption><thead><tr><th>Comparison</th>"
        f"<th>Level</th><th>Weight</th></tr></thead><tbody>{table}</tbody></table>"
        "</body></html>"
    )
