"""Domain errors and their RFC 9457 problem+json rendering."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM = "application/problem+json"


class DomainError(Exception):
    """A refusal the caller can act on; `detail` says what to change."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Invalid(DomainError):
    status = 422
    title = "Invalid input"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    title = "Authentication required"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="tocsin"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        msg = "unknown field; remove it (see the schema at /api/docs)"
    elif err.get("type") == "json_invalid":
        return f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
    return f"{loc}: {msg}" if loc else msg


def _unstorable(exc: BaseException) -> str | None:
    """Why the database refused a value the request carried, if that is what `exc` is (else None)."""
    for err in (exc, exc.__cause__, getattr(exc, "orig", None)):
        if isinstance(err, OverflowError):
            return "a number in the request is out of range: ids and counts must fit in 64 bits"
        if isinstance(err, UnicodeEncodeError):
            return "a text value contains characters that are not valid Unicode (unpaired surrogates)"
        if isinstance(err, DataError):
            return "a value in the request is out of range or malformed for its field"
    return None


def install(app: FastAPI) -> None:
    """Map every error path to problem+json, so nothing reaches the client as a bare 500 or HTML."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": _describe(e), "type": e.get("type")}
            for e in exc.errors()
        ]
        detail = "; ".join(e["msg"] for e in errors[:5])
        return problem(422, "Invalid input", detail, errors=errors)

    @app.exception_handler(OverflowError)
    @app.exception_handler(UnicodeEncodeError)
    @app.exception_handler(StatementError)
    async def _unstorable_value(_: Request, exc: Exception) -> JSONResponse:
        # The safety net under input validation: a value no column can hold is the caller's mistake (422),
        # and the unit of work it came in has rolled back, so nothing half-done remains.
        reason = _unstorable(exc)
        if reason is None:
            raise exc
        return problem(422, "Invalid input", reason)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), detail)
