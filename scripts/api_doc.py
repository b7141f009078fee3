"""Write docs/api.md from the app's OpenAPI document: every operation, grouped by tag."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tocsin.app import create_app
from tocsin.config import Settings

OUT = Path(__file__).parent.parent / "docs" / "api.md"


def main() -> None:
    spec = create_app(Settings(demo=True)).openapi()
    groups: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            summary = (op.get("description") or op.get("summary") or "").strip().splitlines()
            groups[(op.get("tags") or ["other"])[0]].append(
                (method.upper(), path, summary[0] if summary else "")
            )
    lines = [
        "# REST API",
        "",
        "Generated from the OpenAPI document by `python scripts/api_doc.py`; the live, complete reference",
        "with every field is served at `/api/docs` (and `/api/openapi.json`). Authenticate with",
        "`Authorization: Bearer <token>`, or a session cookie plus `X-CSRF-Token` on writes.",
        "Intake endpoints (`/intake/...`, `/v2/enqueue`) take the integration key instead; iCalendar feeds",
        "take the secret in their URL.",
        "Errors are `application/problem+json` (RFC 9457).",
        "",
    ]
    for tag in sorted(groups):
        lines += [f"## {tag}", "", "| method | path | what it does |", "|---|---|---|"]
        lines += [
            f"| {m} | `{p}` | {s.replace('|', '/')} |" for m, p, s in sorted(groups[tag], key=lambda r: r[1])
        ]
        lines.append("")
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT} ({sum(len(v) for v in groups.values())} operations)")


if __name__ == "__main__":
    main()
