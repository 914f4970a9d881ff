"""A ChattyCat bot: answers "!time" and "!echo TEXT" in every room it is in.

Run it next to a server: python examples/bot.py [PORT] [ROOM...]
"""

import signal
import sys
import time

from chattycat import Client, ClientEvent, Closed, Connected, EventLoop, Failed, Message


def answer(text: str) -> str | None:
    """The bot's reply to a chat line, or None to stay quiet."""
    if text == "!time":
        return time.strftime("it is %H:%M:%S here")
    if text.startswith("!echo "):
        return text[len("!echo "):]
    return None


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    loop = EventLoop()
    exit_codes: list[int] = []

    def on_event(event: ClientEvent) -> None:
        # Live messages only: a History event (after a join or a reconnect)
        # holds old lines that were answered back then.
        if isinstance(event, Message) and event.sender != client.name:
            reply = answer(event.text)
            if reply is not None:
                client.say(event.room, reply)  # queued and resent if the link drops
        elif isinstance(event, Connected):
            print("bot online as", event.welcome.name, flush=True)
        elif isinstance(event, Failed):
            print("bot failed:", event.reason, file=sys.stderr)
            exit_codes.append(1)
        elif isinstance(event, Closed):
            exit_codes.append(0)

    client = Client(loop, "timebot", port=port, rooms=sys.argv[2:], on_event=on_event)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, client.quit, "the bot is going to sleep")
    client.start()
    loop.run_until(lambda: bool(exit_codes))
    loop.run_until(client.drained, timeout_s=2)  # let the quit frame leave
    loop.close()
    return exit_codes[0]


if __name__ == "__main__":
    sys.exit(main())
