/**
 * The coordinator's liveness check of every connection: an HTTP/2 PING on each connection every
 * `livenessPingIntervalMs(timeout)` (one in flight at a time), and a connection that leaves a ping unanswered for
 * `timeoutMs` is declared unreachable and closed. A pause shorter than the timeout is never taken for a hang. A PING is answered by the peer's event loop, so this finds a participant whose process is
 * stopped or whose event loop is blocked (a deadlock, a runaway computation), which TCP alone never reports: the
 * kernel keeps acknowledging its packets. Closing the connection ends its control stream, so the coordinator treats
 * the participant as gone (its jobs drop, pause or fail by their rules) and the participant, once it runs again,
 * reconnects as after any lost stream.
 *
 * grpc-js has a keepalive of its own, but it closes the connection without saying why; this one tells the caller
 * which peer went silent and for how long.
 */
import type { Server } from '@grpc/grpc-js';
import type { Http2SecureServer, Http2Server, ServerHttp2Session } from 'node:http2';

/** Pings are sent a third of the timeout apart, at most 5 s apart. */
export function livenessPingIntervalMs(timeoutMs: number): number {
  return Math.round(Math.min(5_000, timeoutMs / 3));
}

/** The longest a stopped or blocked peer goes unnoticed: up to one interval until the next ping, plus the timeout. */
export function livenessBoundMs(timeoutMs: number): number {
  return timeoutMs + livenessPingIntervalMs(timeoutMs);
}

/** Timers and Date.now() disagree by a millisecond or so: a tick due at the timeout must not wait for the next one. */
const TIMER_SLACK_MS = 50;

export interface LivenessOptions {
  timeoutMs: number;
  /** Called once for a connection that left a ping unanswered for `silentMs`, just before it is closed. */
  onUnreachable(peer: string, silentMs: number): void;
}

/** The peer as grpc-js's `call.getPeer()` names it, so a caller can match it with its calls. */
function peerOf(session: ServerHttp2Session): string {
  const socket = session.socket;
  if (!socket?.remoteAddress) return 'unknown';
  return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : socket.remoteAddress;
}

/**
 * Watch every connection `server` accepts from now on (call after bindAsync). grpc-js has no public handle on its
 * HTTP/2 servers; they are reached through the same field as in widenServerWindows.
 */
export function watchLiveness(server: Server, opts: LivenessOptions): void {
  const servers = [...((server as unknown as { http2Servers?: Map<Http2Server | Http2SecureServer, unknown> }).http2Servers?.keys() ?? [])];
  if (servers.length === 0) throw new Error('cannot watch connections: this grpc-js version does not expose its HTTP/2 servers (fedcredit pins @grpc/grpc-js 1.14.7; reinstall with npm ci)');
  const intervalMs = livenessPingIntervalMs(opts.timeoutMs);
  for (const http2Server of servers) {
    (http2Server as Http2Server).on('session', (session: ServerHttp2Session) => {
      const peer = peerOf(session);
      let lastTick = Date.now();
      let pingSentAt: number | undefined; // the ping in flight, if any
      const timer = setInterval(() => {
        const now = Date.now();
        const late = now - lastTick > 2 * intervalMs;
        lastTick = now;
        if (session.destroyed || session.closed) return clearInterval(timer);
        // A late tick means this process was the one not running: an answer may be waiting unread, so judge next time.
        if (late) return;
        if (pingSentAt !== undefined) {
          if (now - pingSentAt < opts.timeoutMs - TIMER_SLACK_MS) return;
          clearInterval(timer);
          opts.onUnreachable(peer, now - pingSentAt);
          session.destroy();
          return;
        }
        const sentAt = now;
        try {
          const sent = session.ping((err) => {
            if (pingSentAt === sentAt && !err) pingSentAt = undefined;
          });
          if (sent) pingSentAt = sentAt;
        } catch {
          // too many pings in flight or the session is closing: the next tick tries again
        }
      }, intervalMs);
      timer.unref();
      session.once('close', () => clearInterval(timer));
    });
  }
}
