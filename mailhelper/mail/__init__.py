"""The mail servers: the MailSource and Transport interfaces, IMAP (the mailbox), SMTP and IMAP
connections, in-memory stand-ins for tests, secrets for logging in. I/O only; decides nothing.

See docs/ARCHITECTURE.md.
"""
