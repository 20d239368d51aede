"""The plain values every layer shares: mail, threads, actions, the per-kind registry, settings,
errors, addresses, durations, Message-IDs, log fields.

See docs/ARCHITECTURE.md.
"""
