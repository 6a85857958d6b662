"""The admin route table: every route the admin app serves has a role, and only reads are
open to viewers."""

from __future__ import annotations

from harness.config import settings_for
from proxy.admin import create_admin_app
from proxy.admin_access import ROUTE_ROLES
from proxy.app import create_app
from proxy.state import RUNTIME
from proxy.stores.audit_records import Role
from proxy.telemetry.metrics import Metrics


def _served() -> set[tuple[str, str]]:
    settings = settings_for("http://127.0.0.1:9", admin={"enabled": True, "token": "t" * 24})
    app = create_admin_app(settings, Metrics(), create_app(settings)[RUNTIME])
    served = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/admin/") and route.method != "HEAD":
            served.add((route.method, path))
    return served


def test_every_admin_route_has_a_role_and_every_role_entry_a_route() -> None:
    """No admin route falls through the table (it would need operator), and no entry is stale."""
    served = _served()
    assert served == set(ROUTE_ROLES), served ^ set(ROUTE_ROLES)


def test_viewers_only_read_and_finance_only_adds_budgets() -> None:
    """Every viewer route is a GET; finance's own routes are exactly the budget changes."""
    assert {m for (m, _), role in ROUTE_ROLES.items() if role is Role.VIEWER} == {"GET"}
    finance = {key for key, role in ROUTE_ROLES.items() if role is Role.FINANCE}
    assert finance == {("PUT", "/admin/budgets/{name}"), ("DELETE", "/admin/budgets/{name}")}


def test_roles_include_the_ones_below() -> None:
    """An operator may do what finance may, finance what a viewer may; never the reverse."""
    assert Role.OPERATOR.allows(Role.FINANCE)
    assert Role.FINANCE.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.FINANCE)
    assert not Role.FINANCE.allows(Role.OPERATOR)
