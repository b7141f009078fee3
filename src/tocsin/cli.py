"""The `tocsin` command: serve, migrate, demo data, users, tokens, audit verification, incidents."""

from __future__ import annotations

import asyncio
import gc
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer

from tocsin.auth.models import Role
from tocsin.auth.permissions import Actor
from tocsin.config import Settings
from tocsin.db import Database, make_sync_engine, utcnow

T = TypeVar("T")

app = typer.Typer(help="Tocsin incident management.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect the hash-chained audit log.", no_args_is_help=True)
incident_app = typer.Typer(help="Script incidents: list, show, create.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(incident_app, name="incident")

CLI_ACTOR = Actor(kind="system", user_id=None, role=Role.admin, name="cli")


def settings() -> Settings:
    return Settings()


def run_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run one async job against the configured database, wired like the server's (events, audit seal)."""
    from tocsin.wiring import open_database

    async def main() -> T:
        db = open_database(settings().database_url, pool_size=2)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    engine: Annotated[
        bool,
        typer.Option(
            help="Run the timer engine in this process (--no-engine when separate `tocsin worker`s run it)."
        ),
    ] = True,
    smtp_port: Annotated[
        int | None, typer.Option(help="Also listen for alert mail on this port (email intake).")
    ] = None,
    smtp_host: Annotated[str | None, typer.Option(help="Interface of the mail listener.")] = None,
) -> None:
    """Serve the web UI and API (settings from TOCSIN_* environment variables)."""
    import uvicorn

    from tocsin.app import create_app

    cfg = settings()
    if not engine:
        cfg.engine = False
    if smtp_port is not None:
        cfg.smtp_listen_port = smtp_port
    if smtp_host is not None:
        cfg.smtp_listen_host = smtp_host
    cfg.check_secret()
    if cfg.demo:
        typer.echo(f"Tocsin demo on http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs)")
        typer.echo("Demo admin login: admin@tocsin.example / tocsin-demo-admin")
    application = create_app(cfg)
    # Objects alive after start-up live for the whole process: keep the collector from rescanning them, and
    # collect less often, which shortens the pauses an alert storm would otherwise see.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    uvicorn.run(
        application,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=cfg.log_level,
        access_log=access_log,
        proxy_headers=True,
    )


@app.command()
def worker() -> None:
    """Run the timer engine alone: fire due timers, e.g. notification deliveries (several may share a DB)."""
    from tocsin.engine.runtime import run_worker
    from tocsin.wiring import open_database, timer_handlers

    cfg = settings()
    asyncio.run(
        run_worker(
            cfg,
            timer_handlers(),
            lease_seconds=cfg.engine_lease_seconds,
            database=open_database(cfg.database_url, pool_size=cfg.db_pool_size),
        )
    )


@app.command()
def smtpd(
    port: Annotated[
        int | None, typer.Option(help="Port (default: TOCSIN_SMTP_LISTEN_PORT, else 2525).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default: TOCSIN_SMTP_LISTEN_HOST).")] = None,
) -> None:
    """Run the inbound mail listener alone: mail to an email integration's address opens alerts."""
    from tocsin.alerts.smtp import run_smtpd
    from tocsin.wiring import open_database

    cfg = settings()
    database = open_database(cfg.database_url, pool_size=cfg.db_pool_size)
    asyncio.run(run_smtpd(database, host or cfg.smtp_listen_host, port or cfg.smtp_listen_port or 2525))


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    downgrade: Annotated[bool, typer.Option(help="Downgrade to --revision instead.")] = False,
) -> None:
    """Apply database migrations, then make sure the default configuration exists."""
    from tocsin import migrate as m
    from tocsin.seed import seed_defaults

    url = settings().database_url
    if downgrade:
        m.downgrade(url, revision)
        typer.echo(f"downgraded to {revision}")
        return
    m.upgrade(url, revision)

    async def seed(db: Database) -> None:
        async with db.write() as s:
            await seed_defaults(s)

    run_db(seed)
    typer.echo(f"database at {m.head()}")
    if revision == "head" and (missing := m.missing_optional_indexes(url)):
        typer.echo(
            f"warning: no {', '.join(sorted(missing))}: the pg_trgm extension could not be created, "
            "so incident text search reads every incident. Have a superuser run CREATE EXTENSION pg_trgm "
            "in this database, stop Tocsin's processes, then run "
            "`tocsin migrate --downgrade --revision 0001 && tocsin migrate`.",
            err=True,
        )
    if revision == "head" and not m.has_sqlite_search(url):
        typer.echo(
            "warning: this SQLite has no FTS5 trigram tokenizer (SQLite 3.34 or later with FTS5 has it), so "
            "incident text search reads every incident. With such an SQLite, stop Tocsin, then run "
            "`tocsin migrate --downgrade --revision 0003 && tocsin migrate`.",
            err=True,
        )


@app.command()
def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when users already exist.")
    ] = False,
) -> None:
    """Load demo data: teams, services, users and a dozen incidents in different states."""
    from tocsin import demo as demo_data

    created = run_db(lambda db: demo_data.load(db, if_empty=if_empty))
    typer.echo("demo data loaded" if created else "demo data skipped: the database already has users")


# --- users ---------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Login email.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[
        Role, typer.Option(help="admin, manager, responder, reporter or viewer.")
    ] = Role.responder,
    password: Annotated[
        str | None, typer.Option(help="Password (asked for when omitted; '' for none).")
    ] = None,
) -> None:
    """Create a user account."""
    from tocsin.auth import service as auth
    from tocsin.errors import DomainError

    if password is None:
        password = getpass.getpass("Password (empty for API-only): ") if sys.stdin.isatty() else ""

    async def work(db: Database) -> int:
        async with db.write() as s:
            user = await auth.create_user(
                session=s, actor=CLI_ACTOR, email=email, name=name, role=role, password=password or None
            )
            return user.id

    try:
        typer.echo(f"created user {run_db(work)} ({email}, {role})")
    except DomainError as exc:
        fail(exc.detail)


@user_app.command("list")
def user_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List user accounts."""
    from tocsin.auth import service as auth

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.read() as s:
            return [
                {"id": u.id, "email": u.email, "name": u.name, "role": u.role, "active": u.active}
                for u in await auth.list_users(session=s)
            ]

    rows = run_db(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(
            f"{r['id']:>5}  {r['role']:<10} {'' if r['active'] else '(inactive) '}{r['email']}  {r['name']}"
        )


# --- tokens --------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Email of the token's owner.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API token and print it once."""
    from tocsin.auth import service as auth
    from tocsin.errors import DomainError

    async def work(db: Database) -> tuple[int, str]:
        async with db.write() as s:
            owner = await auth.user_by_email(session=s, email=user)
            if owner is None:
                raise DomainError(f"no user with email {user}; create one with `tocsin user create`")
            expires = utcnow() + timedelta(days=expires_days) if expires_days else None
            token, raw = await auth.create_token(
                session=s, actor=CLI_ACTOR, name=name, user_id=owner.id, expires_at=expires
            )
            return token.id, raw

    try:
        token_id, raw = run_db(work)
    except DomainError as exc:
        fail(exc.detail)
        return
    typer.echo(raw)
    typer.echo(f"token {token_id} for {user}: store it now, it is not shown again", err=True)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke an API token."""
    from tocsin.auth import service as auth
    from tocsin.errors import DomainError

    async def work(db: Database) -> None:
        async with db.write() as s:
            await auth.revoke_token(session=s, actor=CLI_ACTOR, token_id=token_id)

    try:
        run_db(work)
    except DomainError as exc:
        fail(exc.detail)
    typer.echo(f"token {token_id} revoked")


# --- audit ---------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 naming the first bad sequence number."""
    from tocsin.audit import service as audit

    engine = make_sync_engine(settings().database_url)
    with engine.connect() as conn:
        verdict = audit.verify(conn)
    engine.dispose()
    if verdict.ok:
        typer.echo(f"audit chain intact: {verdict.length} entries")
        return
    fail(
        f"audit chain broken at sequence {verdict.first_bad}: {verdict.reason} "
        f"({verdict.length} entries verified before it)"
    )


# --- incidents -----------------------------------------------------------------------------------


def _incident_json(view: Any) -> dict[str, Any]:
    from tocsin.incidents.schemas import incident_out

    data: dict[str, Any] = incident_out(view).model_dump(mode="json")
    return data


@incident_app.command("list")
def incident_list(
    state: Annotated[list[str] | None, typer.Option(help="Filter by state (repeatable).")] = None,
    priority: Annotated[list[int] | None, typer.Option(help="Filter by priority 1-4 (repeatable).")] = None,
    q: Annotated[str | None, typer.Option(help="Text in the title or description.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List incidents, newest first."""
    from tocsin.errors import DomainError
    from tocsin.incidents import service as incidents
    from tocsin.incidents.models import IncidentState
    from tocsin.incidents.queries import IncidentFilter

    async def work(db: Database) -> list[dict[str, Any]]:
        filters = IncidentFilter(
            states=tuple(IncidentState(x) for x in state or ()), priorities=tuple(priority or ()), q=q
        )
        async with db.read() as s:
            rows, _ = await incidents.list_incidents(session=s, actor=CLI_ACTOR, filters=filters, limit=limit)
            return [_incident_json(v) for v in await incidents.views(session=s, incidents=rows)]

    try:
        rows = run_db(work)
    except (DomainError, ValueError) as exc:
        fail(getattr(exc, "detail", str(exc)))
        return
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['ref']:<10} P{r['priority']}  {r['state']:<12} {r['title']}")


@incident_app.command("show")
def incident_show(ref: Annotated[str, typer.Argument(help="INC-42 or 42.")]) -> None:
    """Print one incident as JSON."""
    from tocsin.errors import DomainError
    from tocsin.incidents import service as incidents

    async def work(db: Database) -> dict[str, Any]:
        async with db.read() as s:
            return _incident_json(await incidents.get_detail(session=s, actor=CLI_ACTOR, ref=ref))

    try:
        typer.echo(json.dumps(run_db(work), indent=2))
    except DomainError as exc:
        fail(exc.detail)


@incident_app.command("create")
def incident_create(
    title: Annotated[str, typer.Option(help="What is happening.")],
    impact: Annotated[int, typer.Option(help="1 high, 2 medium, 3 low.")] = 3,
    urgency: Annotated[int, typer.Option(help="1 high, 2 medium, 3 low.")] = 3,
    type_key: Annotated[str, typer.Option("--type", help="Incident type key.")] = "it_service",
    description: Annotated[str, typer.Option(help="Details.")] = "",
    reporter: Annotated[str | None, typer.Option(help="Reporter's email.")] = None,
    extra: Annotated[str | None, typer.Option(help="The type's extra fields as a JSON object.")] = None,
) -> None:
    """Create an incident (priority derived from impact x urgency) and print its reference."""
    from tocsin.auth import service as auth
    from tocsin.errors import DomainError, Invalid
    from tocsin.incidents import service as incidents
    from tocsin.incidents.models import SourceChannel

    async def work(db: Database) -> str:
        async with db.write() as s:
            reporter_id = None
            if reporter:
                user = await auth.user_by_email(session=s, email=reporter)
                if user is None:
                    raise Invalid(f"no user with email {reporter}")
                reporter_id = user.id
            try:
                fields = json.loads(extra) if extra else None
            except json.JSONDecodeError as exc:
                raise Invalid(f"--extra is not valid JSON: {exc}") from exc
            inc = await incidents.create_incident(
                session=s,
                actor=CLI_ACTOR,
                title=title,
                description=description,
                type_key=type_key,
                impact=impact,
                urgency=urgency,
                reporter_id=reporter_id,
                source_channel=SourceChannel.api,
                extra=fields,
            )
            return f"{inc.ref} P{inc.priority}"

    try:
        typer.echo(run_db(work))
    except DomainError as exc:
        fail(exc.detail)


def main() -> None:
    app()
