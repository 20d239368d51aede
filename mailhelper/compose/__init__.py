"""Composing what people read: mails rendered from templates, the calendar, text for a terminal.
Pure.

See docs/ARCHITECTURE.md.
"""
