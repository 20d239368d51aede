"""The state: the store of threads, seen messages, scheduled actions and history (its role
interfaces, one store over SQLite and PostgreSQL), and its schema migrations. Imports only the
model.

See docs/ARCHITECTURE.md.
"""
