// One protocol-2 WebSocket: IDENTIFY, READY, the ordered event stream, resume with `since`
// after any drop (backoff 0.5 s doubling to 15 s, with jitter), RESYNC.

const MAX_BACKOFF_MS = 15000;

export class Stream {
  /**
   * handlers: onReady({user_id, seq}, resumed), onEvent(frame), onEphemeral(frame),
   * onAck(d), onError(d), onResync(seq), onState('connecting'|'open'|'reconnecting'),
   * onFatal(code, reason) for close codes 4500-4999 (the token is no good).
   */
  constructor(token, handlers) {
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.seq = null;          // the last seq processed; null until the first READY
    this.ready = false;
    this.stopped = false;
    this.attempt = 0;
    this.timer = null;
    this.onOnline = () => { if (!this.ready) this.reconnectNow(); };
    // Offline for sure: drop the socket now (it may linger half-dead) and resume later.
    this.onOffline = () => { if (this.ws) this.ws.close(4000, 'offline'); };
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
  }

  start() { this.connect(); }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/ws?v=2`;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    this.h.onState(this.seq === null && this.attempt === 0 ? 'connecting' : 'reconnecting');
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const d = { token: this.token, v: 2 };
      if (this.seq !== null) d.since = this.seq;
      ws.send(JSON.stringify({ op: 'IDENTIFY', d }));
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      this.dispatch(frame);
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.ready = false;
      if (this.stopped) return;
      if (e.code >= 4500 && e.code <= 4999) {
        this.stopped = true;
        this.h.onFatal(e.code, e.reason);
        return;
      }
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  dispatch(frame) {
    if (!frame || typeof frame.op !== 'string') return;
    switch (frame.op) {
      case 'READY': {
        const resumed = this.seq !== null;
        this.ready = true;
        this.attempt = 0;
        // Without `since` the stream starts at READY's seq; with it, the replay that follows
        // carries the seqs after ours, and READY's seq is only the head.
        if (!resumed) this.seq = frame.d.seq;
        this.h.onState('open');
        this.h.onReady(frame.d, resumed);
        break;
      }
      case 'RESYNC':
        this.seq = frame.d.seq;
        this.h.onResync(frame.d.seq);
        break;
      case 'ACK': this.h.onAck(frame.d); break;
      case 'ERROR': this.h.onError(frame.d); break;
      case 'TYPING':
      case 'PRESENCE':
        this.h.onEphemeral(frame);
        break;
      default:
        if (typeof frame.seq === 'number') {
          if (this.seq !== null && frame.seq <= this.seq) return;   // already had it
          this.seq = frame.seq;
          this.h.onEvent(frame);
        }
    }
  }

  scheduleReconnect() {
    if (this.stopped || this.timer) return;
    this.h.onState('reconnecting');
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * base / 2;
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  /** Back online: try at once, dropping an attempt that started while offline. */
  reconnectNow() {
    if (this.stopped || this.ready) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const stale = this.ws;
      this.ws = null;              // its onclose is ignored from here on
      try { stale.close(); } catch { /* not open yet */ }
    }
    this.attempt = 0;
    this.connect();
  }

  /** Sends a frame if the socket is ready; false if it is not (the caller keeps it). */
  send(obj) {
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  isReady() { return this.ready; }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000, 'logout'); } catch { /* already closed */ }
    }
  }
}
