"""The IRC translator against the real state machine: IRC lines in, IRC lines and frames out."""

from __future__ import annotations

from chattycat.protocol.messages import Joined, Message, Renamed, Say
from tests.irc.harness import ALL_CAPS, Harness, commands


def test_registration_sends_welcome_isupport_motd_and_the_default_room() -> None:
    h = Harness()
    conn = h.irc("alice", register=False)
    h.send(conn, "NICK alice", "USER a 0 * :Alice")
    got = h.take(conn)
    assert commands(got)[:5] == ["001", "002", "003", "004", "005"]
    isupport = got[4].params
    assert "CASEMAPPING=ascii" in isupport and "CHANTYPES=#" in isupport
    assert "376" in commands(got)
    join = next(line for line in got if line.command == "JOIN")
    assert join.source == "alice!alice@h" and join.params == ("#lobby",)
    assert got[-1].command == "366"


def test_cap_negotiation_holds_registration_until_cap_end() -> None:
    h = Harness()
    conn = h.irc("alice", register=False)
    h.send(conn, "CAP LS 302", "NICK alice", "USER a 0 * :A")
    got = h.take(conn)
    assert commands(got) == ["CAP"] and got[0].params[:2] == ("*", "LS")
    h.send(conn, "CAP REQ :server-time nope")
    assert h.take(conn)[0].params[1] == "NAK"
    h.send(conn, "CAP REQ :server-time", "CAP END")
    got = h.take(conn)
    assert got[0].params[1:] == ("ACK", "server-time") and got[1].command == "001"


def test_a_nick_that_is_no_chattycat_name_is_refused_with_432_and_the_rule() -> None:
    h = Harness()
    conn = h.irc("x", register=False)
    h.send(conn, "NICK [bad]", "USER a 0 * :A")
    got = h.take(conn)
    assert got[0].command == "432" and "names are" in got[0].params[-1]
    h.send(conn, "NICK good")
    assert "001" in commands(h.take(conn))


def test_a_taken_name_gets_433_and_registration_goes_on() -> None:
    h = Harness()
    h.native("alice")
    conn = h.irc("x", register=False)
    h.send(conn, "NICK Alice", "USER a 0 * :A")
    got = h.take(conn)
    assert got[0].command == "433" and got[0].params[:2] == ("*", "Alice")
    h.send(conn, "NICK alice2")
    assert "001" in commands(h.take(conn))


def test_commands_before_registration_get_451() -> None:
    h = Harness()
    conn = h.irc("x", register=False)
    h.send(conn, "JOIN #dev")
    assert commands(h.take(conn)) == ["451"]


def test_native_and_irc_users_see_each_others_messages_and_actions() -> None:
    h = Harness()
    bob = h.native("bob")
    alice = h.irc("alice")
    h.take_frames(bob)
    h.send(alice, "PRIVMSG #lobby :hi \x02bob\x02", "PRIVMSG #lobby :\x01ACTION waves\x01")
    said = [f for f in h.take_frames(bob) if isinstance(f, Message)]
    assert [(m.text, m.action) for m in said] == [("hi bob", False), ("waves", True)]
    assert h.take(alice) == []  # no echo-message: the sender sees nothing
    h.request(bob, Say("lobby", "hello\nsecond line", action=False))
    h.request(bob, Say("lobby", "dances", action=True))
    got = h.take(alice)
    assert [line.params for line in got] == [
        ("#lobby", "hello"), ("#lobby", "second line"), ("#lobby", "\x01ACTION dances\x01")]
    assert got[0].source == "bob!bob@h"


def test_echo_message_with_server_time_and_msgid_tags() -> None:
    h = Harness()
    alice = h.irc("alice", ALL_CAPS)
    h.send(alice, "PRIVMSG #lobby :hello")
    (echo,) = h.take(alice)
    assert echo.tags["msgid"] == "lobby:1" and echo.tags["time"].endswith("Z")


def test_labeled_privmsg_is_echoed_with_its_label_and_a_labeled_ping_is_one_line() -> None:
    h = Harness()
    alice = h.irc("alice", ALL_CAPS)
    h.send(alice, "@label=a1 PRIVMSG #lobby :hello", "@label=a2 PING :x")
    got = h.take(alice)
    assert [(g.command, g.tags.get("label")) for g in got] == [("PRIVMSG", "a1"), ("PONG", "a2")]


def test_labeled_command_with_several_replies_is_a_batch_and_with_none_an_ack() -> None:
    h = Harness()
    alice = h.irc("alice", "batch labeled-response")
    h.send(alice, "@label=n NAMES #lobby", "@label=q NOTICE nobody-here :x")
    got = h.take(alice)
    assert got[0].command == "BATCH" and got[0].tags["label"] == "n"
    assert commands(got) == ["BATCH", "353", "366", "BATCH", "ACK"]
    assert got[-1].tags == {"label": "q"}


def test_join_part_and_nick_are_seen_on_both_sides() -> None:
    h = Harness()
    bob = h.native("bob")
    alice = h.irc("alice")
    h.request(bob, Say("lobby", "x"))  # so that the room is written to
    h.take_frames(bob)
    h.take(alice)
    h.send(alice, "JOIN #Dev", "NICK alicia", "PART #dev")
    got = h.take(alice)
    assert [(g.command, g.params[0]) for g in got if g.command in ("JOIN", "NICK", "PART")] == [
        ("JOIN", "#dev"), ("NICK", "alicia"), ("PART", "#dev")]
    frames = h.take_frames(bob)
    assert not any(isinstance(f, Joined) for f in frames)  # bob is not in #dev
    assert [(f.old, f.new) for f in frames if isinstance(f, Renamed)] == [("alice", "alicia")]
    h.request(bob, Say("lobby", "y"))
    h.take(alice)
    h.disconnect(bob)
    assert [(g.command, g.source) for g in h.take(alice)] == [("QUIT", "bob!bob@h")]


def test_quit_of_a_user_in_two_shared_rooms_is_one_quit_line() -> None:
    h = Harness()
    alice = h.irc("alice")
    bob = h.irc("bob")
    h.send(alice, "JOIN #dev")
    h.send(bob, "JOIN #dev")
    h.take(alice)
    h.take(bob)
    h.send(bob, "QUIT :bye")
    assert [(g.command, g.params) for g in h.take(alice)] == [("QUIT", ("bye",))]
    assert commands(h.take(bob)) == ["ERROR"]
    assert bob in h.closed


def test_errors_become_numerics() -> None:
    h = Harness()
    alice = h.irc("alice")
    h.send(alice, "PART #dev", "PRIVMSG nobody :x", "PRIVMSG #dev :x", "JOIN #no!", "FOO",
           "PRIVMSG", "PRIVMSG #lobby", "JOIN")
    assert commands(h.take(alice)) == ["442", "401", "404", "403", "421", "411", "412", "461"]


def test_non_utf8_line_is_refused_and_the_connection_goes_on() -> None:
    h = Harness()
    alice = h.irc("alice")
    h.send(alice, b"PRIVMSG #lobby :caf\xe9\r\n", "PING :ok")
    got = h.take(alice)
    assert [g.command for g in got] == ["FAIL", "PONG"]
    assert got[0].params[:2] == ("PRIVMSG", "INVALID_UTF8")


def test_a_long_message_from_a_native_client_is_split_on_utf8_boundaries() -> None:
    h = Harness()
    bob = h.native("bob")
    alice = h.irc("alice")
    text = "é" * 1500
    h.request(bob, Say("lobby", text))
    got = h.take(alice)
    assert len(got) > 1
    assert "".join(g.params[1] for g in got) == text


def test_names_starting_with_a_digit_are_escaped_both_ways() -> None:
    h = Harness()
    native = h.native("1abc")
    alice = h.irc("alice")
    h.send(alice, "NAMES #lobby")
    assert "`1abc" in h.take(alice)[0].params[-1].split()
    h.send(alice, "PRIVMSG `1abc :hi")
    assert h.take_frames(native)[-1].to == "1abc"  # type: ignore[attr-defined]


def test_join_plays_history_back_in_a_chathistory_batch_with_server_time() -> None:
    h = Harness()
    bob = h.native("bob")
    h.request(bob, Say("lobby", "before you came"))
    plain = h.irc("plain")
    assert "PRIVMSG" not in commands(h.take(plain))  # no server-time: no playback
    h.send(plain, "QUIT")
    alice = h.irc("alice", register=False)
    h.send(alice, "CAP REQ :batch server-time", "NICK alice", "USER a 0 * :A", "CAP END")
    got = h.take(alice)
    start = commands(got).index("BATCH")
    assert got[start].params[1:] == ("chathistory", "#lobby")
    line = got[start + 1]
    assert line.params == ("#lobby", "before you came") and "time" in line.tags


def test_chathistory_pages_back_by_msgid() -> None:
    h = Harness()
    alice = h.irc("alice", ALL_CAPS)
    for n in range(5):
        h.send(alice, f"PRIVMSG #lobby :m{n}")
    h.take(alice)
    h.send(alice, "CHATHISTORY BEFORE #lobby msgid=lobby:4 2")
    got = h.take(alice)
    assert [g.params[-1] for g in got if g.command == "PRIVMSG"] == ["m1", "m2"]
    h.send(alice, "CHATHISTORY LATEST #lobby * 1", "CHATHISTORY AFTER #lobby msgid=lobby:3 10")
    got = [g.params[-1] for g in h.take(alice) if g.command == "PRIVMSG"]
    assert got == ["m4", "m3", "m4"]


def test_whisper_both_ways() -> None:
    h = Harness()
    bob = h.native("bob")
    alice = h.irc("alice")
    h.send(alice, "PRIVMSG bob :psst")
    assert h.take_frames(bob)[-1].text == "psst"  # type: ignore[attr-defined]
    from chattycat.protocol.messages import WhisperTo

    h.request(bob, WhisperTo("alice", "back"))
    got = h.take(alice)
    assert [(g.source, g.params) for g in got] == [("bob!bob@h", ("alice", "back"))]


def test_join_0_parts_every_channel() -> None:
    h = Harness()
    alice = h.irc("alice")
    h.send(alice, "JOIN #a,#b")
    h.take(alice)
    h.send(alice, "JOIN 0")
    assert sorted(g.params[0] for g in h.take(alice) if g.command == "PART") == [
        "#a", "#b", "#lobby"]


def test_without_the_default_room_an_irc_user_starts_in_no_channel() -> None:
    h = Harness(join_default_room=False)
    bob = h.native("bob")
    alice = h.irc("alice", register=False)
    h.send(alice, "NICK alice", "USER a 0 * :A")
    got = h.take(alice)
    assert commands(got)[-1] == "376" and "JOIN" not in commands(got)
    seen = [type(f).__name__ for f in h.take_frames(bob)]
    assert seen == ["Joined", "Parted"]  # the machine's rule, visible to the room
    h.send(alice, "LIST")
    assert [g.params[1] for g in h.take(alice) if g.command == "322"] == ["#lobby"]
    h.send(alice, "NICK taken-not", "JOIN #lobby")
    assert "JOIN" in commands(h.take(alice))


def test_who_and_whois_show_user_fields_and_away() -> None:
    h = Harness()
    alice = h.irc("alice", register=False)
    h.send(alice, "NICK alice", "USER al 0 * :Alice Liddell", "AWAY :reading")
    assert commands(h.take(alice))[-1] == "306"
    bob = h.irc("bob")
    h.send(bob, "WHOIS alice", "WHO alice", "PRIVMSG alice :hi")
    got = h.take(bob)
    assert got[0].params[1:] == ("alice", "al", "h", "*", "Alice Liddell")
    assert ("301", ("bob", "alice", "reading")) in [(g.command, g.params) for g in got]
    who = next(g for g in got if g.command == "352")
    assert who.params[2] == "al" and who.params[6:] == ("G", "0 Alice Liddell")


def test_topic_answers_331_for_a_room_and_403_for_none() -> None:
    h = Harness()
    alice = h.irc("alice")
    h.send(alice, "TOPIC #lobby", "TOPIC #nowhere", "TOPIC #lobby :new")
    assert commands(h.take(alice)) == ["331", "403", "482"]


def test_a_line_over_512_bytes_without_its_tags_gets_417() -> None:
    h = Harness()
    alice = h.irc("alice")
    h.send(alice, "PRIVMSG #lobby :" + "a" * 500, "@label=" + "x" * 600 + " PING :ok")
    assert commands(h.take(alice)) == ["417", "PONG"]


def test_notice_is_never_answered_with_an_error_and_its_echo_is_a_notice() -> None:
    h = Harness()
    alice = h.irc("alice", ALL_CAPS)
    h.send(alice, "NOTICE nobody :x", "NOTICE #nowhere :x", "NOTICE #lobby :hello")
    (echo,) = h.take(alice)
    assert echo.command == "NOTICE" and echo.params == ("#lobby", "hello")


def test_a_labeled_message_to_oneself_is_echoed_with_the_label_and_received_without() -> None:
    h = Harness()
    alice = h.irc("alice", "echo-message batch labeled-response")
    h.send(alice, "@label=me PRIVMSG alice :hi")
    got = h.take(alice)
    assert sorted((g.command, g.tags.get("label") or "", g.params) for g in got) == [
        ("PRIVMSG", "", ("alice", "hi")), ("PRIVMSG", "me", ("alice", "hi"))]


def test_lusers_counts_everyone_signed_in() -> None:
    h = Harness()
    h.native("bob")
    alice = h.irc("alice")
    h.door.count_users = lambda: len(h.driven.user_names())
    h.send(alice, "LUSERS")
    got = h.take(alice)
    assert commands(got) == ["251", "255", "265", "266"]
    assert got[0].params[1] == "There are 2 users and 0 invisible on 1 servers"


def test_a_nick_that_quit_can_come_back_through_the_irc_door_at_once() -> None:
    h = Harness()
    alice = h.irc("alice")
    h.send(alice, "QUIT")
    again = h.irc("x", register=False)
    h.send(again, "NICK alice", "USER u 0 * :A")
    assert "001" in commands(h.take(again))


def test_a_connected_user_is_never_taken_over_through_the_irc_door() -> None:
    h = Harness()
    alice = h.irc("alice")
    other = h.irc("x", register=False)
    h.send(other, "NICK alice", "USER u 0 * :A")
    assert commands(h.take(other)) == ["433"]
    assert alice not in h.closed
