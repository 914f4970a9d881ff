"""The rosters a large room keeps sorted between joins match one built from scratch."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.protocol.messages import Member, Roster
from chattycat.server.directory import ROSTER_KEPT_FROM, Directory
from chattycat.server.effects import Send
from chattycat.server.fit import fit_roster
from chattycat.server.model import User
from chattycat.server.output import OutputQueue

MAX_FRAME = 2048  # small, so that large rosters are split


def roster_sent(directory: Directory, out: OutputQueue, room: str) -> list[Roster]:
    out.take()
    directory.send_roster(99, room, ref=None)
    frames = [e.frame for e in out.take() if isinstance(e, Send)]
    assert all(isinstance(f, Roster) for f in frames)
    return frames  # type: ignore[return-value]


def expected(users: list[User], room: str) -> list[Roster]:
    members = [Member(u.name, u.color)
               for u in sorted((u for u in users if room in u.rooms),
                               key=lambda u: (u.name.lower(), u.name))]
    return fit_roster(room, members, MAX_FRAME)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 200))
def test_kept_rosters_match_rosters_built_afresh(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    out = OutputQueue()
    directory = Directory(out, MAX_FRAME)
    users: list[User] = []
    for i in range(ROSTER_KEPT_FROM + 8):  # over the threshold from the start
        user = User(f"{rng.choice('aAbB')}{i}", "#2e9fd0", f"s{i}", i)
        directory.add(user)
        directory.enter(user, "big", 0.0)
        users.append(user)
    for step in range(steps):
        user = rng.choice(users)
        action = rng.random()
        if action < 0.3 and "big" in user.rooms:
            directory.leave(user, "big", "bye", include_self=False)
        elif action < 0.6 and "big" not in user.rooms:
            directory.enter(user, "big", 0.0)
        elif action < 0.8:
            new = f"{rng.choice('cCdD')}n{step}"
            if directory.user(new) is None:
                directory.rename(user, new)
        else:
            assert roster_sent(directory, out, "big") == expected(users, "big")
    assert roster_sent(directory, out, "big") == expected(users, "big")
