"""Default incident types (with their extra fields) and the default priority matrix, seeded idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.db import utcnow
from tocsin.incidents import matrix
from tocsin.incidents.fields import FieldDef, FieldKind
from tocsin.incidents.models import IncidentType, PriorityCell

SEED_ACTOR = "system:seed"
SEVERITY_LADDER = ["fatality", "lost_time", "restricted_work", "medical_treatment", "first_aid", "near_miss"]


def _f(
    name: str,
    label: str,
    kind: FieldKind = FieldKind.text,
    *,
    required: bool = False,
    choices: list[str] | None = None,
    help: str = "",
) -> FieldDef:
    return FieldDef(name=name, label=label, kind=kind, required=required, choices=choices, help=help)


D, T, C, B, N = FieldKind.date, FieldKind.time, FieldKind.choice, FieldKind.boolean, FieldKind.number

# OSHA form 301 (29 CFR 1904.29) plus the OSHA 300 log's location and job title, and the severity ladder
# (actual and potential). Employee fields are optional: a near miss has no injured employee.
SAFETY_FIELDS = [
    _f("event_date", "Date of injury, illness or event", D, required=True),
    _f("event_time", "Time of event", T, help="Leave empty if the time cannot be determined."),
    _f("location", "Where the event occurred", required=True),
    _f("what_happened", "What happened? Tell us how the injury occurred", required=True),
    _f(
        "actual_severity",
        "Actual severity",
        C,
        required=True,
        choices=SEVERITY_LADDER,
        help="fatality > lost time > restricted work > medical treatment > first aid > near miss",
    ),
    _f(
        "potential_severity",
        "Potential severity",
        C,
        required=True,
        choices=SEVERITY_LADDER,
        help="The worst credible outcome had circumstances been slightly different.",
    ),
    _f("employee_name", "Employee's full name"),
    _f("employee_address", "Employee's address"),
    _f("employee_birth_date", "Employee's date of birth", D),
    _f("employee_hire_date", "Employee's date of hire", D),
    _f("employee_sex", "Employee's sex", C, choices=["male", "female"]),
    _f("job_title", "Employee's job title"),
    _f("physician", "Physician or other health care professional"),
    _f("treatment_facility", "Facility where treatment was given (name and address)"),
    _f("emergency_room", "Treated in an emergency room?", B),
    _f("hospitalized_overnight", "Hospitalized overnight as an in-patient?", B),
    _f("case_number", "Case number from the OSHA 300 log"),
    _f("work_start_time", "Time employee began work", T),
    _f("activity_before", "What was the employee doing just before the incident occurred?"),
    _f("injury", "What was the injury or illness? (the part of the body affected and how)"),
    _f("object_or_substance", "What object or substance directly harmed the employee?"),
    _f("death_date", "If the employee died, when did death occur?", D),
]

# NIST SP 800-61 impact scales and typed indicators of compromise (a structured list, so they can be
# searched, de-duplicated and exported as STIX observables rather than re-parsed out of prose).
SECURITY_FIELDS = [
    _f("functional_impact", "Functional impact", C, choices=["none", "low", "medium", "high"]),
    _f(
        "information_impact", "Information impact", C, choices=["none", "privacy", "proprietary", "integrity"]
    ),
    _f(
        "recoverability",
        "Recoverability",
        C,
        choices=["regular", "supplemented", "extended", "not_recoverable"],
    ),
    _f(
        "indicators",
        "Indicators of compromise",
        FieldKind.indicators,
        help='A list like [{"type": "ip", "value": "203.0.113.9"}]; '
        "types: ip, domain, url, hash, email, file, other.",
    ),
]

DATA_PROTECTION_FIELDS = [
    _f("data_categories", "Categories of personal data concerned"),
    _f("special_categories", "Special-category data involved (health, biometric, ...)?", B),
    _f("subjects_affected", "Approximate number of data subjects concerned", N),
    _f("records_affected", "Approximate number of personal-data records concerned", N),
    _f("likely_consequences", "Likely consequences for the people concerned"),
    _f("high_risk_to_subjects", "Likely high risk to the people concerned (GDPR art. 34)?", B),
]

QUALITY_FIELDS = [
    _f("product", "Product or process affected"),
    _f("batch", "Batch or lot"),
    _f("deviation_class", "Deviation class", C, choices=["minor", "major", "critical"]),
    _f("containment", "Containment taken"),
]

FACILITY_FIELDS = [
    _f("location", "Location (site, building, room)"),
    _f("asset", "Equipment or asset"),
]

DEVOPS_FIELDS = [
    _f("environment", "Environment", C, choices=["production", "staging", "development"]),
]


@dataclass(frozen=True)
class TypeSeed:
    key: str
    name: str
    description: str
    fields: list[FieldDef]
    confidential: bool = False


DEFAULT_TYPES = [
    TypeSeed("it_service", "IT service", "An unplanned interruption or degradation of an IT service.", []),
    TypeSeed(
        "security",
        "Security",
        "A declared information-security incident (NIST SP 800-61, ISO 27035).",
        SECURITY_FIELDS,
        confidential=True,
    ),
    TypeSeed(
        "devops", "DevOps / SRE", "A production reliability event on a system the team runs.", DEVOPS_FIELDS
    ),
    TypeSeed(
        "safety",
        "Workplace safety",
        "An injury, illness or near miss at work (OSHA 1904, ISO 45001).",
        SAFETY_FIELDS,
    ),
    TypeSeed(
        "quality",
        "Quality deviation",
        "A product or process deviation from its specification (ISO 9001).",
        QUALITY_FIELDS,
    ),
    TypeSeed(
        "data_protection",
        "Data protection",
        "A personal-data breach, notified or not (GDPR art. 33).",
        DATA_PROTECTION_FIELDS,
        confidential=True,
    ),
    TypeSeed(
        "facility", "Facility", "A fault in a building, utility or piece of site equipment.", FACILITY_FIELDS
    ),
]


async def seed_incidents(session: AsyncSession) -> None:
    """Add the default types and matrix cells that are missing; never overwrite what an admin edited."""
    now = utcnow()
    existing = set(await session.scalars(select(IncidentType.key)))
    for t in DEFAULT_TYPES:
        if t.key in existing:
            continue
        fields = [f.model_dump(mode="json") for f in t.fields]
        session.add(
            IncidentType(
                key=t.key,
                name=t.name,
                description=t.description,
                fields=fields,
                confidential_default=t.confidential,
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(
            session=session,
            actor=SEED_ACTOR,
            action="incident_type.create",
            entity_type="incident_type",
            entity_id=t.key,
            after={
                "name": t.name,
                "confidential_default": t.confidential,
                "fields": [f["name"] for f in fields],
            },
        )
    cells = {(c.impact, c.urgency) for c in await session.scalars(select(PriorityCell))}
    missing = {k: v for k, v in matrix.DEFAULT.items() if k not in cells}
    for (impact, urgency), priority in missing.items():
        session.add(PriorityCell(impact=impact, urgency=urgency, priority=priority))
    if missing:
        audit.record(
            session=session,
            actor=SEED_ACTOR,
            action="priority_matrix.seed",
            entity_type="priority_matrix",
            entity_id="default",
            after=[[i, u, p] for (i, u), p in sorted(missing.items())],
        )
    await session.flush()
