"""The research-store extract's way through the gate: a named code path, not a role anyone holds.

:func:`extract_access` is the only maker of the ``research-extract`` service principal. It
reads the project from the operational database and refuses unless the project is approved or
active, and takes whether national data opt-outs apply from the project's recorded legal basis
(never from its caller). No account can have the role, no token can be issued for it or name
it, and :meth:`Gate.context` refuses it, so a human token (a researcher's included) cannot
reach identifiable data this way.

The context it returns is an ``AccessContext`` whose row condition the data layer applies inside
its SQL, like every other caller's: resources in the compartment of at least one person, none of
whom has opted out of research (:func:`carelight.access.optout.opted_out_records`, unless the
basis exempts the use), and none labelled with a code withheld from non-direct-care uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, literal_column, or_, select

from carelight.access.gate import WITHHELD_LABELS, AccessContext, Gate, _Bound
from carelight.access.optout import EXEMPT_BASES, opted_out_records
from carelight.access.principal import Principal, Purpose, Role
from carelight.fhir import schema
from carelight.fhir.errors import error

EXTRACT_STATUSES = ("approved", "active")
DIRECTORY = ("Organization", "Questionnaire")  # what the extract reads that is about no one
C, TOKEN = schema.compartment, schema.sp_token


@dataclass
class ResearchExtractContext(AccessContext):
    """What the extract may read for one project."""

    project_id: int = 0
    opt_outs_apply: bool = True

    @property
    def source(self) -> str | None:
        return None  # it writes nothing

    def patient_allowed(self, patient_col, bound: _Bound | None = None):
        if not self.opt_outs_apply:
            return patient_col.is_not(None)
        return patient_col.not_in(opted_out_records(Purpose.HRESCH))

    def condition(self, r, bound: _Bound | None = None):
        return self.condition_for(r)

    def condition_for(self, r, res_type: str | None = None):
        """The row condition; given the one resource type a query reads, the labelled
        resources are found once through the search index (a set the planner builds once)
        instead of probed row by row."""
        c = C.alias("research_c")
        about_someone = exists(select(c.c.res_pk).where(c.c.res_pk == r.c.pk))
        cond = [about_someone]
        if self.opt_outs_apply:
            # Every resource in an opted-out person's compartment, as one set built once per
            # query (a probe per row would walk the opted-out list for every resource).
            o = C.alias("research_o")
            cond.append(
                r.c.pk.not_in(
                    select(o.c.res_pk).where(o.c.patient_id.in_(opted_out_records(Purpose.HRESCH)))
                )
            )
        if res_type is None:
            cond.append(~withheld_label(r))
        else:
            cond.append(r.c.pk.not_in(labelled(res_type)))
        # Organisations and forms are about no one: their codes and names label the data.
        directory = r.c.res_type.in_([literal_column(f"'{t}'") for t in DIRECTORY])
        return or_(directory, and_(*cond))

    def before_write(self, content, current, rows) -> None:
        raise self.refused("Writing")

    def before_delete(self, current) -> None:
        raise self.refused("Deleting")


def withheld_label(r):
    """SQL: the resource carries a security label withheld from the research extract."""
    t = TOKEN.alias("research_t")
    codes = WITHHELD_LABELS[Role.RESEARCH_EXTRACT]
    return exists(
        select(t.c.res_pk).where(
            t.c.res_pk == r.c.pk,
            t.c.param == literal_column("'_security'"),
            t.c.code.in_([literal_column(f"'{code}'") for code in codes]),
        )
    )


def labelled(res_type: str):
    """SQL: the primary keys of this type's resources with a withheld label (an index range)."""
    t = TOKEN.alias("research_l")
    return select(t.c.res_pk).where(
        t.c.res_type == res_type,
        t.c.param == "_security",
        t.c.code.in_(WITHHELD_LABELS[Role.RESEARCH_EXTRACT]),
    )


def extract_access(gate: Gate, project_id: int) -> ResearchExtractContext:
    """The extract's access context for ``project_id``, or a refusal (403) if the project may
    not have a research store made now."""
    from carelight.sde.tables import sde_project as P

    with gate.store.engine.connect() as conn:
        row = conn.execute(
            select(P.c.status, P.c.legal_basis, P.c.confidentiality_basis).where(
                P.c.id == project_id
            )
        ).first()
    if row is None:
        raise error(404, "not-found", f"There is no project {project_id}.")
    status, legal, confidentiality = row
    if status not in EXTRACT_STATUSES:
        raise error(
            403,
            "forbidden",
            f"Project {project_id} is {status}; only an approved or active project may have "
            "a research store made.",
        )
    principal = Principal(
        username=f"sde-extract/project-{project_id}",
        role=Role.RESEARCH_EXTRACT,
        display=f"Research extract for project {project_id}",
    )
    return ResearchExtractContext(
        principal,
        Purpose.HRESCH,
        gate,
        project_id=project_id,
        opt_outs_apply=not (legal in EXEMPT_BASES or confidentiality in EXEMPT_BASES),
    )


__all__ = ["ResearchExtractContext", "extract_access", "withheld_label"]
