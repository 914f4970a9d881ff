// The page: renders a ChatSession into the DOM.
//
// Every string from the network goes in as text (textContent, never
// innerHTML), so a name or message holding markup stays markup-shaped text.
// Bidi controls (the "Trojan Source" characters) are shown as visible
// escapes, as in the terminal client, and every name and message sits in its
// own <bdi>, so right-to-left text cannot reorder what surrounds it. The only
// element made from message text is a link, and only for http(s) URLs.

const COLOR_RE = /^#[0-9a-fA-F]{6}$/;
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;
// Explicit embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
const BIDI_RE = /[\u202A-\u202E\u2066-\u2069]/g;

export function inert(text) {
  return String(text).replace(BIDI_RE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = inert(text);
  return node;
}

function colored(node, color) {
  // A CSSOM property, not a style attribute: allowed under the page's CSP.
  if (typeof color === "string" && COLOR_RE.test(color)) node.style.color = color;
  return node;
}

function nameNode(name, color) {
  const node = colored(el("bdi", "nick", name), color);
  node.dir = "auto";
  return node;
}

/** Message text with http(s) URLs as links; everything else as text. */
export function richText(text) {
  const out = el("bdi", "text");
  out.dir = "auto";
  let last = 0;
  const source = String(text);
  for (const match of source.matchAll(URL_RE)) {
    let url = match[0].replace(/[.,;:!?)\]]+$/, "");
    let href = null;
    try {
      const parsed = new URL(url);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") href = parsed.href;
    } catch {
      href = null;
    }
    if (!href) continue;
    out.append(inert(source.slice(last, match.index)));
    const link = el("a", null, url);
    link.href = href;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    out.append(link);
    last = match.index + url.length;
  }
  out.append(inert(source.slice(last)));
  return out;
}

function timeNode(ts) {
  const when = new Date(Number(ts) * 1000);
  const node = el("time", "ts");
  if (Number.isNaN(when.getTime())) return node;
  node.dateTime = when.toISOString();
  node.title = when.toLocaleString();
  node.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return node;
}

export function messageItem(message, { mention = false, pending = false } = {}) {
  const item = el("li", "line message");
  if (message.seq !== undefined) item.dataset.seq = String(message.seq);
  if (typeof message.id === "string") item.dataset.id = message.id;
  if (mention) item.classList.add("mention");
  if (pending) {
    item.classList.add("pending");
    item.append(el("span", "ts", "sending"));
  } else {
    item.append(timeNode(message.ts));
  }
  const from = nameNode(message.from, message.color);
  if (message.action) {
    item.classList.add("action");
    item.append(el("span", "star", "* "), from, " ", richText(message.text));
  } else {
    item.append(from, el("span", "sep", ": "), richText(message.text));
  }
  return item;
}

export function noteItem(line) {
  const item = el("li", `line note ${line.kind}`);
  if (line.kind === "whisper") {
    item.append(timeNode(line.ts));
    const tag = line.outgoing ? "whisper to " : "whisper from ";
    item.append(el("span", "tag", tag), nameNode(line.outgoing ? line.to : line.from,
      line.outgoing ? null : line.color), el("span", "sep", ": "), richText(line.text));
    return item;
  }
  item.append(el("span", "text", line.text));
  return item;
}

export class View {
  constructor(session, doc = document) {
    this.session = session;
    this.doc = doc;
    this.log = doc.getElementById("log");
    this.roomList = doc.getElementById("room-list");
    this.memberList = doc.getElementById("member-list");
    this.title = doc.getElementById("room-title");
    this.status = doc.getElementById("status");
    this.search = doc.getElementById("search");
    this.searchCount = doc.getElementById("search-count");
    this.older = doc.getElementById("older");
    this.mentionNames = new Set();
  }

  renderAll() {
    this.renderRooms();
    this.renderMembers();
    this.renderLog();
    this.renderTitle();
  }

  renderTitle() {
    const room = this.session.current;
    this.title.textContent = room ? `#${room}` : "";
    const mentions = this.session.totalMentions();
    const prefix = mentions ? `(${mentions}) ` : "";
    this.doc.title = `${prefix}${room ? `#${room} - ` : ""}ChattyCat`;
  }

  renderRooms() {
    const items = [];
    for (const room of this.session.rooms.values()) {
      const item = el("li", room.name === this.session.current ? "room current" : "room");
      const button = el("button", "room-button");
      button.type = "button";
      button.dataset.room = room.name;
      button.append(el("span", "room-name", `#${room.name}`));
      if (room.name === this.session.current) button.setAttribute("aria-current", "page");
      if (room.unread && room.name !== this.session.current) {
        const badge = el("span", room.mentions ? "badge mention" : "badge", String(room.unread));
        badge.setAttribute("aria-label", `${room.unread} unread`);
        button.append(badge);
      }
      item.append(button);
      items.push(item);
    }
    this.roomList.replaceChildren(...items);
  }

  renderMembers() {
    const room = this.session.rooms.get(this.session.current);
    const members = room ? [...room.members.values()] : [];
    members.sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
    this.memberList.replaceChildren(...members.map((m) => {
      const item = el("li", "member");
      item.append(nameNode(m.name, m.color));
      return item;
    }));
  }

  /** The current room's log, from scratch: messages, notes, the unread marker, pending. */
  renderLog() {
    const room = this.session.rooms.get(this.session.current);
    const items = [];
    if (room) {
      const notes = [...room.notes];
      let n = 0;
      for (const message of room.messages) {
        while (n < notes.length && notes[n].after < message.seq) items.push(noteItem(notes[n++]));
        if (room.firstUnread === message.seq) items.push(this.marker());
        items.push(messageItem(message, { mention: this.isMention(message) }));
      }
      while (n < notes.length) items.push(noteItem(notes[n++]));
      for (const say of this.session.pending.values()) {
        if (say.room !== room.name) continue;
        items.push(messageItem({ ...say, from: this.session.name, color: this.session.color },
          { pending: true }));
      }
    }
    this.log.replaceChildren(...items);
    this.older.hidden = !room || room.olderDone || !(room.oldestSeq() > 1);
    this.applySearch();
  }

  marker() {
    const item = el("li", "line unread-marker", "new messages");
    item.setAttribute("aria-label", "first unread message");
    return item;
  }

  isMention(message) {
    return nameKeyOf(message.from) !== nameKeyOf(this.session.name)
      && this.session.mentions(message.text);
  }

  /** Keep the view where the user was: at the bottom if they were, else in place. */
  preservingScroll(render, { older = false } = {}) {
    const log = this.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const fromBottom = log.scrollHeight - log.scrollTop;
    render();
    if (older) log.scrollTop = log.scrollHeight - fromBottom;
    else if (atBottom) log.scrollTop = log.scrollHeight;
  }

  scrollToBottom() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  atBottom() {
    const log = this.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  applySearch() {
    const query = this.search.value.trim().toLowerCase();
    let shown = 0;
    for (const item of this.log.children) {
      const match = !query || item.textContent.toLowerCase().includes(query);
      item.hidden = !match;
      if (match && query && item.classList.contains("line")) shown += 1;
    }
    this.searchCount.textContent = query ? `${shown} found` : "";
  }

  setStatus(text, kind = "") {
    this.status.textContent = text;
    this.status.className = `status ${kind}`;
  }
}

function nameKeyOf(name) {
  return String(name || "").toLowerCase();
}
