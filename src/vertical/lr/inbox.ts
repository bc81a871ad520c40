/**
 * Payloads waiting for the step that reads them, by key (kind, sender, step, attempt): a wait ends with the payload,
 * at its deadline, or when a newer attempt supersedes it. The participant's gRPC port and the in-memory port both
 * keep their arrivals here.
 */
import { ErrorCode, FedcreditError } from '../../errors.js';
import { Superseded } from './port.js';

interface Waiter {
  resolve: (bytes: Uint8Array) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Inbox {
  private readonly items = new Map<string, Uint8Array>();
  private readonly waiters = new Map<string, Waiter>();

  put(key: string, bytes: Uint8Array): void {
    const w = this.waiters.get(key);
    if (!w) return void this.items.set(key, bytes);
    this.waiters.delete(key);
    clearTimeout(w.timer);
    w.resolve(bytes);
  }

  /** The payload under `key`, now or when it arrives; fails after `timeoutMs` naming `what` and the `fix`. */
  take(key: string, timeoutMs: number, what: string, fix: string): Promise<Uint8Array> {
    const ready = this.items.get(key);
    if (ready) {
      this.items.delete(key);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new FedcreditError(ErrorCode.UNAVAILABLE, `no ${what} within ${timeoutMs / 1000}s`, fix));
      }, timeoutMs);
      this.waiters.set(key, { resolve, reject, timer });
    });
  }

  /** Drop the payloads whose key `stale` matches (all by default) and fail their waits as superseded. */
  supersede(stale: (key: string) => boolean = () => true, reason = 'superseded by a newer attempt'): void {
    for (const k of [...this.items.keys()]) if (stale(k)) this.items.delete(k);
    for (const [k, w] of [...this.waiters]) {
      if (!stale(k)) continue;
      this.waiters.delete(k);
      clearTimeout(w.timer);
      w.reject(new Superseded(reason));
    }
  }
}
