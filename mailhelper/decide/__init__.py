"""Deciding: what a mail means (classify, tags, time words, commands), what happens next (plan,
pauses, the sending window), digest figures, old mail. Pure.

See docs/ARCHITECTURE.md.
"""
