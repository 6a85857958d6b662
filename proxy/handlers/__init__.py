"""HTTP handlers: one per route kind."""
