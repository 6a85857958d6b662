"""The audit trail of admin actions, and the admin credentials and roles that make them."""
