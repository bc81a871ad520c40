/**
 * A federation on one machine: the coordinator and each participant as separate OS processes on 127.0.0.1, with
 * ports picked free and each process's output in its own log file. The demo and the end-to-end tests run on it;
 * `stop()` (also run on exit) leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { ErrorCode, FedcreditError } from '../errors.js';

export interface ClusterOptions {
  coordinatorConfig: string;
  participants: { name: string; config: string }[];
  logDir: string;
  /** Extra environment for every child process. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Run every process with --insecure (plaintext gRPC): only for tests that say why. */
  insecure?: boolean;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function cliPath(): string {
  return join(packageRoot(), 'bin', 'fedcredit.js');
}

export class LocalCluster {
  private readonly children = new Map<string, ChildProcess>();

  private constructor(
    readonly address: string,
    private readonly opts: ClusterOptions,
  ) {}

  static async start(opts: ClusterOptions): Promise<LocalCluster> {
    await mkdir(opts.logDir, { recursive: true });
    const readyFile = join(opts.logDir, 'coordinator.address');
    await rm(readyFile, { force: true });
    const coordinator = spawnCli('coordinator', ['coordinator', '--config', opts.coordinatorConfig, '--ready-file', readyFile, ...insecureFlag(opts)], opts);
    const address = await waitForFile(readyFile, coordinator, opts.readyTimeoutMs ?? 30_000, join(opts.logDir, 'coordinator.log'));
    const cluster = new LocalCluster(address, opts);
    cluster.children.set('coordinator', coordinator);
    for (const p of opts.participants) cluster.startParticipant(p.name);
    return cluster;
  }

  /** Start the coordinator again on the same address (after a kill), so participants find it by themselves. */
  async restartCoordinator(): Promise<void> {
    const readyFile = join(this.opts.logDir, 'coordinator.address');
    await rm(readyFile, { force: true });
    const args = ['coordinator', '--config', this.opts.coordinatorConfig, '--listen', this.address, '--ready-file', readyFile, ...insecureFlag(this.opts)];
    const coordinator = spawnCli('coordinator', args, this.opts);
    await waitForFile(readyFile, coordinator, this.opts.readyTimeoutMs ?? 30_000, join(this.opts.logDir, 'coordinator.log'));
    this.children.set('coordinator', coordinator);
  }

  startParticipant(name: string): void {
    const p = this.opts.participants.find((q) => q.name === name);
    if (!p) throw new Error(`no participant ${name} in this cluster`);
    this.children.set(name, spawnCli(name, ['participant', '--config', p.config, '--coordinator', this.address, ...insecureFlag(this.opts)], this.opts));
  }

  process(name: string): ChildProcess | undefined {
    return this.children.get(name);
  }

  /** Send a signal to one process and wait for it to exit. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.children.get(name);
    if (!child) return;
    await terminate(child, signal);
    this.children.delete(name);
  }

  /** SIGTERM everyone (participants first), SIGKILL what is still running after 5 s. */
  async stop(): Promise<void> {
    const names = [...this.children.keys()].sort((a, b) => (a === 'coordinator' ? 1 : b === 'coordinator' ? -1 : 0));
    for (const name of names) await this.kill(name, 'SIGTERM');
  }
}

function insecureFlag(opts: ClusterOptions): string[] {
  return opts.insecure ? ['--insecure'] : [];
}

function spawnCli(name: string, args: string[], opts: ClusterOptions): ChildProcess {
  const logFile = join(opts.logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [cliPath(), ...args], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...opts.env },
  });
  closeSync(fd);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitForFile(file: string, child: ChildProcess, timeoutMs: number, logFile: string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.trim()) return text.trim();
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = await readFile(logFile, 'utf8').catch(() => '');
  child.kill('SIGKILL');
  throw new FedcreditError(ErrorCode.UNAVAILABLE, `the coordinator did not start (see ${logFile}):\n${log.split('\n').slice(-8).join('\n')}`, 'fix the problem its log names and run again');
}
