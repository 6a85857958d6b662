"""Model catalog, slug pinning and input validation."""
