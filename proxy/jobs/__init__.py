"""Job records, the poll observer, the background watcher, pricing."""
