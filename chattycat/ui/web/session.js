// The chat session in the browser: protocol state with no DOM.
//
// ChatSession is the one owner of what the page knows: who we are, the rooms
// we are in with their members and loaded messages, the highest seq seen per
// room, and the messages sent but not yet acknowledged. It consumes frames
// (PROTOCOL.md) and produces frames; the view reads its state and listens to
// its events. Like the terminal client it gives exactly-once delivery across
// reconnects: the session token and the last seq per room are kept in
// sessionStorage, a reconnect resumes them, and unacknowledged messages are
// resent with their original ids (the server's idempotence makes that safe).

export const PROTOCOL_VERSION = 1;
export const HISTORY_PAGE = 50;
const OLDER_REF = "older";
const STORE_KEY = "chattycat.session";

export function nameKey(name) {
  return name.toLowerCase();
}

function newId() {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return "w-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

class Room {
  constructor(name) {
    this.name = name;
    this.members = new Map(); // name key -> {name, color}
    this.messages = []; // message frames sorted by seq, each seq once
    this.notes = []; // local lines (whispers, errors, notices) with the seq they follow
    this.lastSeq = 0; // highest seq seen: what a resume asks to continue from
    this.readSeq = 0; // highest seq the user has had on screen
    this.unread = 0;
    this.mentions = 0;
    this.firstUnread = null; // seq of the first unread message: where the marker goes
    this.olderLoading = false;
    this.olderDone = false;
    this.rosterParts = null; // members of a roster still arriving ("more": true)
  }

  oldestSeq() {
    return this.messages.length ? this.messages[0].seq : null;
  }

  /** Insert a message in seq order; false if that seq is already here. */
  insert(message) {
    const list = this.messages;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].seq < message.seq) lo = mid + 1;
      else hi = mid;
    }
    if (lo < list.length && list[lo].seq === message.seq) return false;
    list.splice(lo, 0, message);
    if (message.seq > this.lastSeq) this.lastSeq = message.seq;
    return true;
  }
}

export class ChatSession extends EventTarget {
  /**
   * @param {{send: (frame: object) => boolean, storage?: Storage}} options
   *   send puts a frame on the socket and says whether it could.
   */
  constructor({ send, storage }) {
    super();
    this.send = send;
    this.storage = storage || null;
    this.name = null;
    this.color = null;
    this.token = null;
    this.welcomed = false;
    this.rooms = new Map();
    this.current = null;
    this.pending = new Map(); // id -> say frame, in the order typed
    this.wantedRoom = null; // a /join whose room becomes the current one
    this.maxFrame = 65536;
    this.restore();
  }

  // -- persistence (sessionStorage: this tab only, gone when it closes) --------

  restore() {
    if (!this.storage) return;
    let saved = null;
    try {
      saved = JSON.parse(this.storage.getItem(STORE_KEY) || "null");
    } catch {
      saved = null;
    }
    if (!saved || typeof saved !== "object") return;
    this.name = typeof saved.name === "string" ? saved.name : null;
    this.token = typeof saved.token === "string" ? saved.token : null;
    for (const [room, seq] of Object.entries(saved.rooms || {})) {
      const r = new Room(room);
      r.lastSeq = r.readSeq = Number(seq) || 0;
      this.rooms.set(room, r);
    }
    for (const frame of saved.pending || []) {
      if (frame && typeof frame.id === "string") this.pending.set(frame.id, frame);
    }
    this.current = typeof saved.current === "string" && this.rooms.has(saved.current)
      ? saved.current : (this.rooms.keys().next().value || null);
  }

  save() {
    if (!this.storage) return;
    const rooms = {};
    for (const [name, room] of this.rooms) rooms[name] = room.lastSeq;
    const state = {
      name: this.name, token: this.token, rooms, current: this.current,
      pending: [...this.pending.values()],
    };
    try {
      this.storage.setItem(STORE_KEY, JSON.stringify(state));
    } catch {
      // Storage full or disabled: the session still works, it just will not survive a reload.
    }
  }

  forget() {
    this.token = null;
    this.rooms.clear();
    this.pending.clear();
    this.current = null;
    this.save();
  }

  // -- what goes out -------------------------------------------------------------

  /** The hello for a new connection: resume what we had, if anything. */
  hello(name) {
    if (this.name !== null && nameKey(this.name) !== nameKey(name)) this.forget();
    this.name = name;
    this.welcomed = false;
    const frame = { type: "hello", name, protocol: PROTOCOL_VERSION };
    if (this.token) frame.session = this.token;
    if (this.rooms.size) {
      const rooms = {};
      for (const [room, r] of this.rooms) rooms[room] = r.lastSeq;
      frame.resume = { rooms };
    }
    return frame;
  }

  /** Say something in a room: shown as pending until the server's copy comes back. */
  say(room, text, action = false) {
    const frame = { type: "say", room, text, id: newId() };
    if (action) frame.action = true;
    this.pending.set(frame.id, frame);
    this.save();
    if (this.welcomed) this.send(frame);
    this.emit("pending", { room });
    return frame;
  }

  request(frame) {
    if (!this.welcomed) {
      this.note(this.current, "error", "not connected; try again in a moment");
      return false;
    }
    return this.send(frame);
  }

  join(room) {
    this.wantedRoom = room;
    if (this.rooms.has(room)) this.switchTo(room);
    return this.request({ type: "join", room });
  }

  loadOlder(roomName, limit = HISTORY_PAGE) {
    const room = this.rooms.get(roomName);
    if (!room || room.olderLoading || room.olderDone || !this.welcomed) return false;
    const before = room.oldestSeq();
    if (before === null || before <= 1) {
      room.olderDone = true;
      return false;
    }
    room.olderLoading = true;
    return this.send({ type: "history", room: roomName, before, limit, ref: OLDER_REF });
  }

  switchTo(roomName) {
    if (!this.rooms.has(roomName)) return;
    const previous = this.rooms.get(this.current);
    if (previous) previous.firstUnread = null;
    this.current = roomName;
    this.save();
    this.emit("switch", { room: roomName });
  }

  /** The user has seen the current room up to its last message. */
  markRead(roomName) {
    const room = this.rooms.get(roomName);
    if (!room) return;
    room.readSeq = room.lastSeq;
    room.unread = 0;
    room.mentions = 0;
    this.emit("unread", { room: roomName });
  }

  totalMentions() {
    let total = 0;
    for (const room of this.rooms.values()) total += room.mentions;
    return total;
  }

  note(roomName, kind, text, extra = {}) {
    const room = this.rooms.get(roomName) || this.rooms.get(this.current);
    const line = { kind, text, ...extra };
    if (room) {
      line.after = room.lastSeq;
      room.notes.push(line);
    }
    this.emit("note", { room: room ? room.name : null, line });
  }

  // -- what comes in ----------------------------------------------------------------

  receive(frame) {
    if (!frame || typeof frame.type !== "string") return;
    const handler = HANDLERS[frame.type];
    if (handler) handler.call(this, frame);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  onWelcome(frame) {
    if (this.token && frame.session !== this.token) this.newSession();
    this.welcomed = true;
    this.name = frame.name;
    this.color = frame.color;
    this.token = frame.session;
    this.maxFrame = frame.max_frame || this.maxFrame;
    this.save();
    this.emit("welcome", frame);
    // Resend what was never acknowledged, with its original id: a message the
    // server did store comes back once, as the original.
    for (const say of this.pending.values()) this.send(say);
  }

  /**
   * The server did not know our session: it may have lost its history too
   * (a restart with --db :memory:), and then counts every room from 1 again;
   * messages kept under the old numbers would hide the new ones as already
   * seen. So start each room afresh (as the terminal client does); older
   * messages can be paged back in.
   */
  newSession() {
    for (const room of this.rooms.values()) {
      room.messages = [];
      room.notes = [];
      room.lastSeq = room.readSeq = 0;
      room.firstUnread = null;
      room.olderDone = false;
    }
  }

  onJoined(frame) {
    let room = this.rooms.get(frame.room);
    if (nameKey(frame.name) === nameKey(this.name || "")) {
      if (!room) {
        room = new Room(frame.room);
        this.rooms.set(frame.room, room);
      }
      if (this.current === null || !this.rooms.has(this.current) || this.wantedRoom === frame.room) {
        this.wantedRoom = null;
        this.switchTo(frame.room);
      }
      this.save();
      this.emit("rooms", {});
    }
    if (!room) return;
    room.members.set(nameKey(frame.name), { name: frame.name, color: frame.color });
    this.emit("members", { room: frame.room, joined: frame.name });
  }

  onParted(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) return;
    if (nameKey(frame.name) === nameKey(this.name || "")) {
      this.rooms.delete(frame.room);
      if (this.current === frame.room) this.current = this.rooms.keys().next().value || null;
      for (const [id, say] of this.pending) if (say.room === frame.room) this.pending.delete(id);
      this.save();
      this.emit("rooms", {});
      this.emit("switch", { room: this.current });
      return;
    }
    room.members.delete(nameKey(frame.name));
    this.emit("members", { room: frame.room, parted: frame.name, reason: frame.reason });
  }

  onRoster(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) {
      this.note(this.current, "info", `in ${frame.room}: ` +
        (frame.members || []).map((m) => m.name).join(", "));
      return;
    }
    room.rosterParts = (room.rosterParts || []).concat(frame.members || []);
    if (frame.more) return;
    room.members = new Map(room.rosterParts.map((m) => [nameKey(m.name), m]));
    room.rosterParts = null;
    this.emit("members", { room: frame.room });
    if (frame.ref === "who") {
      this.note(frame.room, "info", `in ${frame.room}: ` +
        [...room.members.values()].map((m) => m.name).join(", "));
    }
  }

  onHistory(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) return;
    let added = 0;
    for (const message of frame.messages || []) {
      if (room.insert(message)) added += 1;
      if (message.id) this.pending.delete(message.id);
    }
    const older = frame.ref === OLDER_REF;
    if (older && !frame.more) {
      room.olderLoading = false;
      if ((frame.messages || []).length === 0 || room.oldestSeq() <= 1) room.olderDone = true;
    }
    if (!older && room.readSeq === 0) room.readSeq = room.lastSeq;
    if (room.oldestSeq() === 1) room.olderDone = true;
    this.save();
    this.emit("history", { room: frame.room, older, added });
  }

  onMessage(frame) {
    const room = this.rooms.get(frame.room);
    const mine = frame.id && this.pending.has(frame.id);
    if (frame.id) this.pending.delete(frame.id);
    if (!room) return;
    if (!room.insert(frame)) {
      if (mine) this.emit("pending", { room: frame.room });
      return;
    }
    const fromMe = nameKey(frame.from) === nameKey(this.name || "");
    const mention = !fromMe && this.mentions(frame.text);
    if (!fromMe && frame.seq > room.readSeq) {
      room.unread += 1;
      if (mention) room.mentions += 1;
      if (room.firstUnread === null) room.firstUnread = frame.seq;
    } else if (fromMe) {
      room.readSeq = Math.max(room.readSeq, frame.seq);
    }
    this.save();
    this.emit("message", { room: frame.room, message: frame, mention });
  }

  mentions(text) {
    if (!this.name) return false;
    const escaped = this.name.replace(/[-_]/g, "\\$&");
    return new RegExp(`(^|[^A-Za-z0-9_-])${escaped}($|[^A-Za-z0-9_-])`, "i").test(text);
  }

  onWhisper(frame) {
    const outgoing = nameKey(frame.from) === nameKey(this.name || "");
    this.note(this.current, "whisper", frame.text, {
      from: frame.from, to: frame.to, color: frame.color, ts: frame.ts, outgoing,
    });
    if (!outgoing) this.emit("whisper", { message: frame });
  }

  onRenamed(frame) {
    for (const room of this.rooms.values()) {
      const member = room.members.get(nameKey(frame.old));
      if (member) {
        room.members.delete(nameKey(frame.old));
        room.members.set(nameKey(frame.new), { name: frame.new, color: frame.color });
      }
    }
    if (nameKey(frame.old) === nameKey(this.name || "")) {
      this.name = frame.new;
      this.save();
      this.emit("renamed-me", { name: frame.new });
    }
    this.note(this.current, "info", `${frame.old} is now known as ${frame.new}`);
    this.emit("members", {});
  }

  onRoomList(frame) {
    const rooms = (frame.rooms || []).map((r) => `${r.room} (${r.members})`).join(", ");
    this.note(this.current, "info", rooms ? `rooms: ${rooms}` : "no rooms have members");
  }

  onPing(frame) {
    this.send({ type: "pong", token: frame.token });
  }

  onNotice(frame) {
    this.note(this.current, "notice", frame.text || frame.code);
  }

  onError(frame) {
    if (!this.welcomed && ["bad_name", "name_taken", "unsupported_protocol"].includes(frame.code)) {
      this.emit("hello-failed", frame);
      return;
    }
    if (frame.code === "replaced") {
      this.emit("replaced", frame);
      return;
    }
    if (frame.ref === OLDER_REF) {
      for (const room of this.rooms.values()) room.olderLoading = false;
    }
    // The server names the refused say by its id (an extra member; ref as a fallback).
    const id = typeof frame.id === "string" ? frame.id : frame.ref;
    if (frame.code === "rate_limited" && this.pending.has(id)) {
      this.emit("rate-limited", { id });
      return;
    }
    this.note(this.current, "error", frame.message || frame.code);
  }
}

const HANDLERS = {
  welcome: ChatSession.prototype.onWelcome,
  joined: ChatSession.prototype.onJoined,
  parted: ChatSession.prototype.onParted,
  roster: ChatSession.prototype.onRoster,
  history: ChatSession.prototype.onHistory,
  message: ChatSession.prototype.onMessage,
  whisper: ChatSession.prototype.onWhisper,
  renamed: ChatSession.prototype.onRenamed,
  room_list: ChatSession.prototype.onRoomList,
  ping: ChatSession.prototype.onPing,
  notice: ChatSession.prototype.onNotice,
  error: ChatSession.prototype.onError,
};
