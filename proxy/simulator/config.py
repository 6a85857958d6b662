"""Settings of the Modellix upstream simulator.

Everything the simulator does that could vary between a unit test, the demo and
a benchmark lives here, in one frozen model: lifecycle timing, limits, money,
keys, fault rates and prices. Nothing reads the environment.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Rate = float
UnitPrice = Decimal | dict[str, Decimal]
"""A slug's price: one figure, or a figure per resolution (keys compared case-insensitively).

Video models are priced in USD per output second, image models in USD per image,
text-to-speech per million characters, speech-to-text per second of input audio.
A per-resolution mapping may carry a ``"*"`` entry used for any other resolution.
"""

MIB = 1024 * 1024
DAY = 86400.0


class Tier(BaseModel):
    """One funding tier: from ``min_topup_usd`` of total top-ups, these limits
    (``proxy.simulator.limits`` applies them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_topup_usd: Decimal = Field(ge=0)
    concurrency: int = Field(ge=0)
    rpm: int = Field(ge=0)


_TABLE = ((0, 2, 100), (10, 10, 100), (50, 20, 200), (100, 30, 300), (500, 50, 500))
DEFAULT_TIERS: tuple[Tier, ...] = tuple(
    Tier(min_topup_usd=Decimal(usd), concurrency=c, rpm=r)
    for usd, c, r in (*_TABLE, (1000, 100, 1000))
)
"""Top-ups from $0, $10, $50, $100, $500 and $1,000."""


class TeamAccount(BaseModel):
    """One upstream team (an account: the team of its API keys) set apart from the others:
    its own starting balance and limits (unset fields: the simulator-wide ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    balance_usd: Decimal | None = Field(default=None, ge=0)
    concurrency: int | None = Field(default=None, ge=0)
    """Tasks in flight at once; 0 means unlimited. Wins over any tier."""
    rpm: int | None = Field(default=None, ge=0)
    models: frozenset[str] | None = None
    """The slugs this team is served (listed and accepted); ``None``: every model. Modellix
    lists models per API key (early access, regions), so two accounts can differ."""
    listed_prices: dict[str, UnitPrice] = Field(default_factory=dict)
    """Display prices this team's model list shows, by slug (the charge is unchanged)."""


class SchemaChange(BaseModel):
    """A change to a model's published request schema (see ``Listing.change_schema``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    properties: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Properties added, or replaced whole, by name."""
    remove: list[str] = Field(default_factory=list)
    required: list[str] | None = None
    """The new ``required`` list; ``None`` keeps the current one (minus removed fields)."""


class SimulatorConfig(BaseModel):
    """Frozen settings of one simulator instance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    pending_seconds: float = Field(default=1.0, ge=0)
    processing_seconds: tuple[float, float] = (2.0, 4.0)
    retention_seconds: float = Field(default=7 * DAY, gt=0)
    """How long a finished task can be queried (then 404); ``result_expires_at`` is its end."""
    concurrency_limit: int = Field(default=3, ge=0)
    """Team-wide cap on pending + processing tasks; 0 means unlimited."""
    rpm_limit: int = Field(default=0, ge=0)
    """Team-wide API requests per minute; 0 means unlimited (and no X-RateLimit headers)."""
    kling_rpm_limit: int | None = Field(default=None, ge=0)
    """Kling submits per minute and team; ``None``: 100 under a tier, else unlimited."""
    tier: Literal["auto"] | int | None = None
    """Limits by funding tier (``proxy.simulator.limits``): ``None`` (fixed limits above),
    ``"auto"`` (by each team's top-ups) or a tier index."""
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    topups_usd: dict[str, Decimal] = Field(default_factory=dict)
    """Total top-ups per team (for ``tier: auto``); a team not named: ``initial_balance_usd``."""
    initial_balance_usd: Decimal = Field(default=Decimal(100), ge=0)
    api_keys: dict[str, str] | None = None
    """Key -> team name. ``None``: any non-empty Bearer token is valid, team ``default``."""
    teams: dict[str, TeamAccount] = Field(default_factory=dict)
    """Per-team starting balance and limits: several Modellix accounts behind one origin,
    each key's team with its own balance, concurrency and bill."""

    rate_500: Rate = Field(default=0.0, ge=0, le=1)
    rate_503: Rate = Field(default=0.0, ge=0, le=1)
    rate_429: Rate = Field(default=0.0, ge=0, le=1)
    rate_reset_before_create: Rate = Field(default=0.0, ge=0, le=1)
    rate_reset_after_create: Rate = Field(default=0.0, ge=0, le=1)
    rate_stall: Rate = Field(default=0.0, ge=0, le=1)
    rate_malformed: Rate = Field(default=0.0, ge=0, le=1)
    rate_task_failed: Rate = Field(default=0.0, ge=0, le=1)
    rate_content_policy: Rate = Field(default=0.0, ge=0, le=1)
    rate_task_cancelled: Rate = Field(default=0.0, ge=0, le=1)
    stall_seconds: float = Field(default=30.0, ge=0)

    task_id_prefix: str = "task-"
    prices: dict[str, UnitPrice] = Field(default_factory=dict)
    """Overrides of the model table's prices, by slug: charged, and shown in the model list."""
    listed_prices: dict[str, UnitPrice] = Field(default_factory=dict)
    """Display prices that differ from the charge, by slug (a stale model list)."""
    schema_changes: dict[str, SchemaChange] = Field(default_factory=dict)
    """Changes to published request schemas, by slug, applied at start."""
    report_billing: bool = True
    """``data.billing`` in finished task answers (third-party documented: a proxy must cope
    without it)."""
    bill_failed: bool = False
    max_upload_bytes: int = Field(default=16 * MIB, gt=0)
    max_files_per_team: int = Field(default=10, ge=0)
    """Files a team keeps at once (0: unlimited); deleting one frees its place."""
    max_concurrent_uploads: int = Field(default=2, ge=0)
    """Uploads in flight per team (0: unlimited); one more answers 429."""
    file_retention_seconds: float = Field(default=7 * DAY, gt=0)
    file_origin: str = "https://file.modellix.ai"

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        low, high = self.processing_seconds
        if low < 0 or high < low:
            raise ValueError("processing_seconds must be (min, max) with 0 <= min <= max")
        request_faults = (
            self.rate_500
            + self.rate_503
            + self.rate_429
            + self.rate_reset_before_create
            + self.rate_reset_after_create
            + self.rate_stall
            + self.rate_malformed
        )
        if request_faults > 1:
            raise ValueError("the request fault rates must sum to at most 1")
        if self.rate_task_failed + self.rate_content_policy + self.rate_task_cancelled > 1:
            raise ValueError(
                "rate_task_failed + rate_content_policy + rate_task_cancelled must be at most 1"
            )
        if not self.tiers or self.tiers[0].min_topup_usd != 0:
            raise ValueError("tiers must start with a tier from $0")
        thresholds = [t.min_topup_usd for t in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tiers must have increasing min_topup_usd")
        if isinstance(self.tier, int) and not 0 <= self.tier < len(self.tiers):
            raise ValueError(f"tier must be 'auto' or 0..{len(self.tiers) - 1}")
        from proxy.simulator.models import MODELS  # deferred: the table loads data files

        for field in ("prices", "listed_prices", "schema_changes"):
            unknown = sorted(s for s in getattr(self, field) if s.lower() not in MODELS)
            if unknown:
                raise ValueError(f"{field}: the simulator serves no model {unknown[0]!r}")
        for team, spec in self.teams.items():
            for name, slugs in (
                ("models", spec.models or ()),
                ("listed_prices", spec.listed_prices),
            ):
                unknown = sorted(s for s in slugs if s.lower() not in MODELS)
                if unknown:
                    raise ValueError(f"teams.{team}.{name}: the simulator serves no {unknown[0]!r}")
        return self

    @classmethod
    def fast(cls, **overrides: object) -> SimulatorConfig:
        """Sub-second lifecycle for tests and quick demos."""
        values: dict[str, object] = {
            "pending_seconds": 0.05,
            "processing_seconds": (0.1, 0.2),
            "stall_seconds": 5.0,
        }
        values.update(overrides)
        return cls.model_validate(values)

    @classmethod
    def realistic(cls, **overrides: object) -> SimulatorConfig:
        """Minutes-long lifecycle, like real video generation."""
        values: dict[str, object] = {"pending_seconds": 20.0, "processing_seconds": (60.0, 240.0)}
        values.update(overrides)
        return cls.model_validate(values)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> SimulatorConfig:
        """The named preset (``default``, ``fast`` or ``realistic``)."""
        if name == "fast":
            return cls.fast(**overrides)
        if name == "realistic":
            return cls.realistic(**overrides)
        if name == "default":
            return cls.model_validate(overrides)
        raise ValueError(f"unknown simulator preset {name!r}")
