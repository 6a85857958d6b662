"""Spend governance: virtual keys, budgets reserved atomically, spend reports."""
