"""The interactive terminal client: raw tty, keys, line editor and styles."""
