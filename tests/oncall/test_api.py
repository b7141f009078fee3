"""Schedules, overrides, who is on call, escalation policies and calendar feeds through the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from icalendar import Calendar

from tests.conftest import People
from tocsin.audit import service as audit
from tocsin.db import Database

pytestmark = pytest.mark.anyio

V1 = "/api/v1"
# "Now" for these tests: Friday 2025-03-28, two days before Europe/Paris springs forward.
NOW = datetime(2025, 3, 28, 12, tzinfo=UTC)


def paris(day: int, hour: int, minute: int = 0, month: int = 3) -> str:
    """An instant on the Paris wall clock in spring 2025 (CET until 30 March 02:00, CEST after)."""
    offset = "+02:00" if (month, day, hour) >= (3, 30, 3) else "+01:00"
    return f"2025-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00{offset}"


async def build_primary(people: People, name: str = "Primary") -> dict[str, Any]:
    """Team A's schedule: responder and other responder alternate daily at 09:00 Paris time; the admin covers
    weekday office hours on top."""
    c = people.manager.client
    r = await c.post(
        f"{V1}/schedules",
        json={
            "name": name,
            "time_zone": "Europe/Paris",
            "team_id": people.team_a,
            "description": "database on-call",
        },
    )
    assert r.status_code == 201, r.text
    schedule = r.json()
    r = await c.post(
        f"{V1}/schedules/{schedule['id']}/layers",
        json={
            "name": "24x7",
            "participants": [people.responder.user_id, people.other_responder.user_id],
            "rotation_start": "2025-03-24T09:00",
            "shift_length": 1,
            "shift_unit": "days",
        },
    )
    assert r.status_code == 201, r.text
    r = await c.post(
        f"{V1}/schedules/{schedule['id']}/layers",
        json={
            "name": "office",
            "participants": [people.admin.user_id],
            "rotation_start": "2025-03-24T00:00",
            "restrictions": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
        },
    )
    assert r.status_code == 201, r.text
    return (await c.get(f"{V1}/schedules/{schedule['id']}")).json()  # type: ignore[no-any-return]


async def on_call(client: httpx.AsyncClient, schedule_id: int, at: str) -> dict[str, Any]:
    r = await client.get(f"{V1}/schedules/{schedule_id}/on-call", params={"at": at})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_manager_builds_a_schedule_and_anyone_who_reads_sees_who_is_on_call_and_why(
    people: People, db: Database
) -> None:
    schedule = await build_primary(people)
    assert [(la["position"], la["name"]) for la in schedule["layers"]] == [(0, "24x7"), (1, "office")]
    assert schedule["layers"][1]["restrictions"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    ]
    sid, c = schedule["id"], people.viewer.client
    sunday = await on_call(c, sid, paris(30, 10))
    assert sunday["user"]["id"] == people.responder.user_id
    assert sunday["source"] == {"kind": "layer", "id": schedule["layers"][0]["id"], "name": "24x7"}
    assert sunday["until"] == "2025-03-31T07:00:00Z"  # Monday 09:00 CEST
    monday = await on_call(c, sid, paris(31, 10))
    assert (monday["user"]["name"], monday["source"]["name"]) == ("Admin", "office")
    assert (await on_call(c, sid, paris(31, 18)))["user"]["id"] == people.other_responder.user_id
    # The Saturday shift runs 23 hours: the clocks spring forward during it.
    r = await c.get(f"{V1}/schedules/{sid}/shifts", params={"start": paris(29, 9), "end": paris(31, 9)})
    assert [(s["user_id"], s["start"], s["end"]) for s in r.json()] == [
        (people.other_responder.user_id, "2025-03-29T08:00:00Z", "2025-03-30T07:00:00Z"),
        (people.responder.user_id, "2025-03-30T07:00:00Z", "2025-03-31T07:00:00Z"),
    ]
    async with db.read() as s:
        actions = [
            e.action for e in await audit.entries_for(session=s, entity_type="schedule", entity_id=sid)
        ]
    assert sorted(actions) == ["schedule.create", "schedule.layer.create", "schedule.layer.create"]


async def test_shift_queries_are_capped_at_90_days_and_need_an_offset(people: People) -> None:
    sid = (await build_primary(people))["id"]
    c = people.responder.client
    long = await c.get(
        f"{V1}/schedules/{sid}/shifts", params={"start": paris(1, 0), "end": paris(30, 0, month=6)}
    )
    assert long.status_code == 422 and "90 days" in long.json()["detail"]
    assert long.headers["content-type"] == "application/problem+json"
    naive = await c.get(
        f"{V1}/schedules/{sid}/shifts", params={"start": "2025-03-01T00:00", "end": paris(2, 0)}
    )
    assert naive.status_code == 422 and "timezone" in naive.json()["detail"]
    backwards = await c.get(f"{V1}/schedules/{sid}/shifts", params={"start": paris(3, 0), "end": paris(2, 0)})
    assert backwards.status_code == 422 and "after start" in backwards.json()["detail"]
    assert (await c.get(f"{V1}/schedules/999/on-call")).status_code == 404


async def test_a_responder_covers_a_shift_themselves_but_may_not_put_anyone_else_on_call(
    people: People,
) -> None:
    with time_machine.travel(NOW, tick=True):
        sid = (await build_primary(people))["id"]
        body = {"starts_at": paris(31, 12), "ends_at": paris(31, 14), "reason": "swap with the office"}
        mine = await people.responder.client.post(f"{V1}/schedules/{sid}/overrides", json=body)
        assert mine.status_code == 201, mine.text
        assert mine.json()["user_id"] == mine.json()["created_by"] == people.responder.user_id
        covered = await on_call(people.viewer.client, sid, paris(31, 13))
        assert covered["user"]["id"] == people.responder.user_id
        assert covered["source"] == {"kind": "override", "id": mine.json()["id"], "name": "override"}
        assert covered["until"] == "2025-03-31T12:00:00Z"

        someone_else = {**body, "user_id": people.other_responder.user_id}
        r = await people.responder.client.post(f"{V1}/schedules/{sid}/overrides", json=someone_else)
        assert r.status_code == 403 and "themselves" in r.json()["detail"]
        r = await people.other_responder.client.post(f"{V1}/schedules/{sid}/overrides", json=body)
        assert r.status_code == 403, "team B's responder may not cover team A's schedule"
        assert (
            await people.viewer.client.post(f"{V1}/schedules/{sid}/overrides", json=body)
        ).status_code == 403
        managed = await people.manager.client.post(f"{V1}/schedules/{sid}/overrides", json=someone_else)
        assert managed.status_code == 201

        listed = await people.viewer.client.get(f"{V1}/schedules/{sid}/overrides")
        assert [o["user_id"] for o in listed.json()] == [
            people.responder.user_id,
            people.other_responder.user_id,
        ]
        oid = mine.json()["id"]
        assert (
            await people.other_responder.client.delete(f"{V1}/schedules/{sid}/overrides/{oid}")
        ).status_code == 403
        assert (
            await people.responder.client.delete(f"{V1}/schedules/{sid}/overrides/{oid}")
        ).status_code == 204
        past = {"starts_at": paris(1, 0), "ends_at": paris(2, 0)}
        r = await people.responder.client.post(f"{V1}/schedules/{sid}/overrides", json=past)
        assert r.status_code == 422 and "already be over" in r.json()["detail"]


async def test_viewers_read_but_cannot_write_and_reporters_cannot_read(people: People) -> None:
    sid = (await build_primary(people))["id"]
    v = people.viewer.client
    assert (await v.get(f"{V1}/schedules")).status_code == 200
    assert (await v.post(f"{V1}/schedules", json={"name": "Mine"})).status_code == 403
    assert (await v.patch(f"{V1}/schedules/{sid}", json={"name": "Renamed"})).status_code == 403
    layer = {"name": "x", "participants": [people.viewer.user_id], "rotation_start": "2025-03-24T09:00"}
    assert (await v.post(f"{V1}/schedules/{sid}/layers", json=layer)).status_code == 403
    policy = {"name": "P", "steps": [{"delay_minutes": 5, "targets": [{"kind": "schedule", "id": sid}]}]}
    assert (await v.post(f"{V1}/escalation-policies", json=policy)).status_code == 403
    assert (await v.post(f"{V1}/schedules/{sid}/feed-token")).status_code == 403
    assert (await v.delete(f"{V1}/schedules/{sid}")).status_code == 403
    assert (await people.responder.client.post(f"{V1}/schedules", json={"name": "Mine"})).status_code == 403
    assert (await people.reporter.client.get(f"{V1}/on-call")).status_code == 403


async def test_a_team_manager_edits_their_own_team_schedules_only(people: People) -> None:
    sid = (await build_primary(people))["id"]
    r = await people.admin.client.put(
        f"{V1}/teams/{people.team_a}/members/{people.responder.user_id}", json={"team_role": "manager"}
    )
    assert r.status_code == 200
    lead = people.responder.client
    assert (await lead.patch(f"{V1}/schedules/{sid}", json={"description": "ours"})).status_code == 200
    r = await lead.post(f"{V1}/schedules", json={"name": "B's", "team_id": people.team_b})
    assert r.status_code == 403
    r = await lead.patch(f"{V1}/schedules/{sid}", json={"team_id": people.team_b})
    assert r.status_code == 403 and "moving it to" in r.json()["detail"]


async def test_layers_can_be_changed_reordered_and_removed(people: People) -> None:
    schedule = await build_primary(people)
    sid, (always, office) = schedule["id"], schedule["layers"]
    c = people.manager.client
    r = await c.patch(
        f"{V1}/schedules/{sid}/layers/{office['id']}",
        json={"position": 0, "time_zone": "America/New_York", "participants": [people.viewer.user_id]},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["position"], r.json()["time_zone"], r.json()["participants"]) == (
        0,
        "America/New_York",
        [people.viewer.user_id],
    )
    layers = (await c.get(f"{V1}/schedules/{sid}/layers")).json()
    assert [la["name"] for la in layers] == ["office", "24x7"]
    # The 24x7 layer is now on top, so it answers even in office hours.
    assert (await on_call(c, sid, paris(31, 10)))["source"]["name"] == "24x7"
    r = await c.patch(f"{V1}/schedules/{sid}/layers/{office['id']}", json={"time_zone": None})
    assert r.json()["time_zone"] is None
    assert (await c.delete(f"{V1}/schedules/{sid}/layers/{always['id']}")).status_code == 204
    assert [la["position"] for la in (await c.get(f"{V1}/schedules/{sid}/layers")).json()] == [0]
    assert (await c.delete(f"{V1}/schedules/{sid}/layers/{always['id']}")).status_code == 404


async def test_bad_zones_references_and_times_are_refused_with_clear_4xx(people: People) -> None:
    c = people.manager.client
    sid = (await build_primary(people))["id"]
    zone = await c.post(f"{V1}/schedules", json={"name": "Z", "time_zone": "Mars/Olympus_Mons"})
    assert zone.status_code == 422 and "IANA" in zone.json()["detail"]
    assert (await c.post(f"{V1}/schedules", json={"name": "Primary"})).status_code == 409
    team = await c.post(f"{V1}/schedules", json={"name": "T", "team_id": 9999})
    assert team.status_code == 422 and "no team" in team.json()["detail"]
    base = {"name": "L", "participants": [people.responder.user_id], "rotation_start": "2025-03-24T09:00"}
    ghost = await c.post(f"{V1}/schedules/{sid}/layers", json={**base, "participants": [9999]})
    assert ghost.status_code == 422 and "no user with id 9999" in ghost.json()["detail"]
    offset = await c.post(
        f"{V1}/schedules/{sid}/layers", json={**base, "rotation_start": "2025-03-24T09:00Z"}
    )
    assert offset.status_code == 422
    window = {"days": ["mon"], "start": "09:00:30", "end": "17:00"}
    seconds = await c.post(f"{V1}/schedules/{sid}/layers", json={**base, "restrictions": [window]})
    assert seconds.status_code == 422 and "HH:MM" in seconds.json()["detail"]
    backwards = await c.post(
        f"{V1}/schedules/{sid}/overrides", json={"starts_at": paris(31, 14), "ends_at": paris(31, 12)}
    )
    assert backwards.status_code == 422 and "after starts_at" in backwards.json()["detail"]
    assert (await c.get(f"{V1}/schedules/999")).json()["status"] == 404


async def test_escalation_policies_keep_ordered_steps_and_protect_the_schedules_they_page(
    people: People,
) -> None:
    c = people.manager.client
    sid = (await build_primary(people))["id"]
    body = {
        "name": "Databases",
        "team_id": people.team_a,
        "repeat_count": 2,
        "steps": [
            {"delay_minutes": 10, "targets": [{"kind": "schedule", "id": sid}]},
            {
                "delay_minutes": 15,
                "targets": [
                    {"kind": "user", "id": people.manager.user_id},
                    {"kind": "team", "id": people.team_a},
                ],
            },
        ],
    }
    r = await c.post(f"{V1}/escalation-policies", json=body)
    assert r.status_code == 201, r.text
    policy = r.json()
    assert [(s["position"], s["delay_minutes"], s["targets"]) for s in policy["steps"]] == [
        (0, 10, [{"kind": "schedule", "id": sid}]),
        (1, 15, [{"kind": "user", "id": people.manager.user_id}, {"kind": "team", "id": people.team_a}]),
    ]
    assert (await c.post(f"{V1}/escalation-policies", json=body)).status_code == 409
    missing = {
        **body,
        "name": "Other",
        "steps": [{"delay_minutes": 5, "targets": [{"kind": "schedule", "id": 999}]}],
    }
    r = await c.post(f"{V1}/escalation-policies", json=missing)
    assert r.status_code == 422 and "steps.0.targets.0" in r.json()["detail"]

    used = await c.delete(f"{V1}/schedules/{sid}")
    assert used.status_code == 409 and used.json()["policies"] == ["Databases"]
    r = await c.patch(
        f"{V1}/escalation-policies/{policy['id']}",
        json={"steps": [{"delay_minutes": 0, "targets": [{"kind": "user", "id": people.responder.user_id}]}]},
    )
    assert r.status_code == 200 and len(r.json()["steps"]) == 1 and r.json()["repeat_count"] == 2
    assert (await people.viewer.client.get(f"{V1}/escalation-policies/{policy['id']}")).status_code == 200
    assert (await c.delete(f"{V1}/schedules/{sid}")).status_code == 204
    assert (await c.delete(f"{V1}/escalation-policies/{policy['id']}")).status_code == 204
    assert (await c.get(f"{V1}/escalation-policies")).json() == []


async def test_on_call_now_answers_for_every_schedule_including_those_with_nobody(people: People) -> None:
    await build_primary(people)
    empty = await people.manager.client.post(f"{V1}/schedules", json={"name": "Empty"})
    with time_machine.travel(datetime(2025, 3, 31, 8, tzinfo=UTC), tick=True):  # Monday 10:00 CEST
        r = await people.responder.client.get(f"{V1}/on-call")
    assert r.status_code == 200
    by_name = {e["schedule_name"]: e for e in r.json()}
    assert by_name["Empty"]["user"] is None and by_name["Empty"]["schedule_id"] == empty.json()["id"]
    assert by_name["Primary"]["user"]["id"] == people.admin.user_id
    assert by_name["Primary"]["until"] == "2025-03-31T15:00:00Z"


def parse_feed(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    body = response.content
    assert b"\n" not in body.replace(b"\r\n", b""), "every line ends in CRLF"
    assert max(len(line) for line in body.split(b"\r\n")) <= 75, "long lines are folded"
    calendar = Calendar.from_ical(body)
    assert str(calendar["VERSION"]) == "2.0" and "Tocsin" in str(calendar["PRODID"])
    events: list[Any] = calendar.walk("VEVENT")
    return events


async def test_a_schedule_feed_is_read_by_its_secret_alone_with_stable_uids(people: People) -> None:
    long_name = (
        "Primary database on-call for the payments platform, Europe and the Americas, every day of the year"
    )
    sid = (await build_primary(people, name=long_name))["id"]
    issued = await people.manager.client.post(f"{V1}/schedules/{sid}/feed-token")
    assert issued.status_code == 201
    path = httpx.URL(issued.json()["url"]).path
    assert path.startswith(f"{V1}/ical/schedules/tcf_") and path.endswith(".ics")

    with time_machine.travel(NOW, tick=True):
        morning = parse_feed(await people.anonymous.get(path))
    with time_machine.travel(NOW + timedelta(hours=8), tick=True):
        evening = parse_feed(await people.anonymous.get(path))
    assert [str(e["UID"]) for e in morning] == [str(e["UID"]) for e in evening]
    assert len({str(e["UID"]) for e in morning}) == len(morning) > 100
    first = morning[0]
    assert str(first["SUMMARY"]).startswith(f"On call: {long_name} (")
    assert first.decoded("DTSTART").utcoffset() == timedelta(0)

    with time_machine.travel(NOW + timedelta(days=1), tick=True):
        next_day = parse_feed(await people.anonymous.get(path))
    earlier = {str(e["UID"]): e.decoded("DTSTART") for e in morning}
    overlap = [e for e in next_day[1:] if e.decoded("DTSTART") < morning[-1].decoded("DTSTART")]
    assert overlap and all(earlier[str(e["UID"])] == e.decoded("DTSTART") for e in overlap)

    wrong = await people.anonymous.get(f"{V1}/ical/schedules/tcf_not-the-secret.ics")
    assert wrong.status_code == 404
    rotated = httpx.URL(
        (await people.manager.client.post(f"{V1}/schedules/{sid}/feed-token")).json()["url"]
    ).path
    assert (await people.anonymous.get(path)).status_code == 404, "rotating retires the old address"
    assert (await people.anonymous.get(rotated)).status_code == 200
    assert (await people.anonymous.get(rotated.replace("/schedules/", "/users/"))).status_code == 404


async def test_a_personal_feed_holds_only_my_own_shifts(people: People) -> None:
    await build_primary(people)
    issued = await people.responder.client.post(f"{V1}/users/me/feed-token")
    assert issued.status_code == 201
    with time_machine.travel(NOW, tick=True):
        mine = parse_feed(await people.anonymous.get(httpx.URL(issued.json()["url"]).path))
        shifts = await people.responder.client.get(
            f"{V1}/schedules/{(await people.responder.client.get(f'{V1}/schedules')).json()[0]['id']}/shifts",
            params={"start": paris(28, 9), "end": paris(4, 9, month=4)},
        )
    expected = [s["start"] for s in shifts.json() if s["user_id"] == people.responder.user_id]
    got = [
        e.decoded("DTSTART")
        for e in mine
        if datetime(2025, 3, 28, 8, tzinfo=UTC) <= e.decoded("DTSTART") < datetime(2025, 4, 4, 7, tzinfo=UTC)
    ]
    assert [d.strftime("%Y-%m-%dT%H:%M:%SZ") for d in got] == expected
    assert {str(e["SUMMARY"]) for e in mine} == {"On call: Primary"}
