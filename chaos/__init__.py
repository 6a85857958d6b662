"""The fault suite: real processes, real faults, the money invariant measured from outside.

Every task the upstream creates through the proxy is in the ledger or covered by an
``unknown`` record; nothing is bought twice; no budget reservation or concurrency
slot is leaked; the proxy never answers a 500 of its own making.

Modules: ``relay`` (the TCP relay in front of PostgreSQL), ``upstream`` (the
simulator process with a purchase journal), ``processes`` (upstream and proxy
processes), ``rig`` (one scenario's world), ``client`` (clients that retry as the documents say),
``scenarios`` (the fault kinds), ``runner`` (burst + fault + settle + probe),
``accounting`` (the figures), ``report`` (the table and totals), ``soak`` (store
growth under steady traffic). Run with ``python -m chaos`` (``--help``).
"""
