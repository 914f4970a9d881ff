// What the user types, as a command: the terminal client's rules (no DOM).

export const ROOM_RE = /^[a-z0-9_-]{1,32}$/;
export const NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
export const MAX_TEXT_CHARS = 4000;

export const COMMANDS = [
  ["/join ROOM", "join a room and make it the current one"],
  ["/part [ROOM]", "leave a room (default: the current one)"],
  ["/room ROOM", "switch the current room"],
  ["/msg NAME TEXT", "whisper to one user"],
  ["/me TEXT", "emote: '* you TEXT'"],
  ["/nick NAME", "change your name"],
  ["/who [ROOM]", "who is in a room"],
  ["/rooms", "list the rooms that have members"],
  ["/history [N]", "load N older messages of the current room"],
  ["/quit", "leave the chat"],
  ["/help", "this list"],
  ["//TEXT", "send a message that starts with '/'"],
];

function hint(text) {
  return { kind: "hint", text };
}

function sayText(kind, text) {
  if ([...text].length > MAX_TEXT_CHARS) return hint(`a message holds at most ${MAX_TEXT_CHARS} characters`);
  return { kind, text };
}

/** One line typed into the message box -> {kind, ...}. */
export function parseLine(line) {
  if (!line.trim()) return { kind: "ignore" };
  if (line.startsWith("//")) return sayText("say", line.slice(1));
  if (!line.startsWith("/")) return sayText("say", line);
  const match = /^\/(\S+)\s*(.*)$/s.exec(line);
  const name = match[1].toLowerCase();
  const rest = match[2].trim();
  const [first = "", ...others] = rest.split(/\s+/);
  switch (name) {
    case "join":
    case "room":
      return ROOM_RE.test(first) ? { kind: name, room: first }
        : hint(`usage: /${name} ROOM (1-32 of a-z 0-9 _ -)`);
    case "part":
    case "who":
      if (first && !ROOM_RE.test(first)) return hint(`usage: /${name} [ROOM]`);
      return { kind: name, room: first || null };
    case "msg": {
      const text = rest.slice(first.length).trim();
      if (!NAME_RE.test(first) || !text) return hint("usage: /msg NAME TEXT");
      return { ...sayText("msg", text), to: first };
    }
    case "me":
      return rest ? sayText("me", rest) : hint("usage: /me TEXT");
    case "nick":
      return NAME_RE.test(first) && !others.length ? { kind: "nick", name: first }
        : hint("usage: /nick NAME (1-32 of A-Z a-z 0-9 _ -)");
    case "rooms":
      return { kind: "rooms" };
    case "history": {
      if (!first) return { kind: "history", limit: null };
      const limit = Number(first);
      return Number.isInteger(limit) && limit >= 1 && limit <= 500 ? { kind: "history", limit }
        : hint("usage: /history [N] (1-500)");
    }
    case "quit":
      return { kind: "quit" };
    case "help":
      return { kind: "help" };
    default:
      return hint(`unknown command /${name}; /help lists them`);
  }
}
