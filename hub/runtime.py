"""Where the servers and the secret come from: configured URLs, or embedded ones in the
data directory (hub.datadir: which one, and which process owns its servers);
`HUB_SECRET`, or (in `dev` and the one-shot commands) one generated once and kept there;
the key of `payments.events`, `HUB_EVENTS_KEY` or else that secret; and the VAPID key of
Web Push (`HUB_VAPID_PRIVATE_KEY`, or in `dev` one generated once)."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from hub import datadir
from hub.embedded import EmbeddedPostgres, EmbeddedRedis
from supporthub_core.exits import DATA_DIR, UNREACHABLE, USAGE, CommandError
from supporthub_core.settings import Settings

log = logging.getLogger(__name__)


class ConfigError(CommandError):
    """A setting is missing or invalid: exit code 2 (supporthub_core.exits)."""

    def __init__(self, message: str):
        super().__init__(message, USAGE)


@dataclass
class Runtime:
    dsn: str
    redis_url: str
    secret: str
    embedded: list = field(default_factory=list)  # the embedded servers it uses
    events_key: str = ""  # Settings.resolved_events_key
    vapid_private_key: str | None = None
    data_dir: Path | None = None
    owned: list = field(default_factory=list)  # those this run started or adopted
    instance: datadir.Instance | None = None

    def stop(self) -> None:
        """Stop the embedded servers this run started or adopted (never those of a
        `supporthub dev` whose servers a one-shot command borrowed), then let go of the
        data directory."""
        try:
            for server in reversed(self.owned):
                try:
                    server.stop()
                except Exception as exc:  # stop the others all the same
                    log.error("could not stop the embedded %s: %s", server.label, exc)
            self.owned = []
        finally:
            if self.instance is not None:
                self.instance.release()
                self.instance = None


def resolve_secret(settings: Settings, *, dev: bool, data_dir: Path | None = None) -> str:
    """HUB_SECRET, or (dev) the one kept in the data directory, made at its first use."""
    if settings.secret:
        return settings.secret
    if not dev:
        raise ConfigError("HUB_SECRET is required (set it to a long random string)")
    path = Path(data_dir or settings.data_dir) / "secret"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


def resolve_vapid(settings: Settings, *, dev: bool, data_dir: Path | None = None) -> str | None:
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
    path = Path(data_dir or settings.data_dir) / "vapid_private_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = VapidKey.generate().private_key
    path.write_text(value)
    path.chmod(0o600)
    return value


def check_oncall_email(settings: Settings, *, dev: bool) -> None:
    """HUB_ONCALL_EMAIL: addresses, and a relay to mail them through (`dev` has its
    catcher). A page that cannot go out must not be found out during an incident."""
    from hub.services.pager import oncall_addresses

    try:
        addresses = oncall_addresses(settings.oncall_email)
    except ValueError as exc:
        raise ConfigError(f"HUB_ONCALL_EMAIL: {exc}") from None
    if addresses and not dev and not settings.smtp_relay_host:
        raise ConfigError(
            "HUB_ONCALL_EMAIL needs HUB_SMTP_RELAY_HOST (the relay on-call pages are mailed"
            " through)"
        )


def start_runtime(
    settings: Settings,
    *,
    dev: bool,
    need_secret: bool = True,
    need_redis: bool = True,
    command: str = "dev",
    create: bool = True,
    adopt: bool = False,
    url: str | None = None,
) -> Runtime:
    """The servers and secrets `command` runs with. Embedded servers are used for what
    HUB_DATABASE_URL and HUB_REDIS_URL do not name; the data directory is made only if
    `create` (else CommandError, exit 5). `dev`, `serve` and `payments` own the data
    directory while they run (another one already running: exit 5); a one-shot command
    borrows the servers of the one running, or else owns them for its run. Stale servers,
    left by a run that died, are stopped and started afresh, or adopted when `adopt`."""
    need_pg = not settings.database_url
    need_r = need_redis and not settings.redis_url
    need_dir = need_pg or need_r or (need_secret and dev and not settings.secret)
    vapid = need_secret and command in datadir.SERVING
    need_dir = need_dir or (vapid and dev and not settings.vapid_private_key)
    if need_secret and not dev and not settings.secret:
        resolve_secret(settings, dev=False)  # the error, before anything starts
    data_dir = datadir.open_data_dir(settings, create=create) if need_dir else None
    rt = Runtime(dsn=settings.database_url or "", redis_url=settings.redis_url or "",
                 secret="", data_dir=data_dir)  # fmt: skip
    try:
        if need_secret:
            rt.secret = resolve_secret(settings, dev=dev, data_dir=data_dir)
            if vapid:
                rt.vapid_private_key = resolve_vapid(settings, dev=dev, data_dir=data_dir)
                if command != "payments":  # the hub pages; payments never does
                    check_oncall_email(settings, dev=dev)
        rt.events_key = settings.resolved_events_key(rt.secret)
        if need_pg or need_r:
            assert data_dir is not None
            servers: list[EmbeddedPostgres | EmbeddedRedis] = []
            if need_pg:
                servers.append(EmbeddedPostgres(data_dir / "postgres"))
            if need_r:
                servers.append(EmbeddedRedis(data_dir / "redis"))
            rt.embedded = servers
            _embedded(rt, data_dir, servers, command=command, adopt=adopt, url=url)
            for server in servers:
                if isinstance(server, EmbeddedPostgres):
                    rt.dsn = server.dsn
                    log.info("embedded PostgreSQL at %s", server.socket_dir)
                else:
                    rt.redis_url = server.url
                    log.info("embedded Redis at %s", server.socket)
    except BaseException:
        rt.stop()
        raise
    return rt


def _embedded(rt: Runtime, data_dir: Path, servers: list, *, command: str, adopt: bool,
              url: str | None) -> None:  # fmt: skip
    instance = datadir.Instance(data_dir)
    if not instance.try_claim():
        owner = datadir.read_owner(data_dir)
        serving_owner = owner is not None and owner.command in datadir.SERVING
        who = owner.describe() if owner else "another supporthub process"
        if command in datadir.SERVING:
            raise CommandError(
                f"the data directory {data_dir} is in use by {who}: stop that one first,"
                " or give this one its own (HUB_DATA_DIR) and port (--port)",
                DATA_DIR,
            )
        if serving_owner:
            _borrow(servers, who)
            return
        # another one-shot command holds it for a moment: wait for it to finish
        if not instance.claim_within(60):
            raise CommandError(f"the data directory {data_dir} is held by {who}", DATA_DIR)
    rt.instance = instance
    _stale(data_dir, servers, adopt=adopt)
    instance.announce(command, url)
    for server in servers:
        if server.running():  # adopted
            rt.owned.append(server)
            continue
        try:
            server.start()
        except Exception as exc:
            raise CommandError(
                f"the embedded {server.label} did not start ({_why(exc)}); its log is in"
                f" {server.root}",
                UNREACHABLE,
            ) from None
        rt.owned.append(server)
    # PostgreSQL adopted: its database exists; check it answers
    for server in rt.owned:
        if isinstance(server, EmbeddedPostgres):
            server._ensure_database()


def _stale(data_dir: Path, servers: list, *, adopt: bool) -> None:
    """Servers running while nobody owns the directory were left by a run that died."""
    running = [(s, s.pid()) for s in servers]
    running = [(s, pid) for s, pid in running if pid is not None]
    if not running:
        return
    owner = datadir.read_owner(data_dir)
    who = f"{owner.describe()}, which is gone" if owner else "a run that is gone"
    names = " and ".join(f"{s.label} (pid {pid})" for s, pid in running)
    if adopt:
        log.warning("adopting the embedded %s left running by %s: they stop with this run",
                    names, who)  # fmt: skip
        return
    log.warning("the embedded %s were left running by %s: stopping them"
                " (--adopt takes them over instead)", names, who)  # fmt: skip
    for server, _ in running:
        server.stop()


def _borrow(servers: list, who: str, timeout: float = 60) -> None:
    """Use the servers of the `dev` (or `serve`) that owns the directory, once they answer."""
    deadline = time.monotonic() + timeout
    for server in servers:
        while not _answers(server):
            if time.monotonic() > deadline:
                raise CommandError(
                    f"the embedded {server.label} of {who} does not answer: is it still"
                    " starting? Retry in a moment, or restart it",
                    UNREACHABLE,
                )
            time.sleep(0.2)


def _answers(server) -> bool:
    if isinstance(server, EmbeddedRedis):
        return server.running() and server._accepts()
    return server.running() and (server.socket_dir / ".s.PGSQL.5432").exists()


def _why(exc: BaseException) -> str:
    stderr = getattr(exc, "stderr", None)
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    text = (stderr or str(exc) or type(exc).__name__).strip()
    return text.splitlines()[-1][:300] if text else type(exc).__name__
