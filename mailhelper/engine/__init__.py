"""The engine: one cycle (read new mail, update threads, send what is due), the exactly-once
sending protocol and the bookkeeping after a send, the run loop, the owners' watched mailboxes.

See docs/ARCHITECTURE.md.
"""
