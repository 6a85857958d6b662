"""Typed settings: one YAML file plus environment overrides.

This is the only module that reads the environment, and it does so from the
mapping it is given (``load(path, environ)``), so tests pass a dict.

Environment overrides use the prefix ``MODELLIX_PROXY_`` and ``__`` between
nesting levels; values are parsed as YAML scalars or flow collections::

    MODELLIX_PROXY_LISTEN__PORT=8080
    MODELLIX_PROXY_UPSTREAM__ORIGIN=http://127.0.0.1:9000
    MODELLIX_PROXY_MODELS__POLICY=permissive
    MODELLIX_PROXY_ADMIN__TOKEN=s3cret

Secrets never need to sit in the file: every ``*_file`` field names a file
whose stripped contents are used instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

ENV_PREFIX = "MODELLIX_PROXY_"
CONFIG_PATH_ENV = "MODELLIX_PROXY_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ListenSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        return self


class AdminSettings(_Section):
    """The admin listener serves /metrics and /admin/... apart from client traffic."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)
    token: SecretStr | None = None
    token_file: Path | None = None
    # How long a replica trusts what it read about a stored admin token (revocation,
    # rotation reach every replica within this time).
    token_cache_seconds: float = Field(0.5, ge=0, le=60)
    # A token this replica does not know makes it re-read the stored tokens at most this
    # often (made-up tokens cannot load the store); one added elsewhere works here within it.
    unknown_token_seconds: float = Field(1.0, gt=0, le=60)


class AuditSettings(_Section):
    """The audit trail of admin actions (``docs/admin-api.md``, "Audit trail")."""

    # Rows younger than this are never deleted; older ones are pruned by the retention round
    # (the last one pruned is kept as the chain's anchor, so verification still works).
    retention_days: float = Field(400.0, ge=1)


class RetrySettings(_Section):
    max_attempts: int = Field(3, ge=1, le=10)
    base_delay_seconds: float = Field(0.5, gt=0)
    max_delay_seconds: float = Field(8.0, gt=0)
    total_seconds: float = Field(20.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=1)
    # Statuses on which a paid submit is retried. 504 is left out on purpose:
    # a gateway timeout on a POST means the origin may have accepted it.
    submit_retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503})
    poll_retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})


ACCOUNT_NAME = r"^[A-Za-z0-9._-]{1,64}$"
DEFAULT_ACCOUNT = "default"


class UpstreamAccount(_Section):
    """One Modellix account (an upstream team with its own key, balance, tier and bill).

    Its key comes from ``api_key`` (or ``MODELLIX_PROXY_UPSTREAM__ACCOUNTS__<NAME>__API_KEY``)
    or ``api_key_file``. Its concurrency is ``concurrency``, else the funding tier of
    ``funding_usd`` (total top-ups, ``proxy.accounts.TIERS``), else unlimited by the proxy;
    its requests per minute likewise ``rpm``, else the tier's.
    """

    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    display_name: str | None = Field(None, min_length=1, max_length=200)
    concurrency: int | None = Field(None, ge=1, le=10_000)
    funding_usd: Decimal | None = Field(None, ge=0)
    rpm: int | None = Field(None, ge=1, le=10**6)  # the account's upstream requests/minute
    teams: tuple[str, ...] = ()  # the proxy teams whose virtual keys bill to this account

    @model_validator(mode="after")
    def _one_key(self) -> UpstreamAccount:
        if (self.api_key is None) == (self.api_key_file is None):
            raise ValueError("an account needs exactly one of api_key and api_key_file")
        if self.concurrency is not None and self.funding_usd is not None:
            raise ValueError("set concurrency or funding_usd, not both")
        return self


class UpstreamSettings(_Section):
    origin: str = "https://api.modellix.ai"
    connect_timeout_seconds: float = Field(5.0, gt=0)
    read_timeout_seconds: float = Field(60.0, gt=0)
    pool_size: int = Field(100, ge=1)
    max_response_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    retry: RetrySettings = RetrySettings()
    # Key the watcher may use for jobs whose client key is no longer in memory
    # (after a restart in pass-through mode) and that virtual keys inject.
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    # Further Modellix accounts by name (``upstream.api_key`` is the account ``default``),
    # and the account of the teams no account lists (``None``: ``default`` if configured).
    accounts: dict[str, UpstreamAccount] = Field(default_factory=dict)
    default_account: str | None = Field(None, pattern=ACCOUNT_NAME)

    @model_validator(mode="after")
    def _accounts(self) -> UpstreamSettings:
        for name in self.accounts:
            if not re.fullmatch(ACCOUNT_NAME, name):
                raise ValueError(f"accounts: {name!r} is not a name (letters, digits, . _ -)")
        has_default_key = self.api_key is not None or self.api_key_file is not None
        if has_default_key and DEFAULT_ACCOUNT in self.accounts:
            raise ValueError(
                "accounts.default: upstream.api_key already is the account 'default'; "
                "configure it in one place"
            )
        known = set(self.accounts) | ({DEFAULT_ACCOUNT} if has_default_key else set())
        if self.default_account is not None and self.default_account not in known:
            raise ValueError(
                f"default_account: no account {self.default_account!r} "
                f"(configured: {', '.join(sorted(known)) or 'none'})"
            )
        owner: dict[str, str] = {}
        for name, account in self.accounts.items():
            for team in account.teams:
                if team in owner:
                    raise ValueError(
                        f"accounts.{name}.teams: team {team!r} already bills to account "
                        f"{owner[team]!r} (a team bills to one account)"
                    )
                owner[team] = name
        keys = [a.api_key.get_secret_value() for a in self.accounts.values() if a.api_key]
        if self.api_key is not None:
            keys.append(self.api_key.get_secret_value())
        if len(keys) != len(set(keys)):
            raise ValueError("accounts: two accounts have the same api_key")
        return self

    @model_validator(mode="after")
    def _origin_shape(self) -> UpstreamSettings:
        from yarl import URL

        url = URL(self.origin)
        if url.scheme not in {"http", "https"} or not url.host:
            raise ValueError("origin must be an http(s) URL such as https://api.modellix.ai")
        if url.path not in {"", "/"} or url.query_string or url.fragment:
            raise ValueError("origin must be an origin: no path, query or fragment")
        return self


class PreflightSettings(_Section):
    mode: Literal["refuse", "warn", "off"] = "refuse"
    allow_hosts: tuple[str, ...] = ()
    timeout_seconds: float = Field(3.0, gt=0)
    max_redirects: int = Field(3, ge=0, le=10)
    max_bytes: int = Field(65536, ge=1024)
    cache_ttl_seconds: float = Field(60.0, ge=0)


class UpstreamListSettings(_Section):
    """The upstream's ``GET /api/v1/models``: every slug it lists is submittable (strict too)."""

    enabled: bool = True
    fetch_at_start: bool = True  # with a watcher key: fetch at start and keep it fresh
    refresh_seconds: float = Field(300.0, gt=0)
    retry_seconds: float = Field(15.0, ge=0)  # after a failed fetch, before the next try
    max_models: int = Field(2000, ge=1)  # a longer list is cut: label values stay bounded
    show_aliases: bool = False  # list the configured aliases in GET /api/v1/models too


class UpstreamSchemaSettings(_Section):
    """The upstream's published request schemas (``GET {origin}/models/{slug}/api_schema``).

    Fetched from ``origin`` only (no redirects followed), pinned per slug in the store with
    their content hash, refreshed every ``refresh_seconds`` by one replica at a time. Under
    ``hold`` a changed schema is recorded and waits for an operator's accept; under
    ``follow`` it is pinned at once.
    """

    enabled: bool = True
    origin: str = "https://www.modellix.ai"
    refresh_seconds: float = Field(3600.0, gt=0)
    retry_seconds: float = Field(60.0, ge=0)  # after a failed fetch, before the next try
    sync_seconds: float = Field(10.0, gt=0)  # how often a replica reads pins from the store
    policy: Literal["hold", "follow"] = "hold"
    timeout_seconds: float = Field(5.0, gt=0)
    max_bytes: int = Field(1024 * 1024, ge=1024)
    concurrency: int = Field(4, ge=1, le=64)
    # Host names or CIDRs the origin's DNS answers may point at although not public.
    allow_hosts: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _origin_shape(self) -> UpstreamSchemaSettings:
        from yarl import URL

        url = URL(self.origin)
        if url.scheme not in {"http", "https"} or not url.host:
            raise ValueError("origin must be an http(s) URL such as https://www.modellix.ai")
        if url.path not in {"", "/"} or url.query_string or url.fragment:
            raise ValueError("origin must be an origin: no path, query or fragment")
        return self


class ModelSettings(_Section):
    policy: Literal["strict", "permissive"] = "strict"
    upstream_list: UpstreamListSettings = UpstreamListSettings()
    upstream_schemas: UpstreamSchemaSettings = UpstreamSchemaSettings()
    unknown_fields: Literal["refuse", "warn"] = "refuse"
    aliases: dict[str, str] | None = None  # None: the shipped defaults
    extra_aliases: dict[str, str] = Field(default_factory=dict)  # added on top of ``aliases``
    overrides: dict[str, Any] = Field(default_factory=dict)
    preflight: PreflightSettings = PreflightSettings()


class PriceEntry(_Section):
    unit: Literal["per_second", "per_video", "per_image"]
    usd: Decimal | None = None
    usd_by_resolution: dict[str, Decimal] = Field(default_factory=dict)


class PricingSettings(_Section):
    """Prices: the operator's table first, else the upstream model list's display prices."""

    version: str = "modellix-list-2026-11"  # the operator table's version, shown on its jobs
    models: dict[str, PriceEntry] = Field(default_factory=dict)  # empty: the upstream list
    # A duration the body cannot tell (output following an input video or audio) is
    # estimated at most this long, so a reservation never falls short of the charge.
    input_bound_seconds: float = Field(600.0, gt=0, le=86400)


class IdempotencySettings(_Section):
    ttl_seconds: float = Field(86400.0, gt=0)
    in_flight_timeout_seconds: float = Field(120.0, gt=0)
    auto_dedupe_window_seconds: float = Field(0.0, ge=0)


class WatcherSettings(_Section):
    enabled: bool = True
    first_check_seconds: float = Field(15.0, ge=0)
    base_delay_seconds: float = Field(5.0, gt=0)
    max_delay_seconds: float = Field(30.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=1)
    stale_after_attempts: int = Field(12, ge=1)
    # Longest sleep between looks for due jobs (it wakes sooner when one falls due), and
    # the interval of expiry.
    tick_seconds: float = Field(1.0, gt=0)
    # Jobs leased per store transaction (a chunk); more are leased as soon as fewer than
    # half a chunk wait for a poll slot.
    batch_size: int = Field(50, ge=1)
    # This replica's upstream poll rate (a token bucket; polls leave evenly spaced).
    # Upstream rate limits are per team, across its keys and replicas.
    max_polls_per_second: float = Field(500.0, gt=0)
    max_in_flight: int = Field(64, ge=1)  # watcher polls awaiting the upstream at once
    # Reschedules (one per poll) are written together, one transaction per flush.
    flush_seconds: float = Field(0.2, gt=0)
    # How often the watcher, backlog, in-flight and ledger gauges are read from the store
    # (scans of the open jobs and of the day's ledger: seconds apart on a big ledger).
    gauges_seconds: float = Field(5.0, gt=0)
    lease_seconds: float = Field(60.0, gt=0)
    client_grace_seconds: float = Field(10.0, ge=0)
    retention_seconds: float = Field(86400.0, gt=0)
    bill_failed: bool = False


class RetentionSettings(_Section):
    """How long finished records are kept; one replica at a time purges them in batches."""

    # Idempotency keys: kept this long after their claim, and never before they expire
    # (null: purged as soon as ``idempotency.ttl_seconds`` has passed).
    idempotency_seconds: float | None = Field(None, gt=0)
    # Refused requests (including 401s from unauthenticated callers); null keeps them.
    refusals_seconds: float | None = Field(30 * 86400.0, gt=0)
    # Terminal jobs (the ledger): kept forever unless the operator sets this.
    terminal_jobs_seconds: float | None = Field(None, gt=0)
    # Settled or released budget reservations, counted from their creation (a job's money
    # is in the job row itself; an open reservation is never purged). Kept for audit only.
    reservations_seconds: float | None = Field(7 * 86400.0, gt=0)
    # The settlement journal (what balance reconciliation counts): rows every reading has
    # counted are kept this long after their settlement; null keeps them.
    settlements_seconds: float | None = Field(30 * 86400.0, gt=0)
    # Which proxy key uploaded each media file, counted from the upload: the upstream keeps
    # a file 7 days, so its record is of no use after; null keeps them.
    media_files_seconds: float | None = Field(8 * 86400.0, gt=0)
    interval_seconds: float = Field(300.0, gt=0)
    batch_size: int = Field(1000, ge=1, le=100_000)
    # A round holds a lease this long and renews it between batches.
    lease_seconds: float = Field(60.0, gt=0)


class RecoverySettings(_Section):
    """How replicas learn that another one died mid-submit, and clean up after it."""

    # A replica whose heartbeat is older than this is gone: its submit intents become
    # `unknown` records and the reservations and slots it held for requests are released.
    lease_seconds: float = Field(30.0, gt=0)
    heartbeat_seconds: float = Field(5.0, gt=0)
    batch_size: int = Field(200, ge=1, le=10_000)

    @model_validator(mode="after")
    def _beat_within_lease(self) -> RecoverySettings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError("heartbeat_seconds must be at most half of lease_seconds")
        return self


class PollSettings(_Section):
    coalesce: bool = True
    serve_terminal_from_ledger: bool = True
    terminal_cache_size: int = Field(10000, ge=0)


class LimitSettings(_Section):
    """What one submit body may cost before validation (413/400 beyond)."""

    # An inline (base64) image is 4/3 of its size: 16 MiB holds one of ~12 MiB.
    submit_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    json_max_separators: int = Field(20_000, ge=16)  # ',' and ':' counted while reading
    json_max_depth: int = Field(32, ge=2, le=256)
    json_max_items: int = Field(2_000, ge=8)  # object members plus array items, all levels
    json_max_key_chars: int = Field(256, ge=8)
    off_loop_bytes: int = Field(256 * 1024, ge=0)  # parse and hash in a thread above this


class IdentitySettings(_Section):
    """How callers are known in pass-through mode."""

    team_header: str = "X-Modellix-Team"
    project_header: str = "X-Modellix-Project"
    trust_team_headers: bool = True
    fingerprints: dict[str, dict[str, str]] = Field(default_factory=dict)
    teams: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()


class KeySettings(_Section):
    """Who may call: the caller's own Modellix key, proxy-issued virtual keys, or both."""

    mode: Literal["passthrough", "virtual", "mixed"] = "passthrough"
    # How long a replica trusts what it read about a virtual key: a revocation reaches
    # every replica within this many seconds.
    cache_seconds: float = Field(0.5, ge=0, le=60)


class BudgetSpec(_Section):
    """A budget declared in the config file (upserted at start-up; the admin API adds more)."""

    name: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    scope: Literal["key", "team", "project", "global"]
    subject: str | None = Field(None, max_length=128, validate_default=True)  # as a key's team
    window: Literal["day", "month", "lifetime"] = "month"
    limit_usd: Decimal = Field(gt=0)
    hard: bool = True

    @field_validator("subject")
    @classmethod
    def _subject(cls, subject: str | None, info: ValidationInfo) -> str | None:
        scope = info.data.get("scope")
        if scope == "global" and subject is not None:
            raise ValueError("a global budget has no subject")
        if scope in {"key", "team", "project"} and not subject:
            raise ValueError(f"a {scope} budget needs a subject (the {scope} it applies to)")
        return subject


class GovernanceSettings(_Section):
    timezone: str = "UTC"  # budget windows reset at local midnight / the 1st in this zone
    budgets: tuple[BudgetSpec, ...] = ()
    # Budget definitions are re-read at most this often: a change reaches every replica
    # within this many seconds.
    cache_seconds: float = Field(1.0, ge=0, le=60)

    @model_validator(mode="after")
    def _zone(self) -> GovernanceSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        names = [b.name for b in self.budgets]
        if len(names) != len(set(names)):
            raise ValueError("budget names must be unique")
        return self


class WebhookSettings(_Section):
    """Completion webhooks (``X-Modellix-Callback-Url`` or a per-key default URL)."""

    enabled: bool = False
    # Per-key signing secrets are derived from this one (HMAC-SHA256 over the caller id);
    # required when enabled. ``modellix-proxy webhooks secret <caller>`` shows a key's secret.
    signing_secret: SecretStr | None = None
    signing_secret_file: Path | None = None
    allow_hosts: tuple[str, ...] = ()  # internal receivers: names, *.suffixes or CIDRs
    require_https: bool = False  # refuse http:// callback URLs (hosts in allow_hosts excepted)
    max_attempts: int = Field(8, ge=1, le=50)  # then the delivery is dead-lettered
    base_delay_seconds: float = Field(5.0, gt=0)  # backoff: base * 2**(attempt-1), capped
    max_delay_seconds: float = Field(3600.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=1)
    timeout_seconds: float = Field(10.0, gt=0)
    tick_seconds: float = Field(1.0, gt=0)
    batch_size: int = Field(20, ge=1, le=1000)
    lease_seconds: float = Field(60.0, gt=0)  # a crashed worker's delivery is retried after it
    endpoint_cache_seconds: float = Field(5.0, ge=0)  # per-key default URL cache
    keep_seconds: float = Field(30 * 86400.0, gt=0)  # delivered and dead rows, then purged

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> WebhookSettings:
        if self.enabled and self.signing_secret is None and self.signing_secret_file is None:
            raise ValueError("webhooks.enabled needs signing_secret or signing_secret_file")
        return self


class BalanceSettings(_Section):
    """Balance reconciliation: the upstream team balance against the ledger's spend."""

    enabled: bool = False
    interval_seconds: float = Field(300.0, gt=0)
    team: str = "upstream"  # the label for the watcher key's upstream team
    # Proxy teams whose jobs bill to that upstream team; empty: every job in the ledger.
    ledger_teams: tuple[str, ...] = ()
    lease_seconds: float = Field(60.0, gt=0)


class AdmissionTeam(_Section):
    """One team's admission limits (unset fields: the section's defaults)."""

    concurrency: int | None = Field(None, ge=1, le=10_000)
    max_queue: int | None = Field(None, ge=0)
    max_wait_seconds: float | None = Field(None, gt=0)


class AdmissionSettings(_Section):
    """The admission queue: submits beyond a team's upstream concurrency wait in the store."""

    enabled: bool = False
    concurrency: int = Field(3, ge=1, le=10_000)  # upstream tasks in flight per team
    max_queue: int = Field(1000, ge=0)  # queued submits per team; beyond: 429
    max_wait_seconds: float = Field(3600.0, gt=0)  # a queued submit waiting longer expires
    teams: dict[str, AdmissionTeam] = Field(default_factory=dict)  # per-team overrides
    full_retry_after_seconds: int = Field(30, ge=1)  # Retry-After of a queue-full 429
    backoff_seconds: float = Field(2.0, gt=0)  # after an upstream 429 on dispatch (doubling)
    max_backoff_seconds: float = Field(60.0, gt=0)
    tick_seconds: float = Field(0.5, gt=0)  # how often the dispatcher looks for free slots
    lease_seconds: float = Field(10.0, gt=0)  # the dispatcher lease (one replica at a time)
    keep_seconds: float = Field(86400.0, gt=0)  # finished queue rows: q- ids answer this long
    # The share of an account's requests per minute its submits may use (the rest: a poll or
    # two per job, the model list, balance reads: they go with the same key and count alike).
    submit_rpm_share: float = Field(0.4, gt=0, le=1)

    def concurrency_of(self, team: str) -> int:
        override = self.teams.get(team)
        return override.concurrency if override and override.concurrency else self.concurrency

    def max_queue_of(self, team: str) -> int:
        override = self.teams.get(team)
        if override is not None and override.max_queue is not None:
            return override.max_queue
        return self.max_queue

    def max_wait_of(self, team: str) -> float:
        override = self.teams.get(team)
        if override is not None and override.max_wait_seconds is not None:
            return override.max_wait_seconds
        return self.max_wait_seconds

    @model_validator(mode="after")
    def _lease_over_tick(self) -> AdmissionSettings:
        if self.tick_seconds * 2 > self.lease_seconds:
            raise ValueError("admission.lease_seconds must be at least twice tick_seconds")
        return self


class StoreSettings(_Section):
    url: str = "sqlite:///modellix-proxy.db"
    # SQLite: at most this many writers share one COMMIT (one fsync); each still returns
    # only once its own writes are on disk. 1 = one COMMIT per writer.
    group_commit_max_writes: int = Field(64, ge=1, le=10_000)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class OpenAIVideoModel(_Section):
    """A name OpenAI clients send as ``model`` (``sora-2``...) and the Modellix slugs it means."""

    text: str | None = None  # the model for a prompt alone
    image: str | None = None  # the model when an input_reference is given


class OpenAIVideosSettings(_Section):
    """OpenAI's Videos API (``/v1/videos``) on the client port (``proxy.openai_videos``)."""

    enabled: bool = True
    default_model: str | None = None  # used when a request names no model (else 400)
    models: dict[str, OpenAIVideoModel] = Field(default_factory=dict)
    # the usual seconds from submit to a finished video, by pinned slug: ``progress`` of a
    # video in progress is the time elapsed over this (capped at 99)
    typical_seconds: dict[str, float] = Field(default_factory=dict)
    default_typical_seconds: float = Field(120.0, gt=0)
    max_list_limit: int = Field(100, ge=1, le=1000)
    # remix: a source video's family (its pinned slug without the -t2v/-i2v/... suffix, e.g.
    # ``bytedance/seedance-2.0``) to the video-to-video model that remakes it; merged over the
    # catalog's own ``<family>-v2v`` models (an empty target turns a family's remix off)
    remix_models: dict[str, str] = Field(default_factory=dict)
    # GET /v1/videos/{id}/content: one download's whole time (the file host's pace and the
    # client's together) and its bytes; past either the download ends (cut short if begun)
    content_max_seconds: float = Field(900.0, gt=0)
    content_max_bytes: int = Field(1024**3, ge=1)


class Settings(_Section):
    listen: ListenSettings = ListenSettings()
    admin: AdminSettings = AdminSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    public_origin: str | None = None
    trust_forwarded_headers: bool = False
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    # Serving processes sharing the client port (SO_REUSEPORT). auto: 1 on SQLite (one
    # process writes the file), the usable cores on PostgreSQL. See ``proxy.workers``.
    workers: int | Literal["auto"] = Field("auto", union_mode="left_to_right")
    # auto: uvloop when installed, else asyncio's own loop (MODELLIX_PROXY_EVENT_LOOP=asyncio)
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    models: ModelSettings = ModelSettings()
    pricing: PricingSettings = PricingSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    watcher: WatcherSettings = WatcherSettings()
    poll: PollSettings = PollSettings()
    retention: RetentionSettings = RetentionSettings()
    recovery: RecoverySettings = RecoverySettings()
    identity: IdentitySettings = IdentitySettings()
    limits: LimitSettings = LimitSettings()
    keys: KeySettings = KeySettings()
    governance: GovernanceSettings = GovernanceSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    webhooks: WebhookSettings = WebhookSettings()
    balance: BalanceSettings = BalanceSettings()
    admission: AdmissionSettings = AdmissionSettings()
    openai_videos: OpenAIVideosSettings = OpenAIVideosSettings()
    audit: AuditSettings = AuditSettings()

    @field_validator("workers")
    @classmethod
    def _workers(cls, workers: int | str) -> int | str:
        if isinstance(workers, int) and not 1 <= workers <= 256:
            raise ValueError("workers must be auto or 1 to 256")
        return workers

    @model_validator(mode="after")
    def _one_sqlite_writer(self) -> Settings:
        many = isinstance(self.workers, int) and self.workers > 1
        if many and self.store.url.startswith("sqlite"):
            raise ValueError(
                "workers: a SQLite store is written by one process; more than one worker "
                "needs PostgreSQL (store.url: postgresql://...)"
            )
        return self

    def admin_token(self) -> str | None:
        return _secret(self.admin.token, self.admin.token_file)

    def upstream_api_key(self) -> str | None:
        return _secret(self.upstream.api_key, self.upstream.api_key_file)

    def account_api_key(self, name: str) -> str | None:
        """The key of ``upstream.accounts.<name>`` (read from its file if it has one)."""
        account = self.upstream.accounts[name]
        return _secret(account.api_key, account.api_key_file)

    def webhook_signing_secret(self) -> str | None:
        return _secret(self.webhooks.signing_secret, self.webhooks.signing_secret_file)


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return None


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists each with its field path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_YAML11_WORDS = frozenset({"on", "off", "yes", "no", "y", "n"})


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_ENV:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        if raw.strip().lower() in _YAML11_WORDS:
            value: Any = raw.strip()  # "off" is a policy value here, not YAML 1.1's false
        else:
            try:
                value = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                value = raw
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and path[-1]
            in {
                "token",
                "api_key",
                "signing_secret",
            }
        ):
            value = raw  # a numeric-looking secret is still a string
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([f"{name}: conflicts with another override"])
        node[path[-1]] = value
    return tree


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it, mapping by mapping."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    return data


def load(path: Path | str | None, environ: Mapping[str, str]) -> Settings:
    """Settings from ``path`` (or ``$MODELLIX_PROXY_CONFIG``), then environment overrides."""
    if path is None and environ.get(CONFIG_PATH_ENV):
        path = environ[CONFIG_PATH_ENV]
    data = _read_file(Path(path)) if path is not None else {}
    data = deep_merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(err) for err in exc.errors()]) from exc


def _describe(err: Any) -> str:
    where = ".".join(str(part) for part in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']}"
