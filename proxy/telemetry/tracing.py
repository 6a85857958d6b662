"""OpenTelemetry traces: the tracer provider and its exporters, set up from ``OTEL_*`` variables.

Nothing is exported unless ``OTEL_TRACES_EXPORTER`` or an OTLP endpoint says so (OTLP over
HTTP/protobuf); with nowhere to send spans, nothing is sampled. The spans themselves are in
``proxy.telemetry.spans``, W3C propagation in ``proxy.telemetry.traceparent``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.util.re import parse_env_headers
from opentelemetry.util.types import AttributeValue

SCOPE = "modellix-proxy"


@dataclass
class Tracing:
    """The proxy's tracer provider and tracer; ``exporting`` says whether spans leave."""

    provider: TracerProvider
    exporting: bool
    tracer: trace.Tracer = field(init=False)

    def __post_init__(self) -> None:
        self.tracer = self.provider.get_tracer(SCOPE)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export finished spans now (blocking: from a loop, run it in a thread)."""
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop every span processor and exporter."""
        self.provider.shutdown()


def setup_tracing(
    service_name: str,
    environ: Mapping[str, str],
    *,
    exporter: SpanExporter | None = None,
    service_version: str | None = None,
) -> Tracing:
    """Build a provider from ``environ``; an explicit ``exporter`` (tests) exports synchronously."""
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    attributes: dict[str, AttributeValue] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    }
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    if service_version is not None:
        attributes["service.version"] = service_version
    attributes["service.name"] = environ.get("OTEL_SERVICE_NAME") or service_name
    exporters = [] if disabled or exporter is not None else _exporters(environ)
    # With nowhere to send spans, sample none: spans still carry valid ids (for log lines
    # and the traceparent sent upstream) but record nothing, which keeps them cheap.
    off = disabled or (exporter is None and not exporters)
    sampler = ALWAYS_OFF if off else _sampler(environ)
    provider = TracerProvider(resource=Resource(attributes), sampler=sampler)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return Tracing(provider, exporting=True)
    for configured in exporters:
        provider.add_span_processor(BatchSpanProcessor(configured))
    return Tracing(provider, exporting=bool(exporters))


def disabled_tracing() -> Tracing:
    """Tracing that samples nothing and exports nothing (parts built without a provider)."""
    return Tracing(TracerProvider(sampler=ALWAYS_OFF), exporting=False)


def _sampler(environ: Mapping[str, str]) -> Sampler:
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    ratio = float(environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0") or "1.0")
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    if name not in samplers:
        raise ValueError(f"unsupported OTEL_TRACES_SAMPLER {name!r}")
    return samplers[name]


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    endpoint = _pick(environ, "ENDPOINT")
    raw = environ.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    if "none" in names:
        return []
    if unknown := set(names) - {"otlp", "console"}:
        raise ValueError(
            f"unsupported OTEL_TRACES_EXPORTER {sorted(unknown)} (otlp, console, none)"
        )
    return [_otlp_exporter(environ) if n == "otlp" else ConsoleSpanExporter() for n in names]


def _pick(environ: Mapping[str, str], suffix: str) -> str | None:
    traces = environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{suffix}")
    return traces or environ.get(f"OTEL_EXPORTER_OTLP_{suffix}")


def _otlp_exporter(environ: Mapping[str, str]) -> OTLPSpanExporter:
    protocol = _pick(environ, "PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        raise ValueError(f"unsupported OTLP protocol {protocol!r}: only http/protobuf")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
        endpoint = base.rstrip("/") + "/v1/traces"
    timeout_ms = _pick(environ, "TIMEOUT")  # milliseconds, as the specification says
    return OTLPSpanExporter(
        endpoint=endpoint,
        certificate_file=_pick(environ, "CERTIFICATE"),
        headers=parse_env_headers(_pick(environ, "HEADERS") or "", liberal=True),
        timeout=float(timeout_ms) / 1000 if timeout_ms else None,
    )
