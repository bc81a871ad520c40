/**
 * A participant that cannot reach its coordinator keeps retrying, and its log says why in words an operator can act
 * on: a TLS handshake that fails (the coordinator's certificate from a CA this identity does not trust, or this
 * identity's certificate refused by the coordinator) is logged once as an error naming the cause and the fix, not on
 * every retry; a coordinator that is not listening (yet) is no certificate problem, and is not called one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath } from '../src/federation/local-cluster.js';
import { identityDir } from '../src/federation/pki-layout.js';
import { initCa, issueCertificate } from '../src/pki/ca.js';
import { TestFederation } from './helpers/federation.js';

/** Retries each run waits for: the error must not come back with any of them. */
const RETRIES = 3;

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
  cause?: string;
  fix?: string;
}

let fed: TestFederation;
let dir: string;
const running = new Set<ChildProcess>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedcredit-dial-failure-'));
  writeFileSync(join(dir, 'bank.csv'), `id,y,x\n${Array.from({ length: 20 }, (_, i) => `e${i},${i % 2},${i / 10}`).join('\n')}\n`);
  fed = await TestFederation.start([]);
  await fed.identity('bank', 'participant');
  // Another federation's CA, and bank's certificate from it.
  await initCa(join(dir, 'other-ca'), { name: 'another federation' });
  await issueCertificate(join(dir, 'other-ca'), { organisation: 'bank', role: 'participant', outDir: join(dir, 'foreign') });
  // That certificate beside this federation's ca.pem: bank trusts the coordinator, the coordinator does not trust bank.
  cpSync(join(dir, 'foreign'), join(dir, 'refused'), { recursive: true });
  copyFileSync(join(identityDir(fed.dir, 'bank', 'participant'), 'ca.pem'), join(dir, 'refused', 'ca.pem'));
}, 120_000);

afterAll(async () => {
  for (const child of running) child.kill('SIGKILL');
  await fed?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A port nothing listens on: one the system just gave out, closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Run bank's participant with this identity folder against `coordinator` until it has retried RETRIES times; its log. */
async function dialLog(name: string, tlsDir: string, coordinator: string): Promise<LogLine[]> {
  const config = join(dir, `${name}.yaml`);
  const data = { path: join(dir, 'bank.csv'), id_column: 'id', label_column: 'y', features: [{ name: 'x' }] };
  writeFileSync(config, stringify({ organisation: 'bank', coordinator, tls: { dir: tlsDir }, state_dir: join(dir, `${name}-state`), data, consent: { job_kinds: ['horizontal'], submitters: ['*'] } }));
  const child = spawn(process.execPath, [cliPath(), 'participant', '--config', config, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => void (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => void (out += b.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const retries = () => out.split('control stream closed; reconnecting').length - 1;
  // Back-off: at most 0.5, 1, 2 and 4 s before the first retries; the deadline only keeps a stuck run from hanging.
  const deadline = Date.now() + 90_000;
  while (retries() < RETRIES + 1 && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(killer);
  running.delete(child);
  expect(retries(), `the participant retried (its output:\n${out})`).toBeGreaterThanOrEqual(RETRIES + 1);
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

const ERROR = 50;
const errorsOf = (log: LogLine[]) => log.filter((l) => l.level >= ERROR);

describe('a participant that cannot reach its coordinator', () => {
  it('logs a refused TLS handshake once, as an error naming the cause and the fix, however often it retries', async () => {
    const [untrusted, refused] = await Promise.all([dialLog('untrusted', join(dir, 'foreign'), fed.cluster.address), dialLog('refused', join(dir, 'refused'), fed.cluster.address)]);

    // Its ca.pem is another federation's: the coordinator's certificate cannot be verified.
    expect(errorsOf(untrusted)).toEqual([
      expect.objectContaining({
        msg: "cannot connect to the coordinator: the coordinator's certificate is not signed by the CA in this identity's ca.pem",
        fix: expect.stringContaining("put the federation CA's ca.pem in the identity folder"),
      }),
    ]);
    // Its certificate is another federation's: the coordinator ends the handshake.
    expect(errorsOf(refused)).toEqual([
      expect.objectContaining({
        msg: expect.stringContaining('cannot connect to the coordinator: the coordinator closed the connection during the TLS handshake: it most likely refuses this identity'),
        fix: expect.stringContaining("get a certificate from the federation's CA"),
      }),
    ]);
    // Every retry is still a warning with the same cause, for whoever reads only the last lines.
    for (const log of [untrusted, refused]) {
      const retries = log.filter((l) => l.msg === 'control stream closed; reconnecting');
      expect(new Set(retries.map((l) => l.cause)).size).toBe(1);
      expect(retries[0]!.cause).toBe(errorsOf(log)[0]!.msg.replace('cannot connect to the coordinator: ', ''));
    }
  }, 240_000);

  it('does not call a coordinator that is not listening a certificate problem', async () => {
    const log = await dialLog('nowhere', identityDir(fed.dir, 'bank', 'participant'), `127.0.0.1:${await closedPort()}`);
    expect(errorsOf(log)).toEqual([]);
    const retries = log.filter((l) => l.msg === 'control stream closed; reconnecting');
    expect(retries.every((l) => /ECONNREFUSED/.test(l.reason ?? '') && l.cause === undefined)).toBe(true);
  }, 240_000);
});
