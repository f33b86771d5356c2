"""A multi-tenant documents API protected entirely through Warden's Python SDK."""
