"""Talking to the Modellix API: the pooled client, the retry policy, error mapping."""
