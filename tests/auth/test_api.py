"""Users, teams, tokens and sessions through the REST API."""

from __future__ import annotations

import pytest

from tests.conftest import People

pytestmark = pytest.mark.anyio


async def test_every_api_route_refuses_an_anonymous_caller_with_problem_json(people: People) -> None:
    for path in ["/api/v1/users", "/api/v1/teams", "/api/v1/tokens", "/api/v1/me"]:
        r = await people.anonymous.get(path)
        assert r.status_code == 401, path
        assert r.headers["content-type"] == "application/problem+json"
        assert "Bearer" in r.json()["detail"]


async def test_a_wrong_token_is_refused(people: People) -> None:
    r = await people.anonymous.get("/api/v1/me", headers={"Authorization": "Bearer tcn_nope"})
    assert r.status_code == 401


async def test_admin_creates_a_user_who_can_then_log_in_with_a_session_and_csrf(people: People) -> None:
    r = await people.admin.client.post(
        "/api/v1/users",
        json={
            "email": "New.Person@Example.com",
            "name": "New Person",
            "role": "responder",
            "password": "a long enough password",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "new.person@example.com"

    anon = people.anonymous
    bad = await anon.post("/api/v1/auth/login", json={"email": "new.person@example.com", "password": "wrong"})
    assert bad.status_code == 401
    ok = await anon.post(
        "/api/v1/auth/login", json={"email": "new.person@example.com", "password": "a long enough password"}
    )
    assert ok.status_code == 200, ok.text
    assert "httponly" in ok.headers["set-cookie"].lower()
    csrf = ok.json()["csrf_token"]
    assert (await anon.get("/api/v1/me")).json()["name"] == "New Person"
    # A write with the cookie but without the CSRF header is refused; with it, accepted.
    no_csrf = await anon.post("/api/v1/tokens", json={"name": "cli"})
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.json()["detail"]
    with_csrf = await anon.post("/api/v1/tokens", json={"name": "cli"}, headers={"X-CSRF-Token": csrf})
    assert with_csrf.status_code == 201
    token = with_csrf.json()["token"]
    assert token.startswith("tcn_")
    me = await people.anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "new.person@example.com"
    await anon.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    anon.cookies.clear()
    assert (await anon.get("/api/v1/me")).status_code == 401


async def test_only_admins_manage_users(people: People) -> None:
    body = {"email": "x@example.com", "name": "X", "role": "admin"}
    for p in (people.manager, people.responder, people.reporter, people.viewer):
        r = await p.client.post("/api/v1/users", json=body)
        assert r.status_code == 403, p.role
    r = await people.responder.client.patch(
        f"/api/v1/users/{people.responder.user_id}", json={"role": "admin"}
    )
    assert r.status_code == 403
    r = await people.responder.client.patch(
        f"/api/v1/users/{people.responder.user_id}", json={"name": "Renamed", "time_zone": "Europe/Paris"}
    )
    assert r.status_code == 200 and r.json()["time_zone"] == "Europe/Paris"


async def test_duplicate_email_and_bad_input_are_clear_4xx(people: People) -> None:
    c = people.admin.client
    dup = await c.post("/api/v1/users", json={"email": "admin@example.com", "name": "A"})
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    unknown = await c.post("/api/v1/users", json={"email": "y@example.com", "name": "Y", "colour": "red"})
    assert unknown.status_code == 422
    assert "colour" in unknown.text and "unknown field" in unknown.json()["detail"]
    zone = await c.post(
        "/api/v1/users", json={"email": "z@example.com", "name": "Z", "time_zone": "Mars/Base"}
    )
    assert zone.status_code == 422 and "IANA" in zone.json()["detail"]
    broken = await c.post("/api/v1/users", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "JSON" in broken.json()["detail"]


async def test_deactivated_users_lose_their_tokens(people: People) -> None:
    r = await people.admin.client.patch(f"/api/v1/users/{people.viewer.user_id}", json={"active": False})
    assert r.status_code == 200
    assert (await people.viewer.client.get("/api/v1/me")).status_code == 401


async def test_revoked_token_stops_working_and_others_cannot_revoke_it(people: People) -> None:
    created = await people.responder.client.post("/api/v1/tokens", json={"name": "ci"})
    tid, raw = created.json()["id"], created.json()["token"]
    assert (await people.viewer.client.delete(f"/api/v1/tokens/{tid}")).status_code == 404
    listed = await people.responder.client.get("/api/v1/tokens")
    assert all("token" not in t for t in listed.json())
    assert (await people.responder.client.delete(f"/api/v1/tokens/{tid}")).json()["revoked_at"]
    r = await people.anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_teams_and_membership(people: People) -> None:
    c = people.manager.client
    team = (await c.post("/api/v1/teams", json={"slug": "db", "name": "Databases"})).json()
    r = await c.put(
        f"/api/v1/teams/{team['id']}/members/{people.responder.user_id}", json={"team_role": "manager"}
    )
    assert r.status_code == 200
    got = (await c.get(f"/api/v1/teams/{team['id']}")).json()
    assert got["members"] == [{"user_id": people.responder.user_id, "team_role": "manager"}]
    assert (
        await people.responder.client.post("/api/v1/teams", json={"slug": "x", "name": "X"})
    ).status_code == 403
    assert (await c.post("/api/v1/teams", json={"slug": "db", "name": "Again"})).status_code == 409
    assert (await c.post("/api/v1/teams", json={"slug": "Bad Slug", "name": "X"})).status_code == 422
    assert (
        await c.delete(f"/api/v1/teams/{team['id']}/members/{people.responder.user_id}")
    ).status_code == 204
    assert (await c.delete(f"/api/v1/teams/{team['id']}")).status_code == 204
    assert (await c.get(f"/api/v1/teams/{team['id']}")).status_code == 404


async def test_oversize_body_is_refused_with_413(people: People) -> None:
    r = await people.admin.client.post(
        "/api/v1/teams", content=b"x" * 70_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["status"] == 413


async def test_health_probes_need_no_auth(people: People) -> None:
    assert (await people.anonymous.get("/healthz")).json() == {"status": "ok"}


async def test_values_no_column_can_hold_are_a_422_not_a_500(people: People) -> None:
    huge = 2**70
    r = await people.admin.client.get(f"/api/v1/users/{huge}")
    assert r.status_code in (404, 422), r.text
    r = await people.admin.client.put(f"/api/v1/teams/{people.team_a}/members/{huge}", json={})
    assert r.status_code in (404, 422) and r.headers["content-type"] == "application/problem+json"
    body = b'{"slug": "surrogates", "name": "bad \\udc00 name"}'  # JSON-escaped unpaired surrogate
    r = await people.admin.client.post(
        "/api/v1/teams", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    teams = (await people.admin.client.get("/api/v1/teams")).json()
    assert "surrogates" not in [t["slug"] for t in teams]  # and nothing half-written
