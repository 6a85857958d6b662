"""What happens to a job's reservations: spend at terminal, or released.

- success: the reservation becomes spend at the job's final cost;
- failed: released (or spent, with ``watcher.bill_failed``);
- expired: released (the ledger does not count it as spend either);
- unknown (sent, no answer): kept until the job is reconciled or expires;
- a submit that never became a job (refused, failed before or at the upstream):
  released at once.

The per-key concurrency slot is freed whatever the end (an ``unknown`` record frees it
at once: it limits jobs in flight, and an unknown outcome is not followed).
"""

from __future__ import annotations

from proxy.context import RequestContext
from proxy.stores.base import Store
from proxy.stores.records import JobRecord, JobStatus


class Settlement:
    def __init__(self, store: Store, bill_failed: bool) -> None:
        self._store = store
        self._bill_failed = bill_failed

    async def release(self, ctx: RequestContext) -> None:
        """Free what a submit holds that did not become a job."""
        if ctx.reservation_id is not None:
            await self._store.budget_release(ctx.reservation_id)
            ctx.reservation_id = None
        if ctx.slot_reservation_id is not None:
            await self._store.budget_release(ctx.slot_reservation_id)
            ctx.slot_reservation_id = None

    @staticmethod
    def handed_to_job(ctx: RequestContext) -> None:
        """The job record now carries the reservations; the request no longer owns them."""
        ctx.reservation_id = None
        ctx.slot_reservation_id = None

    async def settle(self, job: JobRecord) -> None:
        """Turn a terminal job's reservation into spend, or release it; free its slot."""
        if job.reservation_id is not None:
            spend = job.status is JobStatus.SUCCESS or (
                job.status is JobStatus.FAILED and self._bill_failed
            )
            if spend:
                await self._store.budget_settle(job.reservation_id, job.final_cost_micros or 0)
            else:
                await self._store.budget_release(job.reservation_id)
        if job.slot_reservation_id is not None:
            await self._store.budget_release(job.slot_reservation_id)
