"""Where the servers and the secret come from: configured URLs, or embedded ones under
HUB_DATA_DIR; `HUB_SECRET`, or (in `dev` only) one generated once and kept there; the
key of `payments.events`, `HUB_EVENTS_KEY` or else that secret; and the VAPID key of Web
Push (`HUB_VAPID_PRIVATE_KEY`, or in `dev` one generated once)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from hub.embedded import EmbeddedPostgres, EmbeddedRedis
from hub.exits import USAGE, CommandError
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)


class ConfigError(CommandError):
    """A setting is missing or invalid: exit code 2 (hub.exits)."""

    def __init__(self, message: str):
        super().__init__(message, USAGE)


@dataclass
class Runtime:
    dsn: str
    redis_url: str
    secret: str
    embedded: list = field(default_factory=list)
    events_key: str = ""  # Settings.resolved_events_key
    vapid_private_key: str | None = None

    def stop(self) -> None:
        """Stop the embedded servers this process started (not ones it found running,
        such as those of a `supporthub dev` next door)."""
        for server in reversed(self.embedded):
            if server.started_here:
                server.stop()


def resolve_secret(settings: Settings, *, dev: bool) -> str:
    if settings.secret:
        return settings.secret
    if not dev:
        raise ConfigError("HUB_SECRET is required (set it to a long random string)")
    path = Path(settings.data_dir) / "secret"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


def resolve_vapid(settings: Settings, *, dev: bool) -> str | None:
    """The VAPID private key: HUB_VAPID_PRIVATE_KEY, or in `dev` one generated once and
    kept in HUB_DATA_DIR (browsers' subscriptions are bound to it, so it must not change
    between runs). None: Web Push is off (the hub says so when it starts)."""
    from hub.push.config import VapidKey, valid_subject

    if settings.vapid_private_key:
        try:
            VapidKey.parse(settings.vapid_private_key)
        except ValueError as exc:
            raise ConfigError(f"HUB_VAPID_PRIVATE_KEY: {exc}") from None
        if not dev and not settings.vapid_subject:
            raise ConfigError(
                "HUB_VAPID_SUBJECT is required with HUB_VAPID_PRIVATE_KEY"
                " (mailto:ops@example.com or an https URL of yours)"
            )
        if settings.vapid_subject and not valid_subject(settings.vapid_subject):
            raise ConfigError("HUB_VAPID_SUBJECT must be a mailto: address or an https URL")
        return settings.vapid_private_key
    if not dev:
        return None
    path = Path(settings.data_dir) / "vapid_private_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = VapidKey.generate().private_key
    path.write_text(value)
    path.chmod(0o600)
    return value


def start_runtime(
    settings: Settings, *, dev: bool, need_secret: bool = True, need_redis: bool = True
) -> Runtime:
    data_dir = Path(settings.data_dir).resolve()
    embedded: list = []
    dsn = settings.database_url
    if not dsn:
        pg = EmbeddedPostgres(data_dir / "postgres")
        dsn = pg.start()
        embedded.append(pg)
        log.info("embedded PostgreSQL at %s", pg.socket_dir)
    redis_url = settings.redis_url or ""
    if not redis_url and need_redis:
        r = EmbeddedRedis(data_dir / "redis")
        redis_url = r.start()
        embedded.append(r)
        log.info("embedded Redis at %s", r.socket)
    secret = resolve_secret(settings, dev=dev) if need_secret else ""
    vapid = resolve_vapid(settings, dev=dev) if need_secret else None
    return Runtime(
        dsn=dsn,
        redis_url=redis_url,
        secret=secret,
        embedded=embedded,
        events_key=settings.resolved_events_key(secret),
        vapid_private_key=vapid,
    )
