"""TLS contexts for servers and clients, made from the files a user names.

Only ``net`` touches :mod:`ssl`; the layers above name the type
:data:`SSLContext` from here and ask for contexts by what they hold (a
certificate and key, a CA file). Every mistake in those files is a
:class:`~chattycat.errors.ConfigError` with a one-line reason.
"""

from __future__ import annotations

import os
import ssl

from chattycat.errors import ConfigError

__all__ = [
    "SSLCertVerificationError",
    "SSLContext",
    "SSLError",
    "client_context",
    "server_context",
]

SSLContext = ssl.SSLContext
# The TLS failures the layers above tell apart when they explain one to a user.
SSLError = ssl.SSLError
SSLCertVerificationError = ssl.SSLCertVerificationError


def server_context(cert: str, key: str | None) -> SSLContext:
    """A server context with ``cert`` (and ``key``, unless the cert file holds it)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    for path in (cert, key):
        # load_cert_chain's own errors do not say which file is missing.
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"cannot read TLS file {path}: no such file")
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigError(f"cannot read TLS file {path}: permission denied")
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        files = cert if key is None else f"{cert} / {key}"
        raise ConfigError(f"cannot use TLS certificate/key {files}: {exc}") from None
    return context


def client_context(cafile: str | None, *, verify: bool = True) -> SSLContext:
    """A client context trusting ``cafile`` (or the system's CAs); ``verify=False`` trusts all."""
    try:
        context = ssl.create_default_context(cafile=cafile)
    except FileNotFoundError:
        raise ConfigError(f"cannot read CA file {cafile}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot use CA file {cafile}: {exc}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
