/**
 * The client commands find the coordinator the way an operator expects: --coordinator, else the `coordinator` of the
 * config given with --config (a participant's or a client's), else $FEDCREDIT_COORDINATOR, else 127.0.0.1:7700; and
 * when it cannot be reached, the error says where the address came from and how to name another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { coordinatorAddress } from '../src/client.js';
import { LocalCluster } from '../src/federation/local-cluster.js';

describe('where a client command finds the coordinator', () => {
  let dir: string;
  let cluster: LocalCluster;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedcredit-cli-address-'));
    writeFileSync(join(dir, 'coordinator.yaml'), 'listen: 127.0.0.1:0\nstate_dir: state\n');
    // Plaintext: what is tested is which address is dialled, not the certificate check that would come first.
    cluster = await LocalCluster.start({ coordinatorConfig: join(dir, 'coordinator.yaml'), participants: [], logDir: join(dir, 'logs'), insecure: true });
    writeFileSync(join(dir, 'client.yaml'), `coordinator: ${cluster.address}\n`);
    writeFileSync(join(dir, 'nowhere.yaml'), 'organisation: bank\ncoordinator: 127.0.0.1:1\n');
  });
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resolves --coordinator, then --config, then the environment, then the default', () => {
    const env = { FEDCREDIT_COORDINATOR: 'coord.example:7700' };
    expect(coordinatorAddress({ coordinator: 'a:1', config: join(dir, 'client.yaml') }, env)).toEqual({ address: 'a:1', source: '--coordinator' });
    expect(coordinatorAddress({ config: join(dir, 'client.yaml') }, env)).toEqual({ address: cluster.address, source: `the \`coordinator\` field of ${join(dir, 'client.yaml')}` });
    expect(coordinatorAddress({}, env)).toEqual({ address: 'coord.example:7700', source: '$FEDCREDIT_COORDINATOR' });
    expect(coordinatorAddress({}, {}).address).toBe('127.0.0.1:7700');
  });

  it('job status reaches the coordinator named by --config or by $FEDCREDIT_COORDINATOR', async () => {
    // An unknown job: the answer comes from the coordinator itself (not found), so the address was the right one.
    const byConfig = await cli(['job', 'status', 'job-20260101-00000000', '--config', join(dir, 'client.yaml'), '--insecure']);
    expect(byConfig.stderr).toContain('FC_NOT_FOUND: no job job-20260101-00000000');
    const byEnv = await cli(['job', 'status', 'job-20260101-00000000', '--insecure'], 60_000, { FEDCREDIT_COORDINATOR: cluster.address });
    expect(byEnv.stderr).toContain('FC_NOT_FOUND: no job job-20260101-00000000');
  });

  it('an unreachable coordinator is named with where its address came from and how to change it', async () => {
    const fromConfig = await cli(['job', 'status', 'job-20260101-00000000', '--config', join(dir, 'nowhere.yaml'), '--insecure'], 60_000, { FEDCREDIT_COORDINATOR: cluster.address });
    expect(fromConfig.code).toBe(2);
    expect(fromConfig.stderr).toContain(`FC_UNAVAILABLE: cannot reach the coordinator at 127.0.0.1:1 (from the \`coordinator\` field of ${join(dir, 'nowhere.yaml')})`);
    expect(fromConfig.stderr).toContain('fix: check that `fedcredit coordinator` is running there; name another address with --coordinator <host:port>, with --config');
    expect(fromConfig.stderr).toContain('$FEDCREDIT_COORDINATOR');

    const fromEnv = await cli(['job', 'watch', 'job-20260101-00000000', '--insecure'], 60_000, { FEDCREDIT_COORDINATOR: '127.0.0.1:1' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('cannot reach the coordinator at 127.0.0.1:1 (from $FEDCREDIT_COORDINATOR)');

    const noField = await cli(['job', 'status', 'job-20260101-00000000', '--config', join(dir, 'coordinator.yaml'), '--insecure']);
    expect(noField.code).toBe(2);
    expect(noField.stderr).toContain('field `coordinator`: Invalid input: expected string, received undefined (the field is missing)');
  });
});
