"""Refusals in OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``.

The submit pipeline refuses with ``ProxyError`` (the upstream's envelope); on this door the
same refusal is re-dressed (``OpenAIError.wrap``) with the status OpenAI uses for it, so
the OpenAI SDKs raise their usual exceptions. The refusal keeps its ``reason`` (the
rejection metric's label). A budget refusal is OpenAI's ``429 insufficient_quota`` and
says ``x-should-retry: false``, as does a submit whose outcome is unknown: the SDKs retry
429, 409 and 5xx by themselves, and neither of those is helped by a retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from proxy import errors
from proxy.jsoncodec import loads

# Validation fields as the OpenAI request names them (the rest keep their Modellix names).
PARAM_NAMES = {"prompt": "prompt", "duration": "seconds"}
NO_RETRY = {"x-should-retry": "false"}
# Our reasons that OpenAI has a code of its own for.
_CODES = {
    "missing_credentials": "invalid_api_key",
    "invalid_key": "invalid_api_key",
    "virtual_key_required": "invalid_api_key",
    "model_not_pinned": "model_not_found",
    "model_disabled": "model_not_found",
    "model_not_allowed": "model_not_found",
    "budget_exceeded": "insufficient_quota",
    "rate_limited": "rate_limit_exceeded",
}


def error_type(status: int) -> str:
    """OpenAI's ``type`` for an answer of ``status``."""
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def body(message: str, status: int, *, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}


class OpenAIError(errors.ProxyError):
    """A refusal rendered in OpenAI's envelope (the middleware renders every ``ProxyError``).

    Made with ``OpenAIError.of(status, ...)``: the status is a class attribute of every
    ``ProxyError``, so each status has its own subclass."""

    _by_status: ClassVar[dict[int, type[OpenAIError]]] = {}

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, headers=headers, reason=reason or code or "openai_refusal")
        self.param = param
        self.code = code
        self.kind = kind

    @classmethod
    def of(
        cls,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
        kind: str | None = None,
    ) -> OpenAIError:
        """The refusal ``message`` answered with ``status``."""
        klass = cls._by_status.get(status)
        if klass is None:
            klass = type(f"OpenAIError{status}", (OpenAIError,), {"status": status})
            cls._by_status[status] = klass
        return klass(message, param=param, code=code, reason=reason, headers=headers, kind=kind)

    def envelope(self, request_id: str | None = None) -> dict[str, Any]:
        doc = body(self.detail, self.status, param=self.param, code=self.code)
        if self.kind is not None:
            doc["error"]["type"] = self.kind
        return doc

    @classmethod
    def wrap(cls, err: errors.ProxyError, params: Mapping[str, str] | None = None) -> OpenAIError:
        """``err`` as OpenAI answers it; ``params`` maps Modellix field names to OpenAI's."""
        if isinstance(err, OpenAIError):
            return err
        reason = err.instance_reason
        status, kind = err.status, None
        headers = dict(err.headers)
        if isinstance(err, errors.BudgetExceeded):
            status, kind = 429, "insufficient_quota"
            headers.update(NO_RETRY)
        elif reason in ("submit_outcome_unknown", "idempotency_outcome_unknown"):
            headers.update(NO_RETRY)
        names = {**PARAM_NAMES, **(params or {})}
        problems = err.details.get("errors") if isinstance(err.details, dict) else None
        param: str | None = None
        message = err.message
        if isinstance(problems, list) and problems:
            described = []
            for problem in problems:
                if not isinstance(problem, dict):
                    continue
                field = str(problem.get("field", ""))
                named = names.get(field, field)
                param = param or (named or None)
                described.append(f"{named}: {problem.get('problem', '')}")
            if described:
                message = f"{err.message} ({'; '.join(described)})"
        return cls.of(
            status,
            message,
            param=param,
            code=_CODES.get(reason, reason),
            reason=reason,
            headers=headers,
            kind=kind,
        )


def upstream_refusal(
    status: int, raw: bytes, headers: Mapping[str, str] | None = None
) -> OpenAIError:
    """The upstream's own refusal of a submit (``{"code", "message"}``), in OpenAI's shape,
    with its ``Retry-After`` (which the SDKs honour when they retry a 429)."""
    message = "the upstream refused the request"
    try:
        doc = loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        message = doc["message"][:1000]
    code = "rate_limit_exceeded" if status == 429 else "upstream_refusal"
    kept = {k: v for k, v in (headers or {}).items() if k.lower() == "retry-after"}
    return OpenAIError.of(
        status if status >= 400 else 502, message, code=code, reason=code, headers=kept
    )


def not_found(video_id: str) -> OpenAIError:
    return OpenAIError.of(
        404, f"No video found with id '{video_id[:200]}'.", param="video_id", code="not_found"
    )


def invalid(message: str, param: str | None, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError.of(400, message, param=param, code=code, reason="invalid_input")
