"""The Tkinter desktop client: a toolkit-free model and the window that draws it."""
