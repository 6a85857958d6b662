"""One-off generators for the checked-in catalog data (not used at run time)."""
