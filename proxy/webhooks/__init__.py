"""Completion webhooks: a signed POST of the terminal task document to the caller's URL."""
