"""irctest's ``--controller`` for ChattyCat: starts ``chattycat serve`` with an IRC port.

Run from an irctest checkout, with this project importable::

    PYTHONPATH=/path/to/chattycat python -m pytest \
        --controller tests.irctest_controller.chattycat_controller \
        -m 'not services and not implementation-specific and not deprecated and not strict'

History is kept in memory (each test gets a fresh server); flood control and
heartbeats are off, as irctest sends bursts and idles between steps.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController


class ChattyCatController(BaseServerController, DirectoryBasedController):
    """Runs one ChattyCat server per irctest case."""

    software_name = "ChattyCat"
    supported_sasl_mechanisms: ClassVar[set[str]] = set()
    supports_sts = False

    def run(self, hostname: str, port: int, *, password: str | None, ssl: bool,
            run_services: bool, faketime: str | None, websocket_hostname: str | None,
            websocket_port: int | None, **_ignored: Any) -> None:
        if password is not None:
            raise NotImplementedByController("PASS (server password)")
        if run_services:
            raise NotImplementedByController("services")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.port, self.hostname = port, hostname
        self.create_config()
        _unused_host, native_port = self.get_hostname_and_port()
        args = [sys.executable, "-m", "chattycat", "serve", "--host", hostname,
                "--port", str(native_port), "--db", ":memory:", "--flood-rate", "0",
                "--heartbeat", "0", "--log-level", "warning",
                # irctest's expected server name (its ngIRCd config uses the same).
                "--irc-server-name", "My.Little.Server",
                # irctest expects a registered client to be in no channel.
                "--no-irc-join-default-room"]
        if ssl:
            self.gen_ssl()
            args += ["--irc-tls-port", str(port), "--tls-cert", str(self.pem_path),
                     "--tls-key", str(self.key_path)]
        else:
            args += ["--irc-port", str(port)]
        self.proc = self.execute(args)


def get_irctest_controller_class() -> type[ChattyCatController]:
    """The hook irctest's ``--controller`` option looks for."""
    return ChattyCatController
