// The WebSocket to the server, reconnecting with backoff: no DOM.
//
// One text message is one PROTOCOL.md frame. After a drop the link waits a
// random delay and tries again: the first retry within a second (a server
// restart is usually quick), then doubling up to 30 s, with "full jitter" so
// that a hundred browsers dropped at once do not all come back at once.

export const FIRST_RETRY_MS = 800;
export const MAX_RETRY_MS = 30000;

export function retryDelay(attempt, random = Math.random) {
  const ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
  return Math.floor(ceiling * (0.25 + 0.75 * random()));
}

export class Link {
  /**
   * @param {{url: string, onOpen: () => void, onFrame: (frame: object) => void,
   *          onDown: (info: {code: number, reason: string, retryMs: number|null}) => void}} options
   */
  constructor({ url, onOpen, onFrame, onDown }) {
    this.url = url;
    this.onOpen = onOpen;
    this.onFrame = onFrame;
    this.onDown = onDown;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.timer);
    this.timer = null;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.onOpen();
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      let retryMs = null;
      if (!this.stopped) {
        retryMs = retryDelay(this.attempt);
        this.attempt += 1;
        this.timer = setTimeout(() => this.connect(), retryMs);
      }
      this.onDown({ code: event.code, reason: event.reason, retryMs });
    };
  }

  /** Send a frame now; false when the socket is not open (the caller keeps it). */
  send(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Reconnect at once (the user asked), forgetting the backoff. */
  retryNow() {
    if (this.socket) return;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
  }
}
