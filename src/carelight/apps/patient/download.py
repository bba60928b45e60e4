"""Download my record: the whole record as a FHIR R4 Bundle (JSON), and as a summary document
a person can read, print and keep (HTML, no scripts, readable offline)."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson

from carelight.fhir.store import StoredResource

BUNDLE_TYPE = "collection"


def bundle(stored: list[StoredResource], base_url: str) -> bytes:
    """Every resource of the person's record (their Patient records first), as a collection
    Bundle; resources are embedded as stored, never re-serialised."""
    patients = [s for s in stored if s.res_type == "Patient"]
    others = [s for s in stored if s.res_type != "Patient"]
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"lastUpdated": now},
            "type": BUNDLE_TYPE,
            "timestamp": now,
            "entry": [
                {
                    "fullUrl": f"{base_url}/{s.res_type}/{s.res_id}",
                    "resource": orjson.Fragment(s.content),
                }
                for s in (*patients, *others)
            ],
        }
    )


def filename(kind: str, when: dt.date | None = None) -> str:
    day = (when or dt.date.today()).isoformat()
    return f"my-health-and-care-record-{day}.{kind}"
