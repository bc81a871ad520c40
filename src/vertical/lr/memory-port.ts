/**
 * The in-memory twin of a vertical job's messaging: N parties and an arbiter in one process, each party's PeerPort
 * handing encoded payloads to the others and the arbiter's Opener opening masked gradients. Payloads go through the
 * same codecs as on the wire, and the hosts' score shares are masked pairwise with real X25519 secrets, so a test
 * over this port runs the protocol's arithmetic exactly; only gRPC, TLS, sealing and processes are left out. The
 * PSI streams run over the same port, so the align step runs in memory too (with MemoryAlignStore).
 */
import { join } from 'node:path';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { generateBoxKeyPair, sharedSecret, type BoxKeyPair } from '../../crypto/sealed-box.js';
import { guestScoreSum, hostScoreShare } from '../secure-sum.js';
import type { Alignment } from '../party-model.js';
import type { AlignedPart, AlignStore, RecordSink } from './align.js';
import type { Opener } from './opener.js';
import { gradientLabel } from '../../he/vertical-threshold.js';
import { decodePayload, encodePayload } from './payloads.js';
import { Superseded, type PeerPort } from './port.js';
import { Inbox } from './inbox.js';

export class MemoryFederation {
  private readonly inbox = new Inbox();
  private readonly boxes = new Map<string, BoxKeyPair>();
  /** The newest attempt of each step begun: ports of older attempts are superseded. */
  private readonly latest = new Map<number, number>();
  /** Gradients opened per party in each step's attempt (the arbiter opens one per party, as the coordinator does). */
  private readonly opened = new Set<string>();

  constructor(
    readonly guest: string,
    readonly hosts: readonly string[],
    private readonly opener: Opener,
    /** How long a receive waits before it fails (a party that never sends). */
    private readonly timeoutMs = 60_000,
    /** Called with each masked gradient a party sends for opening, by that party (a shareholder remembers it). */
    private readonly sentGradient?: (party: string, purpose: string, masked: Uint8Array) => void,
  ) {
    for (const org of [guest, ...hosts]) this.boxes.set(org, generateBoxKeyPair());
  }

  /** Party `self`'s port for attempt `attempt` of step `step`; a higher attempt of the step supersedes older ports. */
  port(self: string, step: number, attempt = 0): PeerPort {
    if (!this.boxes.has(self)) throw new RangeError(`${self} is not a party of this federation`);
    if (attempt > (this.latest.get(step) ?? -1)) this.supersede(step, attempt);
    const current = () => (this.latest.get(step) ?? -1) <= attempt;
    const checkpoint = () => {
      if (!current()) throw new Superseded('superseded by a newer attempt');
    };
    const key = (kind: string, from: string, to: string) => `${kind}|${from}|${to}|${step}|${attempt}`;
    const send = async (to: string, kind: string, bytes: Uint8Array) => {
      checkpoint();
      if (!this.boxes.has(to) || to === self) throw new FedcreditError(ErrorCode.PROTOCOL, `${self} addressed a payload to ${to}, who is not another party of the job`);
      this.inbox.put(key(kind, self, to), Uint8Array.from(bytes));
    };
    const receive = (from: string, kind: string) => {
      checkpoint();
      return this.inbox.take(key(kind, from, self), this.timeoutMs, `${kind} from ${from} (step ${step})`, 'a party of the in-memory federation never sent it');
    };
    const box = this.boxes.get(self)!;
    return {
      self,
      guest: this.guest,
      hosts: this.hosts,
      send: (to, kind, value) => send(to, kind, encodePayload(kind, value)),
      receive: async (from, kind) => decodePayload(kind, await receive(from, kind)),
      openGradient: async (masked, count) => {
        checkpoint();
        const once = `${self}|${step}|${attempt}`;
        if (this.opened.has(once)) throw new FedcreditError(ErrorCode.PROTOCOL, `${self} already had a gradient decrypted in step ${step}`);
        this.opened.add(once);
        const purpose = gradientLabel('memory-job', step, attempt, self);
        this.sentGradient?.(self, purpose, masked);
        return this.opener.openGradient(masked, count, { party: self, purpose });
      },
      sendScoreShare: async (scores, purpose, kind = 'score.share') => {
        const share = hostScoreShare(scores, self, this.hosts, (h) => sharedSecret(box.privateKey, this.boxes.get(h)!.publicKey), `memory|${step}|${attempt}|${purpose}`);
        await send(this.guest, kind, encodePayload(kind, share));
      },
      receiveScoreSum: async (rows, kind = 'score.share') => {
        const shares = await Promise.all(this.hosts.map(async (h) => decodePayload(kind, await receive(h, kind))));
        return guestScoreSum(shares, rows);
      },
      psiLink: (peer) => ({ send: (kind, bytes) => send(peer, kind, bytes), receive: (kind) => receive(peer, kind), checkpoint }),
      checkpoint,
      current,
    };
  }

  /** A newer attempt of `step` begins: payloads and waits of its older attempts go. */
  private supersede(step: number, attempt: number): void {
    this.latest.set(step, attempt);
    this.inbox.supersede((k) => {
      const [, , , s, a] = k.split('|');
      return Number(s) === step && Number(a) < attempt;
    });
  }

  /** End every wait (the federation is done). */
  dispose(): void {
    this.inbox.supersede(undefined, 'the federation ended');
  }
}

/**
 * The align step's store for the in-memory harness: aligned rows and positions in memory; the PSI's own files
 * (prepared ids, working folders: src/psi keeps its sets on disk) under `scratch`, a folder the caller owns.
 */
export class MemoryAlignStore implements AlignStore {
  private readonly records = new Map<string, Uint8Array[]>();

  constructor(private readonly scratch: string) {}

  idsFolder(): string {
    return join(this.scratch, 'ids');
  }

  psiWorkFolder(attempt: number): string {
    return join(this.scratch, 'work', String(attempt));
  }

  clearAligned(): void {
    this.records.clear();
  }

  private sink(key: string): RecordSink {
    const chunks: Uint8Array[] = [];
    this.records.set(key, chunks);
    return { write: (bytes) => void chunks.push(Uint8Array.from(bytes)), close: () => undefined };
  }

  alignedRows(part: AlignedPart): RecordSink {
    return this.sink(part);
  }

  positions(host: number, part: AlignedPart): RecordSink {
    return this.sink(`host-${host}.${part}`);
  }

  readPositions(host: number, part: AlignedPart): Iterable<Uint8Array> {
    return this.records.get(`host-${host}.${part}`) ?? [];
  }

  removePositions(): void {
    for (const key of [...this.records.keys()]) if (key.startsWith('host-')) this.records.delete(key);
  }

  /** The party's aligned rows of each part, as the align step left them. */
  alignment(): Alignment {
    // A fresh copy: Buffer.concat may return a view into a shared pool, at any offset.
    const rows = (part: AlignedPart) => new Uint32Array(new Uint8Array(Buffer.concat(this.records.get(part) ?? [])).buffer);
    return { train: rows('train'), validation: rows('validation'), test: rows('test') };
  }
}
