/**
 * A coordinator or participant whose state_dir (or ledger_dir) cannot be written stops at once with the setting, the
 * path, the system's reason and the fix (exit 2), not a stack trace from its first write. Found by a new user who
 * pointed state_dir at a read-only place: `fedcredit: Error: EPERM: operation not permitted, mkdir …` and a trace.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CoordinatorConfig, ParticipantConfig } from '../src/config/schemas.js';
import { ErrorCode, FedcreditError, fileSystemProblem } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { startCoordinator } from '../coordinator/server.js';
import { ParticipantNode } from '../participant/node.js';

const dir = mkdtempSync(join(tmpdir(), 'fedcredit-state-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// A path through a file cannot be made a folder, whoever runs the test (root writes anywhere else).
const file = join(dir, 'a-file.csv');
writeFileSync(file, 'id\n1\n');
const unwritable = join(file, 'state');
const log = createLogger('test', 'silent');

function refusal(run: () => unknown): Promise<FedcreditError> {
  return Promise.resolve()
    .then(run)
    .then(
      () => {
        throw new Error('expected a refusal');
      },
      (err: unknown) => {
        expect(err).toBeInstanceOf(FedcreditError);
        return err as FedcreditError;
      },
    );
}

describe('a state folder that cannot be written', () => {
  it('stops a participant before it reads its data, naming state_dir, the path, the reason and the config to fix', async () => {
    const config = ParticipantConfig.parse({ organisation: 'bank-c', coordinator: '127.0.0.1:7700', state_dir: unwritable, data: { path: 'x.csv', id_column: 'id', features: [{ name: 'a' }] } });
    const err = await refusal(() => new ParticipantNode({ config, configDir: dir, log, transport: { kind: 'insecure' }, configFile: 'bank-c.yaml' }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toBe(`state_dir ${unwritable} cannot be written: ENOTDIR (ENOTDIR: not a directory, mkdir '${unwritable}')`);
    expect(err.hint).toContain('set state_dir in bank-c.yaml to a folder the user running fedcredit can create and write');
  });

  it('stops a coordinator before it opens its ledger, for state_dir and for a ledger_dir elsewhere', async () => {
    const state = await refusal(() => startCoordinator(CoordinatorConfig.parse({ listen: '127.0.0.1:0', state_dir: unwritable }), log, { kind: 'insecure' }));
    expect(state.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(state.message).toMatch(/^state_dir .*a-file\.csv\/state cannot be written: ENOTDIR/);
    const ledger = await refusal(() => startCoordinator(CoordinatorConfig.parse({ listen: '127.0.0.1:0', state_dir: join(dir, 'coordinator'), ledger_dir: unwritable }), log, { kind: 'insecure' }));
    expect(ledger.message).toMatch(/^ledger_dir .*a-file\.csv\/state cannot be written: ENOTDIR/);
  });
});

describe('a path of the command line that cannot be written', () => {
  it('is named with the system call, the path, the reason and what to do, as the CLI prints it (exit 2), not a stack trace', async () => {
    const { writeArtifact } = await import('../src/model/artifact.js');
    const err = await writeArtifact(join(file, 'model'), { 'fedcredit.json': Buffer.from('{}') }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(fileSystemProblem(err)).toEqual({
      message: `cannot mkdir ${join(file, 'model')}: ENOTDIR (ENOTDIR: not a directory, mkdir '${join(file, 'model')}')`,
      fix: 'a part of that path is a file, not a folder: give a path inside a folder',
    });
    // Anything else stays an unexpected error, to report.
    expect(fileSystemProblem(new TypeError('x is undefined'))).toBeUndefined();
  });
});
