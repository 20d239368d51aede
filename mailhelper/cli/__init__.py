"""The command line: the verbs (run, poll, status, explain, check, demo), the config file, exit
codes; the only voice to humans.

See docs/ARCHITECTURE.md.
"""
