"""The admin listener: ``/metrics`` and the operator API, apart from client traffic.

``/metrics`` is open (scrapers rarely carry tokens; bind the admin listener to
a private interface). Everything under ``/admin/`` needs
``Authorization: Bearer <admin token>``; without a configured token the admin
API accepts only stored admin tokens (``proxy.audit.tokens``). What each role may call is
in ``proxy.admin_access``; every change is recorded in the audit trail (``proxy.audit``).

    GET /admin/jobs/{task_id}                     one job, with its history
    GET /admin/jobs?status=&team=&project=&since=&until=&limit=&after=
    GET /admin/spend?since=&until=&group_by=day,account,team,project,model,status

plus keys, budgets and the report (``proxy.governance.admin_api``), intents,
reservations and reconciling ``unknown`` records (``proxy.admin_recovery``), and the
published schemas (``proxy.admin_schemas``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from proxy.admin_access import ADMIN_CREDENTIALS, admin_access, admin_refusals
from proxy.admin_input import epoch_seconds
from proxy.admin_recovery import add_routes as add_recovery_routes
from proxy.admin_schemas import add_routes as add_schema_routes
from proxy.admin_views import job_json
from proxy.admission.admin_api import add_routes as add_admission_routes
from proxy.audit.admin_api import add_routes as add_audit_routes
from proxy.audit.tokens import AdminCredentials
from proxy.config import Settings
from proxy.errors import BadRequest, NotFound
from proxy.governance.accounts_api import add_routes as add_account_routes
from proxy.governance.admin_api import add_routes as add_governance_routes
from proxy.governance.report import parse_group_by
from proxy.handlers.health import healthz
from proxy.money import sample
from proxy.runtime import Runtime
from proxy.state import ADMIN_RUNTIME
from proxy.stores.base import Store
from proxy.stores.records import GROUP_KEYS, JobStatus
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.multiprocess import scrape_registry

ADMIN_METRICS = web.AppKey("admin_metrics", Metrics)
ADMIN_REGISTRY = web.AppKey("admin_registry", CollectorRegistry)


async def metrics_handler(request: web.Request) -> web.Response:
    registry = request.app[ADMIN_REGISTRY]
    if "application/openmetrics-text" in request.headers.get("Accept", ""):
        body = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
        return web.Response(body=body, headers={"Content-Type": OPENMETRICS})
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def _store(request: web.Request) -> Store:
    return request.app[ADMIN_RUNTIME].open_store()


async def get_job(request: web.Request) -> web.Response:
    task_id = request.match_info["task_id"]
    job = await _store(request).get_job(task_id)
    if job is None:
        raise NotFound(f"no job with task id {task_id!r}")
    return web.json_response(job_json(job))


async def list_jobs(request: web.Request) -> web.Response:
    status_raw = request.query.get("status")
    try:
        status = JobStatus(status_raw) if status_raw else None
    except ValueError:
        allowed = ", ".join(s.value for s in JobStatus)
        raise BadRequest(f"status must be one of {allowed}") from None
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
        page = await _store(request).list_jobs(
            status=status,
            team=request.query.get("team") or None,
            project=request.query.get("project") or None,
            since=epoch_seconds(request, "since"),
            until=epoch_seconds(request, "until"),
            limit=limit,
            after=request.query.get("after") or None,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response(
        {"jobs": [job_json(job) for job in page.jobs], "next_cursor": page.next_cursor}
    )


async def spend(request: web.Request) -> web.Response:
    now = time.time()
    given_since, given_until = epoch_seconds(request, "since"), epoch_seconds(request, "until")
    since = now - 30 * 86400 if given_since is None else given_since
    until = now + 1 if given_until is None else given_until
    try:
        group_by = parse_group_by(request.query.get("group_by", ""), GROUP_KEYS)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    rows = await _store(request).spend_summary(since, until, group_by)
    out = []
    for row in rows:
        doc = dataclasses.asdict(row)
        doc["estimated_cost_usd"] = sample(row.estimated_cost_micros)
        doc["final_cost_usd"] = sample(row.final_cost_micros)
        out.append(doc)
    total = sum(row.final_cost_micros for row in rows)
    return web.json_response(
        {
            "since": since,
            "until": until,
            "group_by": group_by,
            "rows": out,
            "total_final_cost_micros": total,
            "total_final_cost_usd": sample(total),
        }
    )


def create_admin_app(
    settings: Settings, metrics: Metrics, runtime: Runtime, *, metrics_dir: Path | None = None
) -> web.Application:
    """``metrics_dir``: the workers' multiprocess directory (``serve --workers N``): /metrics
    then reports the whole process group (``proxy.telemetry.multiprocess``)."""
    app = web.Application(middlewares=[admin_access])
    app.on_response_prepare.append(admin_refusals)
    app[ADMIN_METRICS] = metrics
    app[ADMIN_REGISTRY] = (
        metrics.registry if metrics_dir is None else scrape_registry(metrics, metrics_dir)
    )
    app[ADMIN_RUNTIME] = runtime
    reads = metrics.admin_token_reads
    app[ADMIN_CREDENTIALS] = AdminCredentials(
        settings.admin_token(),
        lambda: runtime.store,
        settings.admin.token_cache_seconds,
        settings.admin.unknown_token_seconds,
        on_read=lambda cause: reads.labels(cause).inc(),
    )
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/admin/jobs", list_jobs)
    add_recovery_routes(app)
    app.router.add_get("/admin/jobs/{task_id:.+}", get_job)
    app.router.add_get("/admin/spend", spend)
    add_governance_routes(app)
    add_account_routes(app, settings.balance.team)
    add_admission_routes(app)
    add_schema_routes(app)
    add_audit_routes(app)
    return app
