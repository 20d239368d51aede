"""The real-mail test rig: a real Dovecot, an SMTP sink and IMAP helpers, all on 127.0.0.1.

Modules:

- :mod:`tests.rig.dovecot`: :class:`~tests.rig.dovecot.DovecotServer`, a throwaway Dovecot 2.3
  IMAP server (plain + STARTTLS port, implicit-TLS port, PLAIN/LOGIN/XOAUTH2/OAUTHBEARER).
- :mod:`tests.rig.smtpsink`: :class:`~tests.rig.smtpsink.SmtpSink`, an aiosmtpd server that stores
  every accepted message as ``.eml`` + ``.json`` and can be told to fail or drop the next ones.
- :mod:`tests.rig.mailboxes`: imapclient helpers (connect, append, read a folder, make a message).

This module holds the one piece both servers share: the self-signed TLS certificate. Clients
verify against :attr:`SelfSignedCert.ca_file`, exactly as a user would point mailhelper at a
private CA, so TLS verification stays on in tests.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOOPBACK", "RigError", "SelfSignedCert"]

#: The only address the rig ever binds to or connects to.
LOOPBACK = "127.0.0.1"


class RigError(RuntimeError):
    """The rig could not start or drive one of its servers (the message says which and why)."""


@dataclass(frozen=True)
class SelfSignedCert:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1``, and its private key.

    The certificate is its own CA: pass :attr:`ca_file` as the trust anchor. It carries
    ``subjectAltName = DNS:localhost, IP:127.0.0.1`` (hostname checks use the SAN, RFC 6125),
    ``basicConstraints = CA:TRUE`` and a ``keyUsage`` that includes ``keyCertSign``, so it also
    passes OpenSSL's strict X.509 checks (Python 3.13 turns ``VERIFY_X509_STRICT`` on).

    Example::

        cert = SelfSignedCert.create(tmp_path)
        ctx = cert.client_context()          # verifies, checks the hostname
        smtplib.SMTP("127.0.0.1", port).starttls(context=ctx)
    """

    cert_file: Path
    key_file: Path

    @property
    def ca_file(self) -> Path:
        """The file a client trusts: the certificate itself (it is self-signed)."""
        return self.cert_file

    @classmethod
    def create(cls, directory: Path, *, days: int = 30) -> SelfSignedCert:
        """Make a fresh RSA-2048 certificate and key in ``directory`` with ``openssl req``.

        Takes about 0.2 s. The key file is written 0600 by openssl; callers that hand it to
        another uid (Dovecot under root) copy it with the rights that uid needs.
        """
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RigError("openssl not found on PATH (apt-get install openssl)")
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / "rig-cert.pem", directory / "rig-key.pem"
        command = [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key_file), "-out", str(cert_file), "-days", str(days),
            "-subj", "/CN=localhost/O=mailhelper test rig",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
            "-addext", "extendedKeyUsage=serverAuth",
        ]  # fmt: skip
        # OPENSSL_CONF could point at a config that changes the defaults; the rig wants the
        # built-in ones (and a missing file there makes openssl fail outright).
        env = {k: v for k, v in os.environ.items() if k != "OPENSSL_CONF"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RigError(f"openssl req failed ({result.returncode}): {result.stderr.strip()}")
        return cls(cert_file=cert_file, key_file=key_file)

    def server_context(self) -> ssl.SSLContext:
        """An ``SSLContext`` for a server presenting this certificate (TLS 1.2 or later)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client ``SSLContext`` that trusts only this certificate."""
        return ssl.create_default_context(cafile=str(self.ca_file))
