/**
 * `fedcredit participant egress`: what left a data owner's domain, from its own record (egress.jsonl), not the
 * coordinator's: per kind of message, how many, how many bytes, and what it carried.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readJobFile } from '../../participant/job-store.js';
import { join } from 'node:path';
import Table from 'cli-table3';
import { ErrorCode, FedcreditError } from '../errors.js';
import { EGRESS_CONTENT } from '../../participant/own-record.js';
import { relayContent } from '../vertical/lr/payloads.js';

export interface EgressRow {
  kind: string;
  to: string;
  messages: number;
  bytes: number;
  what: string;
}

interface Line {
  direction: string;
  job: string;
  kind: string;
  bytes: number | null;
  what?: string;
}

export function egressSummary(stateDir: string, jobId: string): EgressRow[] {
  const file = join(stateDir, 'egress.jsonl');
  if (!existsSync(file)) throw new FedcreditError(ErrorCode.NOT_FOUND, `no egress record at ${file}`, 'pass --config with the participant config whose node took part in the job');
  const rows = new Map<string, EgressRow>();
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    if (!text.trim()) continue;
    const l = JSON.parse(text) as Line;
    if (l.direction !== 'sent' || l.job !== jobId) continue;
    // Relays name their payload kind and recipient in the record's detail: "(train.partial for bank)"; a stream's
    // chunks ("psi.host_blinded#3") count under their kind.
    const relay = /\(([a-z._]+)(?:#\d+)? for ([a-z0-9-]+)\)/.exec(l.what ?? '');
    const kind = l.kind === 'relay' && relay ? relay[1]! : l.kind;
    const to = l.kind === 'relay' && relay ? relay[2]! : 'coordinator';
    const key = `${kind}|${to}`;
    const row = rows.get(key) ?? { kind, to, messages: 0, bytes: 0, what: l.kind === 'relay' ? relayContent(kind) : (EGRESS_CONTENT[kind] ?? kind) };
    row.messages++;
    row.bytes += l.bytes ?? 0;
    rows.set(key, row);
  }
  if (rows.size === 0)
    throw new FedcreditError(ErrorCode.NOT_FOUND, `this node's record holds nothing sent for job ${jobId}`, 'check the job id (`fedcredit job status`) and that this is the node that took part');
  if (hostsOfJob(stateDir, jobId) === 1) {
    for (const row of rows.values()) if (PAIRWISE_MASKED.has(row.kind)) row.what += `; ${ONE_HOST}`;
  }
  return [...rows.values()];
}

/** Shares masked pairwise between hosts: with a single host there is no other mask, and the guest reads them. */
const PAIRWISE_MASKED = new Set(['score.share', 'score.points_share']);
const ONE_HOST = 'this job has one host, so the sum is these values themselves: the guest reads them as they are';

/** How many hosts the job named, from this node's job folder (undefined when the folder holds no job file). */
function hostsOfJob(stateDir: string, jobId: string): number | undefined {
  const hosts = readJobFile(join(stateDir, 'jobs', jobId))?.spec.hosts;
  return Array.isArray(hosts) ? hosts.length : undefined;
}

export function formatEgress(jobId: string, rows: EgressRow[]): string {
  const table = new Table({
    head: ['message', 'to', 'count', 'bytes', 'what it carried'],
    colWidths: [22, 14, 7, 12, 70],
    wordWrap: true,
    style: process.stdout.isTTY ? {} : { head: [], border: [] },
  });
  for (const r of rows) table.push([r.kind, r.to, String(r.messages), r.bytes.toLocaleString('en'), r.what]);
  const total = rows.reduce((n, r) => n + r.bytes, 0);
  return `what left this node in job ${jobId} (from its own record):\n${table.toString()}\ntotal ${total.toLocaleString('en')} bytes in ${rows.reduce((n, r) => n + r.messages, 0)} messages; no raw value, label or id is ever among them`;
}
