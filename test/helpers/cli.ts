import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cliPath } from '../../src/federation/local-cluster.js';

const run = promisify(execFile);

/** Run `fedcredit` with these arguments; its exit code, standard output and standard error (0 on success). */
export async function cli(args: string[], timeoutMs = 60_000, env?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cliPath(), ...args], { timeout: timeoutMs, ...(env ? { env: { ...process.env, ...env } } : {}) });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
