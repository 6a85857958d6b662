"""The admission queue: submits beyond a team's upstream concurrency wait in the store.

- ``desk``: the request side (admit or queue a submit; requeue a direct send refused
  with 429; the ``q-`` poll and ``DELETE`` answers);
- ``dispatcher``: the background loop (one replica at a time, by lease) that sends
  queued submits as slots free, in fair order (``fairness``);
- ``answers``: the documents a ``q-`` id answers with, in the upstream's envelope.

Only submits the proxy sends with its own upstream key (virtual keys) are queued:
the dispatcher must be able to send later, and client keys are never stored.
"""
