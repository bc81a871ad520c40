import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cliPath } from '../../src/federation/local-cluster.js';

const run = promisify(execFile);

/** Run `fedcredit` with these arguments; its exit code and standard error (0 and '' on success). */
export async function cli(args: string[], timeoutMs = 60_000): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [cliPath(), ...args], { timeout: timeoutMs });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}
