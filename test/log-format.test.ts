/**
 * How a coordinator or participant process logs: `--log-format text` for a person (one readable line per event),
 * `--log-format json` for a collector (one JSON object per line), and JSON by default when stdout is not a terminal.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliPath } from '../src/federation/local-cluster.js';
import { cli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fedcredit-log-format-'));
writeFileSync(join(dir, 'coordinator.yaml'), 'listen: 127.0.0.1:0\nstate_dir: state\n');

/** Start a coordinator with these options, stop it (SIGTERM) once it listens, and return what it wrote to stdout. */
async function coordinatorOutput(...options: string[]): Promise<string> {
  const ready = join(dir, `ready-${Date.now()}`);
  const child = spawn(process.execPath, [cliPath(), 'coordinator', '--config', join(dir, 'coordinator.yaml'), '--insecure', '--ready-file', ready, ...options], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    const deadline = Date.now() + 30_000;
    while (!existsSync(ready) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(ready), `the coordinator did not start: ${err}`).toBe(true);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return out;
}

describe('--log-format', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('text: one line per event a person reads, with time, level, process and message, and no JSON object', async () => {
    const lines = (await coordinatorOutput('--log-format', 'text')).trim().split('\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(line).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG): coordinator: \S/);
      expect(line).not.toMatch(/^\{/);
    }
    expect(lines.some((l) => l.includes('shutting down'))).toBe(true);
  });

  it('json, and the default when stdout is not a terminal: one JSON object per line with the process and message', async () => {
    for (const options of [['--log-format', 'json'], []]) {
      const lines = (await coordinatorOutput(...options)).trim().split('\n');
      expect(lines.length).toBeGreaterThan(1);
      for (const line of lines) expect(JSON.parse(line)).toMatchObject({ component: 'coordinator', msg: expect.any(String), level: expect.any(Number) });
    }
  });

  it('an unknown format is refused, naming the choices', async () => {
    const { code, stderr } = await cli(['coordinator', '--config', join(dir, 'coordinator.yaml'), '--log-format', 'xml']);
    expect(code).not.toBe(0);
    expect(stderr).toContain("argument 'xml' is invalid. Allowed choices are json, text.");
  });
});
