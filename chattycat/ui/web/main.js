// Wiring: the login form, the link, the session and the view.

import { COMMANDS, NAME_RE, parseLine } from "./commands.js";
import { Link } from "./link.js";
import { ChatSession, HISTORY_PAGE } from "./session.js";
import { View } from "./view.js";

const NAME_KEY = "chattycat.name";
const RATE_LIMIT_RETRY_MS = 1000;
const $ = (id) => document.getElementById(id);

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

class App {
  constructor() {
    this.link = new Link({
      url: socketUrl(),
      onOpen: () => this.opened(),
      onFrame: (frame) => this.session.receive(frame),
      onDown: (info) => this.down(info),
    });
    this.session = new ChatSession({ send: (f) => this.link.send(f), storage: sessionStorage });
    this.view = new View(this.session);
    this.wantName = null;
    this.listen();
  }

  start() {
    const remembered = this.session.name || localStorage.getItem(NAME_KEY) || "";
    $("name-input").value = remembered;
    if (this.session.token && this.session.name) {
      this.enter(this.session.name); // a reload inside a live session: straight back in
    } else {
      $("name-input").focus();
    }
  }

  enter(name) {
    this.wantName = name;
    localStorage.setItem(NAME_KEY, name);
    $("login").hidden = true;
    $("chat").hidden = false;
    this.view.setStatus("connecting...", "away");
    this.view.renderAll();
    this.link.connect();
    $("message").focus();
  }

  opened() {
    this.link.send(this.session.hello(this.wantName));
  }

  down({ code, retryMs }) {
    this.session.welcomed = false;
    if (retryMs === null) return;
    const seconds = Math.max(1, Math.round(retryMs / 1000));
    this.view.setStatus(`disconnected (${code}); retrying in ${seconds} s`, "away");
  }

  // -- session events -> view ------------------------------------------------------

  listen() {
    const s = this.session;
    const v = this.view;
    const rerender = () => v.preservingScroll(() => v.renderLog());
    s.addEventListener("welcome", () => {
      v.setStatus(`connected as ${s.name}`, "up");
      v.renderAll();
    });
    s.addEventListener("hello-failed", (e) => this.helloFailed(e.detail));
    s.addEventListener("replaced", () => {
      this.link.stop();
      v.setStatus("this session was opened elsewhere; reload to take it back", "away");
    });
    s.addEventListener("switch", () => {
      v.renderAll();
      v.scrollToBottom();
      this.markReadIfSeen();
    });
    s.addEventListener("rooms", () => v.renderRooms());
    s.addEventListener("members", (e) => {
      if (!e.detail.room || e.detail.room === s.current) v.renderMembers();
    });
    s.addEventListener("history", (e) => {
      if (e.detail.room !== s.current) return v.renderRooms();
      v.preservingScroll(() => v.renderLog(), { older: e.detail.older });
      this.markReadIfSeen();
    });
    s.addEventListener("message", (e) => this.message(e.detail));
    s.addEventListener("pending", (e) => {
      if (e.detail.room === s.current) rerender();
    });
    s.addEventListener("note", (e) => {
      if (!e.detail.room || e.detail.room === s.current) rerender();
    });
    s.addEventListener("whisper", (e) => this.notify(`whisper from ${e.detail.message.from}`,
      e.detail.message.text));
    s.addEventListener("unread", () => {
      v.renderRooms();
      v.renderTitle();
    });
    s.addEventListener("rate-limited", (e) => {
      setTimeout(() => {
        const say = s.pending.get(e.detail.id);
        if (say && s.welcomed) this.link.send(say);
      }, RATE_LIMIT_RETRY_MS);
    });
  }

  message({ room, message, mention }) {
    const s = this.session;
    if (room === s.current) {
      this.view.preservingScroll(() => this.view.renderLog());
      this.markReadIfSeen();
    } else {
      this.view.renderRooms();
    }
    this.view.renderTitle();
    if (mention) this.notify(`${message.from} in #${room}`, message.text);
  }

  markReadIfSeen() {
    if (document.visibilityState === "visible" && this.view.atBottom() && this.session.current) {
      this.session.markRead(this.session.current);
    }
  }

  notify(title, body) {
    // Only when the user asked for it (the Notify button) and is looking elsewhere.
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible") return;
    new Notification(title, { body: String(body).slice(0, 200) });
  }

  helloFailed(frame) {
    this.link.stop();
    this.session.forget();
    $("chat").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = frame.message || frame.code;
    $("name-input").focus();
  }

  // -- what the user does -----------------------------------------------------------

  submitLine(line) {
    const s = this.session;
    const command = parseLine(line);
    const room = s.current;
    switch (command.kind) {
      case "ignore":
        return true;
      case "hint":
        s.note(room, "error", command.text);
        return false;
      case "say":
      case "me":
        if (!room) {
          s.note(room, "error", "join a room first: /join ROOM");
          return false;
        }
        s.say(room, command.text, command.kind === "me");
        this.view.scrollToBottom();
        return true;
      case "msg":
        return s.request({ type: "whisper", to: command.to, text: command.text });
      case "join":
        return s.join(command.room);
      case "room":
        if (!s.rooms.has(command.room)) return s.join(command.room);
        s.switchTo(command.room);
        return true;
      case "part":
        return s.request({ type: "part", room: command.room || room });
      case "who":
        return s.request({ type: "who", room: command.room || room, ref: "who" });
      case "rooms":
        return s.request({ type: "rooms" });
      case "nick":
        return s.request({ type: "nick", name: command.name });
      case "history":
        if (!this.loadOlder(command.limit || HISTORY_PAGE) && s.rooms.get(room)?.olderDone) {
          s.note(room, "info", "no older messages");
        }
        return true;
      case "quit":
        this.link.stop();
        s.forget();
        location.reload();
        return true;
      case "help":
        for (const [usage, text] of COMMANDS) s.note(room, "info", `${usage}  ${text}`);
        return true;
      default:
        return false;
    }
  }

  loadOlder(limit = HISTORY_PAGE) {
    return this.session.loadOlder(this.session.current, limit);
  }

  bindControls() {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const name = $("name-input").value.trim();
      if (!NAME_RE.test(name)) {
        $("login-error").textContent = "1-32 letters, digits, _ or -";
        return;
      }
      $("login-error").textContent = "";
      this.enter(name);
    });
    $("send-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const input = $("message");
      if (this.submitLine(input.value)) input.value = "";
    });
    $("join-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const input = $("join-input");
      if (this.submitLine(`/join ${input.value.trim()}`)) input.value = "";
      this.closePanes();
    });
    $("room-list").addEventListener("click", (e) => {
      const button = e.target.closest("button[data-room]");
      if (!button) return;
      this.session.switchTo(button.dataset.room);
      this.closePanes();
      $("message").focus();
    });
    for (const button of document.querySelectorAll(".actions button")) {
      button.addEventListener("click", () => this.action(button));
    }
    $("older").addEventListener("click", () => this.loadOlder());
    $("log").addEventListener("scroll", () => {
      if ($("log").scrollTop < 20) this.loadOlder();
      this.markReadIfSeen();
    });
    $("search").addEventListener("input", () => this.view.applySearch());
    $("notify").addEventListener("click", () => this.askNotifications());
    $("rooms-toggle").addEventListener("click", () => this.togglePane("rooms"));
    $("members-toggle").addEventListener("click", () => this.togglePane("members"));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.closePanes();
    });
    document.addEventListener("visibilitychange", () => this.markReadIfSeen());
    this.updateNotifyButton();
  }

  action(button) {
    const input = $("message");
    if (button.dataset.insert) {
      input.value = button.dataset.insert;
      input.focus();
      return;
    }
    this.submitLine(button.dataset.command);
  }

  askNotifications() {
    if (!("Notification" in window)) return;
    Notification.requestPermission().then(() => this.updateNotifyButton());
  }

  updateNotifyButton() {
    const button = $("notify");
    const supported = "Notification" in window;
    button.hidden = !supported || Notification.permission === "granted";
    button.disabled = supported && Notification.permission === "denied";
  }

  togglePane(which) {
    const pane = $(`${which}-pane`);
    const open = !pane.classList.contains("open");
    this.closePanes();
    pane.classList.toggle("open", open);
    $(`${which}-toggle`).setAttribute("aria-expanded", String(open));
    if (open) pane.querySelector("button, input")?.focus();
  }

  closePanes() {
    for (const which of ["rooms", "members"]) {
      $(`${which}-pane`).classList.remove("open");
      $(`${which}-toggle`).setAttribute("aria-expanded", "false");
    }
  }
}

const app = new App();
app.bindControls();
app.start();
window.chattycat = app; // for the browser console (and the project's browser tests)
