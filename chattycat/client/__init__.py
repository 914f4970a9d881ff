"""The chat client: the sans-IO session, outbox and liveness, and the Client on the event loop."""
