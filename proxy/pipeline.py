"""The submit pipeline's stages, in order: the one place the order lives.

1. request id / correlation     (proxy.middleware, outermost)
2. identify the caller          (stages.identify: virtual key or key fingerprint)
3. pin the model                (stages.pin)
4. fingerprint the input        (stages.fingerprint: canonical hash)
5. idempotency                  (stages.idempotency: a replay needs no further work, and never
                                 depends on the network, so it comes before validation)
6. validate the input           (stages.validate: schema, cross-field rules, media, SSRF guard)
7. price                        (stages.price)
8. budget                       (stages.budget: atomic reservation; per-key concurrency slot)
9. upstream submit, with the retry buckets   (handlers.submit)
10. record the job before answering          (jobs.tracker)
"""

from __future__ import annotations

from proxy.stages.base import Stage


def ordered(*stages: Stage | None) -> tuple[Stage, ...]:
    """The stages that are configured, in the order given."""
    return tuple(stage for stage in stages if stage is not None)
