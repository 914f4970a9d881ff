"""Front ends: the shared controller and event descriptions; scripted, terminal and GUI clients."""
