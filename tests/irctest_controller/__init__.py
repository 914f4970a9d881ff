"""A controller that lets irctest (the IRC conformance suite) run ChattyCat's IRC door.

Not part of the project's own test run: irctest is not a dependency, and no
module here is named like a test. See ``docs/irc.md`` for how to run it.
"""
