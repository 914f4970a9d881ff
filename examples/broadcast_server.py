"""A line-broadcast chat server: every line a client sends goes to every client."""

import signal
import sys

from chattycat import EventLoop, Protocol, Transport, listen

MAX_LINE_BYTES = 4096


class BroadcastProtocol(Protocol):
    def __init__(self, clients: set["BroadcastProtocol"]) -> None:
        self.clients = clients
        self.buffer = b""

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self.clients.add(self)

    def data_received(self, data: bytes) -> None:
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        if len(self.buffer) > MAX_LINE_BYTES:
            self.transport.abort()  # no newline in sight: drop the connection
        for line in lines:
            for client in self.clients:  # N writes, coalesced per client per pass
                client.transport.write(line + b"\n")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.clients.discard(self)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7777
    loop = EventLoop()
    clients: set[BroadcastProtocol] = set()
    listener = listen(loop, lambda: BroadcastProtocol(clients), "127.0.0.1", port)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    print("listening on port", listener.addresses()[0][1], flush=True)
    loop.run_forever()
    listener.close()
    loop.close()


if __name__ == "__main__":
    main()
