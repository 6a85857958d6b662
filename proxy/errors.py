"""Errors the proxy answers with, each rendered in the upstream's own envelope.

Every refusal a stage makes is a ``ProxyError`` subclass with an HTTP status, a
stable machine code (``reason``, also the ``reason`` label of the rejection
metric) and the upstream's message category. One outer layer renders them all
as ``{"code": <status>, "message": "<Category>: <detail>", ...details}``.

    ProxyError
    ├── BadRequest (400)
    │   ├── InvalidInput          input refused by the catalog: ``errors`` lists every problem
    │   └── MalformedJSON         body is not JSON / not an object
    ├── Unauthorized (401)
    ├── BudgetExceeded (402)
    ├── Forbidden (403)
    ├── NotFound (404)
    │   └── ModelNotFound         unknown or unpinned slug under the strict policy
    ├── MethodNotAllowed (405)    a known route, another method (``Allow`` header set)
    ├── Conflict (409)            idempotency key in flight / outcome unknown
    ├── PayloadTooLarge (413)
    ├── IdempotencyMismatch (422) same key, different request
    ├── TooManyRequests (429)
    ├── InternalError (500)
    ├── UpstreamUnavailable (502) upstream unreachable or answered garbage
    ├── ServiceUnavailable (503)  proxy not ready / shutting down
    └── UpstreamTimeout (504)     no answer in time; for a submit: outcome unknown
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ProxyError(Exception):
    """Base of every error the proxy renders itself."""

    status: ClassVar[int] = 500
    category: ClassVar[str] = "Internal error"
    reason: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})
        self.instance_reason = reason or self.reason

    @property
    def message(self) -> str:
        return f"{self.category}: {self.detail}"

    def envelope(self, request_id: str | None = None) -> dict[str, Any]:
        """The upstream-shaped error body, plus machine-readable details."""
        body: dict[str, Any] = {"code": self.status, "message": self.message}
        body["error_type"] = self.instance_reason
        body.update(self.details)
        if request_id is not None:
            body["request_id"] = request_id
        return body


class BadRequest(ProxyError):
    status = 400
    category = "Invalid parameters"
    reason = "bad_request"


class InvalidInput(BadRequest):
    """The body breaks the catalog's rules; ``details['errors']`` lists each problem."""

    reason = "invalid_input"

    def __init__(
        self,
        detail: str,
        *,
        category: str = "Invalid parameters",
        errors: list[dict[str, Any]] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(detail, details={"errors": list(errors or [])}, reason=reason)
        self._category = category

    @property
    def message(self) -> str:
        return f"{self._category}: {self.detail}"


class MalformedJSON(BadRequest):
    category = "Invalid format"
    reason = "malformed_json"


class Unauthorized(ProxyError):
    status = 401
    category = "Authentication failed"
    reason = "unauthorized"


class BudgetExceeded(ProxyError):
    status = 402
    category = "Budget exceeded"
    reason = "budget_exceeded"


class Forbidden(ProxyError):
    status = 403
    category = "Forbidden"
    reason = "forbidden"


class NotFound(ProxyError):
    status = 404
    category = "Not found"
    reason = "not_found"


class ModelNotFound(NotFound):
    category = "Model not found"
    reason = "model_not_pinned"


class MethodNotAllowed(ProxyError):
    status = 405
    category = "Method not allowed"
    reason = "method_not_allowed"


class Conflict(ProxyError):
    status = 409
    category = "Conflict"
    reason = "conflict"


class PayloadTooLarge(ProxyError):
    status = 413
    category = "Payload too large"
    reason = "payload_too_large"


class IdempotencyMismatch(ProxyError):
    status = 422
    category = "Idempotency key reused"
    reason = "idempotency_mismatch"


class TooManyRequests(ProxyError):
    status = 429
    category = "Rate limit exceeded"
    reason = "rate_limited"


class InternalError(ProxyError):
    status = 500
    category = "Internal error"
    reason = "internal"


class UpstreamUnavailable(ProxyError):
    status = 502
    category = "Bad gateway"
    reason = "upstream_unavailable"


class ServiceUnavailable(ProxyError):
    status = 503
    category = "Service unavailable"
    reason = "unavailable"


class UpstreamTimeout(ProxyError):
    status = 504
    category = "Gateway timeout"
    reason = "upstream_timeout"
