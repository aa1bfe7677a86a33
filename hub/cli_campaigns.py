"""`supporthub campaign ...`: preview, create, list, show and cancel campaigns from a
shell, against the store the running hub uses (hub.services.campaigns). The hub nodes
send them; this only writes them, audited as the operator's (`cli`)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.rules.campaigns import Audience, link_ok, local_send_at

AUDIENCE_HELP = (
    "all | lang:zh | lang:en | active:DAYS | alert:NAME:DAYS (e.g. alert:new_device_login:7)"
    " | list:FILE (one user id a line)"
)


def add_parser(sub: Any, init_help: str) -> None:
    p = sub.add_parser("campaign", help="scheduled, targeted notices (preview, create, list, ...)")
    actions = p.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")

    a = actions.add_parser("preview", help="how many users an audience has now")
    a.add_argument("--audience", required=True, help=AUDIENCE_HELP)
    a.add_argument("--init", action="store_true", help=init_help)

    a = actions.add_parser("create", help="schedule a notice (now, or --at a time in --tz)")
    a.add_argument("--title-zh", required=True, help="the Chinese title")
    a.add_argument("--body-zh", required=True, help="the Chinese text")
    a.add_argument("--title-en", required=True, help="the English title")
    a.add_argument("--body-en", required=True, help="the English text")
    a.add_argument("--category", choices=["notice", "security", "maintenance"], default="notice",
                   help="security: education cards users may dismiss")  # fmt: skip
    a.add_argument("--link", help="a help article's slug or an https URL")
    a.add_argument("--at", help="send time, ISO 8601 (default: now); without an offset, --tz")
    a.add_argument("--tz", help="the zone of --at (IANA, e.g. Asia/Shanghai)")
    a.add_argument("--audience", default="all", help=AUDIENCE_HELP)
    a.add_argument("--init", action="store_true", help=init_help)

    a = actions.add_parser("list", help="recent campaigns with their counts")
    a.add_argument("--limit", type=int, default=20, help="how many, newest first (at most 500)")
    a.add_argument("--init", action="store_true", help=init_help)

    a = actions.add_parser("show", help="one campaign with its counts (JSON)")
    a.add_argument("id", type=int, help="the campaign's id (see list)")
    a.add_argument("--init", action="store_true", help=init_help)

    a = actions.add_parser("cancel", help="cancel a scheduled campaign before it starts")
    a.add_argument("id", type=int, help="the campaign's id (see list)")
    a.add_argument("--init", action="store_true", help=init_help)


def parse_audience(text: str) -> tuple[Audience, list[str]]:
    """`--audience` as an Audience and, for a list, its user ids."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "all" and not rest:
            return Audience("all"), []
        if kind == "lang":
            return Audience("lang", lang=rest), []
        if kind == "active":
            return Audience("active", days=int(rest)), []
        if kind == "alert":
            name, _, days = rest.rpartition(":")
            return Audience("alert", alert=name, days=int(days)), []
        if kind == "list":
            ids = [line.strip() for line in Path(rest).read_text().splitlines() if line.strip()]
            return Audience("list"), list(dict.fromkeys(ids))
    except (ValueError, OSError) as exc:
        raise SystemExit(f"--audience {text}: {exc}") from exc
    raise SystemExit(f"--audience {text}: expected {AUDIENCE_HELP}")


def _line(c: dict[str, Any]) -> str:
    n = c["counts"]
    return (f"{c['id']:>6}  {c['status']:<9}  {c['send_at']}  {json.dumps(c['audience'])}"
            f"  delivered {n['delivered']} read {n['read']} clicked {n['clicked']}"
            f"  {c['texts']['en']['title']}")  # fmt: skip


def run(args: argparse.Namespace, with_store: Any, run_async: Any) -> None:
    from hub.services import campaigns as service
    from hub.store import campaigns as store
    from supporthub_core.audit import AuditEntry
    from supporthub_core.errors import HubError

    actor = AuditEntry("service", "cli", "campaign")
    command = args.campaign_command

    async def go(pool: Any, redis: Any, secret: str) -> Any:
        async with pool.acquire() as db:
            if command == "preview":
                audience, ids = parse_audience(args.audience)
                return await service.preview(db, audience, ids)
            if command == "create":
                audience, ids = parse_audience(args.audience)
                if args.link and not link_ok(args.link):
                    raise SystemExit("--link: a help article's slug or an https URL")
                when = datetime.now(UTC)
                if args.at:
                    try:
                        when = local_send_at(datetime.fromisoformat(args.at), args.tz)
                    except ValueError as exc:
                        raise SystemExit(f"--at: {exc}") from exc
                texts = {"zh": {"title": args.title_zh, "body": args.body_zh},
                         "en": {"title": args.title_en, "body": args.body_en}}  # fmt: skip
                return await service.create(db, actor, category=args.category, texts=texts,
                                            link=args.link, audience=audience, send_at=when,
                                            user_ids=ids)  # fmt: skip
            if command == "list":
                return await store.recent(db, max(1, min(args.limit, 500)))
            if command == "show":
                return await store.get(db, args.id)
            return await service.cancel(db, actor, args.id)

    try:
        result = run_async(with_store(go, args))
    except HubError as exc:
        raise SystemExit(f"campaign {command}: {exc}") from exc
    if command == "preview":
        print(f"{result} users")
    elif command == "list":
        for c in result:
            print(_line(c))
    elif command == "show":
        if result is None:
            raise SystemExit(f"no campaign {args.id}")
        print(json.dumps(result, ensure_ascii=False, indent=2))
    elif command == "create":
        print(f"campaign {result['id']} scheduled for {result['send_at']}; the hub nodes send it")
    else:
        print(f"campaign {result['id']} cancelled")
