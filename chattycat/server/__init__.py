"""The chat server: the sans-IO room state machine, history stores and the wiring that runs them."""
