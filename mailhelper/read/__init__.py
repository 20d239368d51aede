"""Reading: message bytes to a Mail (MIME, forwards, reply text, HTML, auto-replies,
authentication results, names, language). Pure.

See docs/ARCHITECTURE.md.
"""
