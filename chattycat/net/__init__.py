"""The only layer that touches sockets: the event loop, transports, TLS, listeners, connectors."""
