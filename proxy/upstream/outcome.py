"""What a paid submit's upstream outcome means: one reading for every sender.

The submit handler (a direct send) and the admission dispatcher (a queued send) both
turn ``attempts.send``'s ``Outcome`` into one of a few verdicts with this pure function,
so the rule "a submit that may have created a task is never resent" and the words the
ledger, the logs and the client see exist once:

======================  ==========================================================
verdict                 meaning
======================  ==========================================================
``ACCEPTED``            a 2xx with a usable task id: the task exists
``UNKNOWN``             sent, no usable answer: a task may exist; never resent
``NOT_SENT``            the request never left the proxy: nothing exists
``BUSY``                the upstream's 429 (its concurrency limit): nothing created
``RETRY_LATER``         a transient refusal after the retries: nothing created
``REFUSED``             a definite refusal (400, 402, 422...): nothing created
======================  ==========================================================

What each sender does with a verdict is its own policy (the handler answers the
client, the dispatcher requeues), never a second reading of the outcome.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from proxy.upstream.attempts import Outcome
from proxy.upstream.retry import Bucket

# What the official client accepts as a task id.
TASK_ID = re.compile(r"^[A-Za-z0-9._~:/+@=-]{1,512}$")


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    NOT_SENT = "not_sent"
    BUSY = "busy"
    RETRY_LATER = "retry_later"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Reading:
    """One outcome read: the verdict, what the ledger and the logs record (``detail``),
    what the client is told (``told``), and the task id and answer of an accepted submit."""

    verdict: Verdict
    detail: str
    told: str
    task_id: str | None = None
    doc: dict[str, Any] | None = None
    status: int | None = None  # the upstream's HTTP status, when it answered

    @property
    def created_nothing(self) -> bool:
        """Surely no task: the submit may be sent again (now or from the queue)."""
        return self.verdict in (Verdict.NOT_SENT, Verdict.BUSY, Verdict.RETRY_LATER)


def accepted_task_id(body: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """The task id of a 2xx submit answer, or ``None`` when the answer is unusable."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return None, None
    task_id = doc["data"].get("task_id")
    if isinstance(task_id, str) and TASK_ID.match(task_id):
        return task_id, doc
    return None, None


def read_outcome(outcome: Outcome) -> Reading:
    """The verdict on one paid submit's outcome (see the module's table)."""
    reply = outcome.reply
    if reply is None:
        failure = outcome.failure
        detail = failure.detail if failure is not None else "no answer"
        if outcome.bucket is Bucket.UNKNOWN:
            said = f"the Modellix API did not answer ({detail})"
            return Reading(Verdict.UNKNOWN, said, said)
        return Reading(Verdict.NOT_SENT, f"not sent: {detail}", f"not sent: {detail}")
    status = reply.status
    if outcome.bucket is Bucket.SUCCESS:
        task_id, doc = accepted_task_id(reply.body)
        if task_id is None or doc is None:
            return Reading(
                Verdict.UNKNOWN,
                "2xx answer without a usable task id",
                "the Modellix API accepted the submit but its answer was unusable",
                status=status,
            )
        return Reading(Verdict.ACCEPTED, f"task {task_id}", "", task_id, doc, status)
    answered = f"upstream answered HTTP {status}"
    if status == 429:
        return Reading(Verdict.BUSY, answered, answered, status=status)
    if outcome.bucket is Bucket.TRANSIENT:
        return Reading(Verdict.RETRY_LATER, answered, answered, status=status)
    if outcome.bucket is Bucket.PERMANENT:
        return Reading(Verdict.REFUSED, answered, answered, status=status)
    return Reading(
        Verdict.UNKNOWN,
        answered,
        f"the Modellix API answered the submit with HTTP {status}",
        status=status,
    )
