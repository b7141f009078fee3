"""Services, business areas, components, assets, dependencies and impact through the REST API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import People
from tocsin.audit.models import AuditEntry
from tocsin.db import Database

pytestmark = pytest.mark.anyio

V1 = "/api/v1"


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(V1 + path, json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def make_service(people: People, slug: str, **extra: Any) -> dict[str, Any]:
    return await post(people.manager.client, "/services", {"slug": slug, "name": slug.title(), **extra})


async def link(people: People, item: tuple[str, Any], depends_on: tuple[str, Any]) -> httpx.Response:
    return await people.manager.client.post(
        V1 + "/dependencies",
        json={
            "item": {"kind": item[0], "id": item[1]},
            "depends_on": {"kind": depends_on[0], "id": depends_on[1]},
        },
    )


async def test_a_manager_creates_a_service_that_every_signed_in_role_can_read(people: People) -> None:
    created = await make_service(
        people,
        "checkout",
        owner_team_id=people.team_a,
        tier=1,
        runbook_url="https://wiki.example.com/runbooks/checkout",
    )
    assert created["tier"] == 1 and created["active"] is True and created["updated_at"]
    for person in (people.reporter, people.viewer, people.responder):
        listed = await person.client.get(V1 + "/services")
        assert listed.status_code == 200
        assert [s["slug"] for s in listed.json()["items"]] == ["checkout"]
    by_slug = await people.reporter.client.get(V1 + "/services/checkout")
    by_id = await people.reporter.client.get(f"{V1}/services/{created['id']}")
    assert by_slug.json() == by_id.json() == created
    assert (await people.anonymous.get(V1 + "/services")).status_code == 401


async def test_only_admins_and_managers_may_change_the_catalog(people: People) -> None:
    service = await make_service(people, "payments")
    writes = [
        ("post", "/services", {"slug": "x", "name": "X"}),
        ("patch", f"/services/{service['id']}", {"name": "Renamed"}),
        ("delete", f"/services/{service['id']}", None),
        ("post", "/business-areas", {"name": "Retail"}),
        ("post", "/components", {"name": "db"}),
        ("post", "/assets", {"tag": "SRV-1", "name": "Box", "kind": "server"}),
        (
            "post",
            "/dependencies",
            {
                "item": {"kind": "service", "id": "payments"},
                "depends_on": {"kind": "service", "id": "payments"},
            },
        ),
    ]
    for person in (people.responder, people.reporter, people.viewer):
        for method, path, body in writes:
            kwargs = {"json": body} if body is not None else {}
            r = await person.client.request(method.upper(), V1 + path, **kwargs)
            assert r.status_code == 403, (person.role, method, path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "may not manage catalog" in r.json()["detail"]
    r = await people.admin.client.patch(f"{V1}/services/{service['id']}", json={"name": "Payments API"})
    assert r.status_code == 200 and r.json()["name"] == "Payments API"


async def test_duplicates_are_409_and_bad_input_is_422_with_a_message_saying_what_to_change(
    people: People,
) -> None:
    c = people.manager.client
    await make_service(people, "search")
    dup = await c.post(V1 + "/services", json={"slug": "search", "name": "Again"})
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    cases = [
        ({"slug": "s1", "name": "S", "colour": "red"}, "unknown field"),
        ({"slug": "Bad Slug", "name": "S"}, "^[a-z0-9][a-z0-9-]*$"),
        ({"slug": "1234", "name": "S"}, "all digits"),
        ({"slug": "s2", "name": "S", "tier": 0}, "1 (most critical) to 4"),
        ({"slug": "s3", "name": "S", "tier": 5}, "1 (most critical) to 4"),
        ({"slug": "s4", "name": "S", "runbook_url": "ftp://files.example.com/rb"}, "http"),
        ({"slug": "s5", "name": "S", "runbook_url": "not a url"}, "http"),
        ({"slug": "s6", "name": ""}, "name"),
    ]
    for body, hint in cases:
        r = await c.post(V1 + "/services", json=body)
        assert r.status_code == 422, (body, r.text)
        assert hint in r.json()["detail"], (body, r.json()["detail"])
    no_team = await c.post(V1 + "/services", json={"slug": "s7", "name": "S", "owner_team_id": 999_999})
    assert no_team.status_code == 422 and "owner_team_id: no team with id 999999" in no_team.json()["detail"]
    no_area = await c.post(V1 + "/services", json={"slug": "s8", "name": "S", "business_area_id": 999_999})
    assert no_area.status_code == 422 and "business_area_id" in no_area.json()["detail"]
    null_name = await c.patch(V1 + "/services/search", json={"name": None})
    assert null_name.status_code == 422 and "omit the field" in null_name.json()["detail"]
    assert (await c.get(V1 + "/services/nope")).status_code == 404
    assert "no service with slug 'nope'" in (await c.get(V1 + "/services/nope")).json()["detail"]
    assert (await c.get(V1 + "/services/424242")).status_code == 404


async def test_patch_changes_only_what_it_names_clears_nullable_fields_and_archives(people: People) -> None:
    c = people.manager.client
    area = await post(c, "/business-areas", {"name": "Retail", "owner_user_id": people.manager.user_id})
    svc = await make_service(
        people,
        "cart",
        owner_team_id=people.team_a,
        business_area_id=area["id"],
        runbook_url="http://runbooks.example.com/cart",
    )
    r = await c.patch(V1 + "/services/cart", json={"owner_team_id": None, "runbook_url": None, "tier": 2})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["owner_team_id"], got["runbook_url"], got["tier"]) == (None, None, 2)
    assert got["business_area_id"] == area["id"] and got["name"] == svc["name"]
    assert (await c.patch(V1 + "/services/cart", json={"slug": "basket"})).json()["slug"] == "basket"
    await make_service(people, "till")
    assert (await c.patch(V1 + "/services/basket", json={"slug": "till"})).status_code == 409
    assert (await c.patch(V1 + "/services/basket", json={"active": False})).json()["active"] is False
    picker = (await people.reporter.client.get(V1 + "/services")).json()["items"]
    assert [s["slug"] for s in picker] == ["till"]
    everything = await people.reporter.client.get(V1 + "/services", params={"include_archived": "true"})
    assert {s["slug"] for s in everything.json()["items"]} == {"basket", "till"}


async def test_service_list_filters_and_pages_with_a_cursor(people: People) -> None:
    c = people.manager.client
    area = await post(c, "/business-areas", {"name": "Payments"})
    for i, slug in enumerate(["alpha", "bravo", "charlie", "delta", "echo"]):
        await make_service(
            people,
            slug,
            tier=1 + i % 4,
            owner_team_id=people.team_a if i % 2 else people.team_b,
            business_area_id=area["id"] if slug in ("alpha", "echo") else None,
            description="handles 100% of card_auth" if slug == "delta" else "",
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await people.viewer.client.get(V1 + "/services", params=params)).json()
        seen += [s["slug"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["alpha", "bravo", "charlie", "delta", "echo"]

    async def slugs(**params: Any) -> list[str]:
        r = await people.viewer.client.get(V1 + "/services", params=params)
        assert r.status_code == 200, r.text
        return [s["slug"] for s in r.json()["items"]]

    assert await slugs(owner_team_id=people.team_a) == ["bravo", "delta"]
    assert await slugs(business_area_id=area["id"]) == ["alpha", "echo"]
    assert await slugs(tier=1) == ["alpha", "echo"]
    assert await slugs(q="ARL") == ["charlie"]
    assert await slugs(q="100%") == ["delta"]
    assert await slugs(q="card_auth") == ["delta"]
    assert await slugs(q="_") == ["delta"]  # % and _ are literal, not wildcards
    bad = await people.viewer.client.get(V1 + "/services", params={"cursor": "garbage"})
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]


async def test_business_areas_group_services_and_cannot_be_deleted_while_used(people: People) -> None:
    c = people.manager.client
    area = await post(c, "/business-areas", {"name": "Logistics", "description": "Trucks and depots"})
    assert (await c.post(V1 + "/business-areas", json={"name": "logistics"})).status_code == 409
    bad_owner = await c.post(V1 + "/business-areas", json={"name": "X", "owner_user_id": 999_999})
    assert bad_owner.status_code == 422
    await make_service(people, "dispatch", business_area_id=area["id"])
    refused = await c.delete(f"{V1}/business-areas/{area['id']}")
    assert refused.status_code == 409 and "1 service(s)" in refused.json()["detail"]
    await c.patch(V1 + "/services/dispatch", json={"business_area_id": None})
    renamed = await c.patch(f"{V1}/business-areas/{area['id']}", json={"owner_user_id": people.admin.user_id})
    assert renamed.json()["owner_user_id"] == people.admin.user_id
    listed = (await people.reporter.client.get(V1 + "/business-areas", params={"q": "depot"})).json()
    assert [a["name"] for a in listed["items"]] == ["Logistics"]
    assert (await c.delete(f"{V1}/business-areas/{area['id']}")).status_code == 204
    assert (await c.get(f"{V1}/business-areas/{area['id']}")).status_code == 404


async def test_components_belong_to_a_service_which_cannot_be_deleted_under_them(people: People) -> None:
    c = people.manager.client
    svc = await make_service(people, "orders")
    db = await post(c, "/components", {"name": "orders-db", "service_id": svc["id"]})
    assert (
        await c.post(V1 + "/components", json={"name": "orders-db", "service_id": svc["id"]})
    ).status_code == 409
    shared = await post(c, "/components", {"name": "orders-db"})  # same name, no service: a different one
    assert (await c.post(V1 + "/components", json={"name": "orders-db"})).status_code == 409
    assert (await c.post(V1 + "/components", json={"name": "q", "service_id": 999_999})).status_code == 422
    mine = (await c.get(V1 + "/components", params={"service_id": svc["id"]})).json()["items"]
    assert [m["id"] for m in mine] == [db["id"]]
    refused = await c.delete(f"{V1}/services/{svc['id']}")
    assert refused.status_code == 409 and "1 component(s)" in refused.json()["detail"]
    assert "archive" in refused.json()["detail"]
    moved = await c.patch(f"{V1}/components/{db['id']}", json={"service_id": None, "name": "legacy-db"})
    assert moved.json()["service_id"] is None
    assert (await c.delete(f"{V1}/components/{shared['id']}")).status_code == 204
    assert (await c.delete(f"{V1}/services/{svc['id']}")).status_code == 204


async def test_assets_have_unique_upper_case_tags_and_retire_instead_of_disappearing(people: People) -> None:
    c = people.manager.client
    forklift = await post(
        c,
        "/assets",
        {
            "tag": "flt-007",
            "name": "Forklift 7",
            "kind": "vehicle",
            "location": "Depot 2",
            "owner_team_id": people.team_b,
            "serial": "TY-88231",
        },
    )
    assert forklift["tag"] == "FLT-007" and forklift["status"] == "active"
    dup = await c.post(V1 + "/assets", json={"tag": "FLT-007", "name": "Again", "kind": "vehicle"})
    assert dup.status_code == 409 and "FLT-007" in dup.json()["detail"]
    assert (
        await c.post(V1 + "/assets", json={"tag": "X", "name": "Y", "kind": "spaceship"})
    ).status_code == 422
    assert (
        await c.post(V1 + "/assets", json={"tag": "a b", "name": "Y", "kind": "other"})
    ).status_code == 422
    await post(c, "/assets", {"tag": "SRV-1", "name": "db host", "kind": "server"})
    vehicles = (await people.viewer.client.get(V1 + "/assets", params={"kind": "vehicle"})).json()["items"]
    assert [a["tag"] for a in vehicles] == ["FLT-007"]
    assert [a["tag"] for a in (await c.get(V1 + "/assets", params={"q": "depot"})).json()["items"]] == [
        "FLT-007"
    ]
    retired = await c.patch(f"{V1}/assets/{forklift['id']}", json={"status": "retired", "serial": None})
    assert retired.json()["status"] == "retired" and retired.json()["serial"] is None
    active = (await c.get(V1 + "/assets", params={"status": "active"})).json()["items"]
    assert [a["tag"] for a in active] == ["SRV-1"]
    assert (await c.delete(f"{V1}/assets/{forklift['id']}")).status_code == 204


async def test_dependencies_refuse_self_links_duplicates_and_cycles(people: People) -> None:
    web, api = await make_service(people, "web"), await make_service(people, "api")
    await make_service(people, "auth")
    disk = await post(people.manager.client, "/assets", {"tag": "SAN-1", "name": "SAN", "kind": "server"})
    first = await link(people, ("service", "web"), ("service", "api"))
    assert first.status_code == 201, first.text
    assert first.json()["item"]["key"] == "web" and first.json()["depends_on"]["id"] == api["id"]
    assert (await link(people, ("service", "api"), ("service", "auth"))).status_code == 201
    assert (await link(people, ("service", "auth"), ("asset", "san-1"))).status_code == 201

    itself = await link(people, ("service", "web"), ("service", web["id"]))
    assert itself.status_code == 422 and "itself" in itself.json()["detail"]
    again = await link(people, ("service", web["id"]), ("service", "api"))
    assert again.status_code == 409 and "already depends on" in again.json()["detail"]
    loop = await link(people, ("asset", disk["id"]), ("service", "web"))
    assert loop.status_code == 409
    assert loop.json()["detail"].startswith(
        "this dependency would close a cycle: asset 'SAN' -> service 'Web'"
    )
    assert "service 'Auth' -> asset 'SAN'" in loop.json()["detail"]
    missing = await link(people, ("service", "web"), ("component", 999_999))
    assert missing.status_code == 404
    no_key = await link(people, ("service", "web"), ("component", "by-name"))
    assert no_key.status_code == 422 and "numeric id" in no_key.json()["detail"]

    touching = await people.viewer.client.get(V1 + "/dependencies", params={"kind": "service", "id": "api"})
    assert len(touching.json()["items"]) == 2
    assert (
        await people.viewer.client.get(V1 + "/dependencies", params={"kind": "service"})
    ).status_code == 422
    r = await people.manager.client.delete(f"{V1}/dependencies/{first.json()['id']}")
    assert r.status_code == 204
    assert (await people.manager.client.get(f"{V1}/dependencies/{first.json()['id']}")).status_code == 404
    assert (await link(people, ("asset", disk["id"]), ("service", "web"))).status_code == 201


async def test_impact_is_the_transitive_set_of_what_breaks_with_areas_and_worst_tier(people: People) -> None:
    c = people.manager.client
    retail = await post(c, "/business-areas", {"name": "Retail"})
    finance = await post(c, "/business-areas", {"name": "Finance"})
    await make_service(people, "shop", tier=1, business_area_id=retail["id"])
    await make_service(people, "ledger", tier=2, business_area_id=finance["id"])
    api = await make_service(people, "api", tier=3)
    await make_service(people, "unrelated", tier=1)
    db = await post(c, "/components", {"name": "api-db", "service_id": api["id"]})  # api depends on it
    host = await post(c, "/assets", {"tag": "DB-HOST-1", "name": "db host", "kind": "server"})
    for item, needs in [
        (("service", "shop"), ("service", "api")),
        (("service", "ledger"), ("service", "api")),
        (("service", "shop"), ("service", "ledger")),
        (("component", db["id"]), ("asset", "DB-HOST-1")),
    ]:
        assert (await link(people, item, needs)).status_code == 201

    r = await people.reporter.client.get(f"{V1}/assets/{host['id']}/impact")
    assert r.status_code == 200, r.text
    impact = r.json()
    hit = [(i["kind"], i["name"], i["distance"]) for i in impact["impacted"]]
    assert hit == [
        ("component", "api-db", 1),
        ("service", "Api", 2),
        ("service", "Ledger", 3),
        ("service", "Shop", 3),
    ]
    assert impact["depends_on"] == []
    assert [a["name"] for a in impact["business_areas"]] == ["Finance", "Retail"]
    assert impact["most_critical_tier"] == 1

    shop = (await c.get(V1 + "/services/shop/impact")).json()
    assert shop["impacted"] == [] and shop["most_critical_tier"] == 1
    assert [(i["key"], i["distance"]) for i in shop["depends_on"]] == [
        ("api", 1),
        ("ledger", 1),
        (None, 2),
        ("DB-HOST-1", 3),
    ]
    ledger = (await c.get(V1 + "/services/ledger/impact")).json()
    assert [i["key"] for i in ledger["impacted"]] == ["shop"]
    assert [a["name"] for a in ledger["business_areas"]] == ["Finance", "Retail"]
    component = (await c.get(f"{V1}/components/{db['id']}/impact")).json()
    assert [i["key"] for i in component["impacted"]] == ["api", "ledger", "shop"]
    assert (await c.get(V1 + "/services/ghost/impact")).status_code == 404


async def test_items_with_dependency_links_cannot_be_deleted_until_unlinked(people: People) -> None:
    c = people.manager.client
    await make_service(people, "front")
    box = await post(c, "/assets", {"tag": "BOX-1", "name": "box", "kind": "server"})
    dep = (await link(people, ("service", "front"), ("asset", box["id"]))).json()
    refused = await c.delete(f"{V1}/assets/{box['id']}")
    assert refused.status_code == 409
    assert "1 dependency link(s)" in refused.json()["detail"] and "retire" in refused.json()["detail"]
    assert (await c.delete(V1 + "/services/front")).status_code == 409
    await c.delete(f"{V1}/dependencies/{dep['id']}")
    assert (await c.delete(f"{V1}/assets/{box['id']}")).status_code == 204
    assert (await c.delete(V1 + "/services/front")).status_code == 204


async def test_every_catalog_write_lands_in_the_audit_log(people: People, db: Database) -> None:
    c = people.manager.client
    area = await post(c, "/business-areas", {"name": "Ops"})
    await c.patch(f"{V1}/business-areas/{area['id']}", json={"description": "Operations"})
    svc = await make_service(people, "audited", business_area_id=area["id"])
    await c.patch(V1 + "/services/audited", json={"tier": 1})
    await c.patch(V1 + "/services/audited", json={"tier": 1})  # a no-op records nothing
    comp = await post(c, "/components", {"name": "cache", "service_id": svc["id"]})
    await c.patch(f"{V1}/components/{comp['id']}", json={"description": "redis"})
    asset = await post(c, "/assets", {"tag": "A-1", "name": "a", "kind": "other"})
    await c.patch(f"{V1}/assets/{asset['id']}", json={"location": "Rack 4"})
    dep = (await link(people, ("component", comp["id"]), ("asset", "A-1"))).json()
    for path in [
        f"/dependencies/{dep['id']}",
        f"/components/{comp['id']}",
        f"/assets/{asset['id']}",
        "/services/audited",
        f"/business-areas/{area['id']}",
    ]:
        assert (await c.delete(V1 + path)).status_code == 204, path

    async with db.read() as s:
        rows = list(
            await s.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.entity_type.in_(
                        ["business_area", "service", "component", "asset", "catalog_dependency"]
                    )
                )
                .order_by(AuditEntry.seq)
            )
        )
    assert [r.action for r in rows] == [
        "business_area.create",
        "business_area.update",
        "service.create",
        "service.update",
        "component.create",
        "component.update",
        "asset.create",
        "asset.update",
        "dependency.add",
        "dependency.remove",
        "component.delete",
        "asset.delete",
        "service.delete",
        "business_area.delete",
    ]
    assert {r.actor.split("/")[1] for r in rows} == {f"user:{people.manager.user_id}"}
    update = rows[3]
    assert (update.before["tier"], update.after["tier"]) == (3, 1)
    assert rows[8].after == {
        "item": f"component:{comp['id']}",
        "depends_on": f"asset:{asset['id']}",
        "note": "",
    }
    assert rows[-2].before["slug"] == "audited" and rows[-2].after is None


async def test_a_malformed_asset_tag_in_a_dependency_is_a_404_not_a_500(people: People) -> None:
    r = await people.manager.client.post(
        "/api/v1/dependencies",
        json={"item": {"kind": "asset", "id": ""}, "depends_on": {"kind": "asset", "id": 1}},
    )
    assert r.status_code == 404
    r = await people.manager.client.get("/api/v1/dependencies", params={"kind": "asset", "id": "!!"})
    assert r.status_code == 404
