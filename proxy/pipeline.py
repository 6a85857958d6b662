"""The submit pipeline's stages, in order: the one place the order lives.

1. request id / correlation     (proxy.middleware, outermost)
2. identify the caller          (stages.identify)
3. pin the model                (stages.pin)
4. validate the input           (stages.validate)
5. price                        (stages.price)
6. idempotency                  (stages.idempotency)
7. budget                       (reserved for the governance stage)
8. upstream submit, with the retry buckets   (handlers.submit)
9. record the job before answering           (jobs.tracker)
"""

from __future__ import annotations

from proxy.stages.base import Stage


def ordered(*stages: Stage | None) -> tuple[Stage, ...]:
    """The stages that are configured, in the order given."""
    return tuple(stage for stage in stages if stage is not None)
