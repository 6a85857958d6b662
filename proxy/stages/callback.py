"""Completion webhook target: ``X-Modellix-Callback-Url``, or the caller's default URL.

Runs after idempotency (a replay needs no callback) and before the budget. The URL must be
http(s) with a host that resolves only to public addresses (the image pre-flight's SSRF
guard, ``proxy.catalog.netguard``), unless the host is in ``webhooks.allow_hosts``; the
worker checks it again when it connects (the answer may have changed). Refusals are 400s
with reason ``bad_callback_url``; no upstream call. With webhooks off, the header is
refused (``callbacks_disabled``) rather than silently ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from proxy.catalog.netguard import GuardError, HostGuard, parse_host
from proxy.catalog.preflight import parse_image_url
from proxy.config import WebhookSettings
from proxy.context import RequestContext
from proxy.errors import BadRequest
from proxy.governance.keys import carries_proxy_token
from proxy.stores.base import WebhookStore

HEADER = "X-Modellix-Callback-Url"
_CACHE_LIMIT = 10_000


class CallbackStage:
    name = "callback"

    def __init__(
        self,
        settings: WebhookSettings,
        store: WebhookStore,
        guard: HostGuard,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._guard = guard
        self._clock = clock
        self._defaults: dict[str, tuple[float, str | None]] = {}

    async def __call__(self, ctx: RequestContext) -> None:
        header = ctx.headers.get(HEADER)
        if not self._settings.enabled:
            if header is not None:
                raise BadRequest(
                    f"{HEADER} was sent but completion webhooks are not enabled on this proxy",
                    reason="callbacks_disabled",
                )
            return
        assert ctx.caller is not None
        url = header.strip() if header is not None else await self._default(ctx.caller.identity)
        if url is None:
            return
        await check_callback_url(url, self._guard, require_https=self._settings.require_https)
        ctx.callback_url = url

    async def _default(self, caller: str) -> str | None:
        now = self._clock()
        cached = self._defaults.get(caller)
        if cached is not None and cached[0] > now:
            return cached[1]
        url = await self._store.get_webhook_endpoint(caller)
        if len(self._defaults) >= _CACHE_LIMIT:
            self._defaults.clear()
        self._defaults[caller] = (now + self._settings.endpoint_cache_seconds, url)
        return url


async def check_callback_url(url: str, guard: HostGuard, *, require_https: bool) -> None:
    """Raise ``BadRequest`` unless ``url`` is a callback the proxy may POST to."""
    if not (url.isascii() and url.isprintable()):
        raise BadRequest(
            f"{HEADER} must be printable ASCII (percent-encode the rest)",
            reason="bad_callback_url",
        )
    if carries_proxy_token(url):  # a proxy key never leaves the proxy, not even to a receiver
        raise BadRequest(f"{HEADER} must not carry a proxy key", reason="bad_callback_url")
    try:
        parsed = parse_image_url(url)
    except ValueError as exc:
        raise BadRequest(f"{HEADER} {exc}", reason="bad_callback_url") from None
    host = parsed.raw_host or ""
    if parsed.user is not None or parsed.password is not None:
        raise BadRequest(f"{HEADER} must not carry credentials", reason="bad_callback_url")
    allowed = guard.name_allowed(host)
    if require_https and parsed.scheme != "https" and not allowed:
        raise BadRequest(f"{HEADER} must be an https URL", reason="bad_callback_url")
    if allowed and parse_host(host) is None:
        return
    try:
        await guard.resolve(host)
    except GuardError as exc:
        raise BadRequest(f"{HEADER} is refused: {exc.detail}", reason="bad_callback_url") from None
