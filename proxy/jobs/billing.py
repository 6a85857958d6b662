"""The upstream's actual charge on a successful task: ``data.billing``.

A successful task answer may carry ``"billing": {"status": "succeeded", "amount": "0.2400"}``
(the amount a decimal string of US dollars). The charge is read only when it is plainly one:
a non-negative decimal (a string, or a JSON number) with at most six decimal places, and a
status that is absent or says the billing succeeded. Anything else is no charge: the job's
final cost is then its estimate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from proxy import money

_SUCCEEDED = frozenset({"succeeded", "success", "completed", "paid", "charged"})
_AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,6})?$")


def charge_micros(data: Mapping[str, Any]) -> int | None:
    """The charge in micro-dollars a task's ``data`` carries, or ``None``."""
    billing = data.get("billing")
    if not isinstance(billing, Mapping):
        return None
    status = billing.get("status")
    if status is not None and (not isinstance(status, str) or status.lower() not in _SUCCEEDED):
        return None
    amount = billing.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, str | int | float):
        return None
    text = amount.strip() if isinstance(amount, str) else repr(amount)
    if not _AMOUNT.match(text):
        return None
    return money.parse(text)
