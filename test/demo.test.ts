/**
 * The newcomer's path: `fedcredit demo` runs a whole federation from generated data, writes its outputs, and
 * leaves no process behind.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from '../src/federation/local-cluster.js';
import { verifyLedger } from '../src/ledger/verify.js';

const run = promisify(execFile);

function childPids(): Promise<string> {
  return run('ps', ['-eo', 'pid,args']).then((r) => r.stdout);
}

describe('fedcredit demo', () => {
  it('trains a CKKS federation of three banks and writes the model, summary.json and every log', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'fedcredit-demo-')), 'demo');
    const { stdout } = await run(process.execPath, [cliPath(), 'demo', '--out', out, '--rounds', '4'], { timeout: 180_000 });
    expect(stdout).toMatch(/round 4\/4/);
    expect(stdout).toMatch(/pooled \(upper bound\)/);

    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.mode).toBe('horizontal');
    expect(summary.rounds).toBe(4);
    expect(summary.participants).toEqual(['bank-east', 'bank-west', 'bank-north']);
    expect(summary.encryption).toBe('ckks');
    for (const key of ['federated', 'pooled', 'local']) {
      expect(summary[key].auc).toBeGreaterThan(0.6);
      expect(summary[key].ks).toBeGreaterThan(0.1);
    }
    // Federation should approach the pooled upper bound.
    expect(summary.pooled.auc - summary.federated.auc).toBeLessThan(0.02);

    expect(existsSync(join(out, 'model', 'model.json'))).toBe(true);
    expect(existsSync(join(out, 'model', 'weights.bin'))).toBe(true);
    const logs = await readdir(join(out, 'logs'));
    for (const name of ['coordinator.log', 'bank-east.log', 'bank-west.log', 'bank-north.log']) expect(logs).toContain(name);
    const coordinatorLog = await readFile(join(out, 'logs', 'coordinator.log'), 'utf8');
    expect(coordinatorLog).toContain('model published');

    // The record an auditor and each data owner get: the ledger verifies against the banks' receipts, and each
    // bank's own egress record accounts for every message it sent, with its size and what it carried.
    const audit = await verifyLedger(join(out, 'ledger'), { receiptsDir: out });
    expect(audit.ok, audit.failure?.detail).toBe(true);
    expect(audit.receiptsChecked).toBeGreaterThanOrEqual(3 * 6);
    for (const bank of summary.participants as string[]) {
      const lines = (await readFile(join(out, bank, 'egress.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
      const sent = lines.filter((l) => l.direction === 'sent');
      expect(sent.filter((l) => l.kind === 'contribution')).toHaveLength(1 + 4); // moments + 4 rounds
      for (const l of sent) {
        expect(l.bytes).toBeGreaterThan(0);
        expect(l.what.length).toBeGreaterThan(5);
      }
      expect(existsSync(join(out, bank, 'receipts'))).toBe(true);
    }

    // No coordinator or participant of this demo is left running.
    expect(await childPids()).not.toContain(out);
  });
});
