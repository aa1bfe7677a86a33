"""Settings from the environment, prefix `HUB_` (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    secret: str | None = None
    # HMAC key of `payments.events` (CONTRACT section 4); unset: the secret (hub.runtime)
    events_key: str | None = None
    data_dir: Path = Path("./.supporthub")
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: str | None = None
    payments_url: str | None = None
    node_id: str | None = None
    log_format: str | None = None  # "json" or "text"; default depends on the command
    access_log: bool | None = None  # one line per HTTP request; default: on in dev only

    # the operator's brand in customer-facing text (help articles, the help bot)
    brand_name: str = "易币付"
    brand_name_en: str = "YiBiPay"
    support_email: str = "support@yibipay.example"
    support_phone: str = "400-000-0000"

    # WebSocket limits
    hello_timeout_s: float = 10.0
    # a WebSocket ping to every socket this often; one unanswered by the next is cut (1011)
    ws_ping_s: float = 20.0
    max_frame_bytes: int = 64 * 1024
    ws_compression: bool = (
        False  # per-message deflate: CPU and ~tens of KB per socket for small frames
    )
    send_queue_frames: int = 1024
    rate_per_s: float = 50.0
    rate_burst: float = 100.0
    bad_frames_limit: int = 20
    bad_frames_window_s: float = 60.0
    max_connections_per_address: int = 10_000  # open at once, per node (1008 over it)
    connects_per_s_per_address: float = 500.0  # new sockets a second, all nodes (1013 over it)
    max_buffered_bytes: int = 4 * 1024 * 1024  # unsent bytes per socket before it is cut off

    # client addresses (supporthub_core.addresses) and limits shared through Redis (hub.limits)
    trusted_proxies: str | None = None  # comma-separated addresses/CIDRs of our proxies
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    address_ipv6_prefix: int = Field(64, ge=1, le=128)  # IPv6 clients count per /64
    login_failures_per_user_address: int = 10  # per login_window_s
    login_attempts_per_address: int = 100  # any username, per login_window_s
    login_window_s: int = 300
    limits_timeout_s: float = 0.5  # Redis slower than this: count in this process for now
    limits_fallback_keys: int = 100_000  # keys the in-process fallback holds at most

    # bus: a Redis Cluster (sharded pub/sub, Redis 7+) when set, or when HUB_REDIS_URL is
    # redis+cluster://host:port (supporthub_core.redis_client)
    redis_cluster: bool = False
    bus_probe_interval_s: float = 3.0
    position_check_s: float = 30.0  # how often a node checks its sockets missed nothing
    bus_probe_timeout_s: float = 5.0

    # store
    db_pool_min: int = 2
    db_pool_max: int = 12
    # asyncpg's prepared statement cache per connection; 0 behind PgBouncer in transaction
    # mode (before 1.21, or without max_prepared_statements); unset: asyncpg's default,
    # or 0 when the DSN carries `pgbouncer=1` (supporthub_core.db.connect_options)
    db_statement_cache: int | None = None
    writer_max_batch: int = 2000
    writers: int = 2  # group writers committing side by side
    write_timeout_s: float = 10.0  # a write not committed by then fails as unavailable
    # a stored chat.open's follow-up (a bot chat's first bot turn) left undone this long
    # (its node gave up waiting for the store, or stopped) is done by the same open sent
    # again or by the sweeper; keep it above write_timeout_s
    open_follow_up_s: float = 30.0
    db_acquire_timeout_s: float = 10.0  # no pooled connection by then: unavailable
    # a system notice is stored and pushed in chunks of this many users (by id); one left
    # incomplete this long (its sender died) is finished by the sweeper
    broadcast_chunk: int = Field(default=1000, ge=1)
    broadcast_stall_s: float = 30.0

    # routing
    agent_grace_s: float = 30.0
    assignment_timeout_s: float = 120.0  # an unanswered new chat is re-offered; 0 = never
    chat_idle_close_s: float = 1800.0
    routing_sweep_s: float = 2.0
    default_handle_time_s: float = 180.0  # the prior of each agent's rolling handle time
    handle_time_refresh_s: float = 300.0  # all agents' handle times re-stored (window slides)
    handle_time_window: int = 20  # an agent's handle time: the mean of its last N chats
    returning_customer_window_s: float = 7 * 86_400  # a new chat prefers the last agent

    # opening hours of the teams, said when nobody who can help is online (hub.rules.hours)
    support_hours: str | None = None  # "09:00-18:00" for every team; unset: not said
    support_hours_by_topic: str = ""  # "security=00:00-24:00;payment=08:00-22:00"
    support_days: str = "0,1,2,3,4,5,6"  # Monday=0
    support_holidays: str = ""  # "2027-01-01,2027-02-06"
    support_tz: str = "Asia/Shanghai"

    # service levels per priority (hub.rules.sla): "urgent=60,high=120,normal=300"
    sla_first_response_s: str = "urgent=60,high=120,normal=300"
    sla_resolution_s: str = "urgent=1800,high=3600,normal=7200"
    sla_at_risk: float = 0.8  # this share of a target gone: at risk

    # urgent chats (a frozen customer's security chat): hub.rules.urgent
    # Times shown to a customer are in their device's zone (hello.tz); this one when no
    # device of theirs said (an IANA name).
    default_tz: str = "Asia/Shanghai"
    urgent_answer_s: float = 60.0  # a person answers within this, or the ladder escalates
    urgent_escalate_s: float = 30.0  # then: page on-call and re-offer it, this often
    urgent_extra_slots: int = 1  # urgent chats an agent may hold above its capacity
    oncall_webhook_url: str | None = None  # the on-call pager; unset: pages are only logged
    oncall_webhook_key: str | None = None  # signs page bodies; default: HUB_SECRET
    oncall_timeout_s: float = 5.0  # per page request (webhook) or SMTP operation (mail)
    # pages mailed here too (comma-separated), through the SMTP relay (smtp_relay_*)
    oncall_email: str | None = None

    # the supervisor view (hub.rules.alarms): what is highlighted and raises an alarm
    supervisor_wait_warn_s: float = 120.0  # a queued chat waiting this long is amber
    supervisor_wait_alarm_s: float = 600.0  # ... and red, an alarm (about to breach)
    supervisor_reply_warn_s: float = 60.0  # an assigned chat unanswered this long is amber
    supervisor_reply_alarm_s: float = 180.0  # ... and red, an alarm
    supervisor_sla_reply_s: float = 300.0  # "SLA met": first answer within this of the queue
    bot_assumed_resolved_s: float = 1800.0  # a bot chat quiet this long, no hand-off: resolved

    # feedback to the product team (hub.services.feedback)
    feedback_webhook_url: str | None = None  # each new item is POSTed here; unset: kept only
    feedback_webhook_key: str | None = None  # signs the bodies; default: HUB_SECRET
    feedback_webhook_timeout_s: float = 5.0
    feedback_webhook_retries: int = 5  # attempts after the first, with doubling backoff
    feedback_webhook_backoff_s: float = 1.0

    # payments
    risk_velocity_max: int = 10
    risk_velocity_window_s: float = 60.0
    risk_unusual_amount_factor: float = 10.0
    risk_unusual_amount_min: str = "5000"
    risk_failures_max: int = 5
    risk_failures_window_s: float = 600.0
    settlement_delay_s: float = 30.0
    business_hours: str = "00:00-24:00"  # local business hours for standard settlement
    business_days: str = "0,1,2,3,4,5,6"  # Monday=0
    business_tz: str = "Asia/Shanghai"
    outbox_poll_s: float = 0.2
    maintenance: bool = False

    # campaigns (hub.services.campaigns): scheduled, targeted notices sent in paced batches
    campaign_rate_per_s: float = Field(default=2000.0, gt=0)  # copies stored and pushed a second
    campaign_batch: int = Field(default=500, ge=1, le=10_000)  # users per batch (one transaction)
    campaign_poll_s: float = Field(default=2.0, gt=0)  # how often a node looks for a due campaign
    # a dead sender's campaign is taken over after this
    campaign_lease_s: float = Field(default=15.0, gt=0)

    # web push (hub.push): to devices with no open socket
    vapid_private_key: str | None = None  # P-256 key: raw base64url (32 bytes), PEM or DER
    vapid_subject: str | None = None  # mailto: or https: contact the push services may use
    push_endpoint_hosts: str | None = None  # comma-separated; default: the browsers' services
    push_allow_loopback: bool | None = None  # http://127.0.0.1 endpoints; default: dev only
    push_workers: int = 4
    push_queue_size: int = 10_000
    push_timeout_s: float = 10.0
    push_retries: int = 4
    push_backoff_s: float = 1.0
    push_backoff_max_s: float = 60.0
    push_ttl_s: int = 86_400  # how long a push service keeps a push for an unreachable device
    push_message_preview: bool = True  # an agent's reply shows its first words
    push_max_subscriptions_per_user: int = 20

    # step-up verification (codes sent out of band) and unfreezing
    verify_code_ttl_s: float = 300.0
    verify_max_attempts: int = 5
    unfreeze_verification_window_s: float = 600.0  # a passed verification allows unfreezing
    sms_webhook_url: str | None = None  # unset: codes are only logged as undeliverable
    sms_webhook_key: str | None = None  # signs webhook bodies; default: HUB_SECRET

    # attachments (POST /api/attachments): what is accepted, where it is kept, its links
    attachment_max_bytes: int = 10 * 1024 * 1024  # one file; larger uploads get 413 unread
    attachment_max_pixels: int = 40_000_000  # width x height (x frames): larger images 422
    attachment_max_per_message: int = 10
    attachment_thumbnail_px: int = 320  # longest side of a thumbnail
    attachment_url_ttl_s: int = 900  # how long a signed download link works
    attachment_dir: Path | None = None  # files on disk; unset: HUB_DATA_DIR/attachments
    attachment_workers: int = 2  # images decoded and re-encoded at once (CPU)
    # S3-compatible storage instead of the disk when a bucket is set
    attachment_s3_bucket: str | None = None
    attachment_s3_endpoint_url: str | None = None  # unset: AWS itself
    attachment_s3_region: str | None = None
    attachment_s3_access_key: str | None = None  # unset: the usual AWS credential chain
    attachment_s3_secret_key: str | None = None
    attachment_s3_prefix: str = "attachments/"

    # the e-mail channel (docs/operations.md): mail to `support_email` becomes a chat
    smtp_listen: str | None = None  # "host:port" of the SMTP listener in serve; unset: none
    mail_domain: str | None = None  # right side of our Message-IDs; unset: support_email's
    mail_trusted_authserv: str | None = None  # Authentication-Results of this relay count
    mail_require_auth: bool = True  # no pass from the trusted relay: the sender is unknown
    mail_max_bytes: int = 25 * 1024 * 1024  # a whole inbound mail; larger is refused (552)
    mail_signature: str | None = None  # under every reply; unset: "{brand} support"
    smtp_relay_host: str | None = None  # outgoing mail; unset: replies are not mailed
    smtp_relay_port: int = 25
    smtp_relay_starttls: bool = False
    smtp_relay_user: str | None = None
    smtp_relay_password: str | None = None
    smtp_timeout_s: float = 15.0
    mail_retry_s: float = 5.0  # first retry of a failed send; doubles up to mail_retry_max_s
    mail_retry_max_s: float = 600.0
    mail_poll_s: float = 2.0  # the outbox is read this often (and at once on a reply)

    @property
    def mail_id_domain(self) -> str:
        """The domain of the Message-IDs the hub writes."""
        return self.mail_domain or self.support_email.rpartition("@")[2] or "localhost"

    @property
    def attachments_path(self) -> Path:
        """Where attachment files live on disk (when no S3 bucket is set)."""
        return self.attachment_dir or Path(self.data_dir) / "attachments"

    def resolved_events_key(self, secret: str) -> str:
        """The HMAC key of `payments.events`: `HUB_EVENTS_KEY`, or the resolved secret
        (hub.runtime) when unset. Payments and every hub node must arrive at one value."""
        return self.events_key or secret

    @property
    def origins(self) -> list[str]:
        if self.allowed_origins:
            return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]
        own = [f"http://{self.host}:{self.port}"]
        if self.host in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
            own += [f"http://localhost:{self.port}", f"http://127.0.0.1:{self.port}"]
        return own
