/** Starting a node or calling the coordinator without a certificate is a user error with a clear fix. */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';

describe('identity errors', () => {
  it('a node config without a tls section is refused with the fix (issue a certificate, or --insecure for tests)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-cli-id-'));
    writeFileSync(join(dir, 'data.csv'), 'id,y,x\na,0,1\nb,1,2\n');
    writeFileSync(join(dir, 'bank.yaml'), 'organisation: bank\ncoordinator: 127.0.0.1:7700\ndata:\n  path: data.csv\n  id_column: id\n  label_column: y\n  features: [{ name: x }]\n');
    const { code, stderr } = await cli(['participant', '--config', join(dir, 'bank.yaml')]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/FC_CONFIG_INVALID: .*bank.yaml has no `tls` section: nodes talk only over mutual TLS/);
    expect(stderr).toMatch(/fix: issue a certificate \(`fedcredit pki issue/);
  });

  it('a client command without --identity says which certificate it needs', async () => {
    const { code, stderr } = await cli(['job', 'status', 'job-20260101-00000000']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/no identity: the coordinator accepts only callers with a federation certificate/);
  });

  it('an identity folder without a certificate names the missing file', async () => {
    const { code, stderr } = await cli(['job', 'status', 'job-20260101-00000000', '--identity', mkdtempSync(join(tmpdir(), 'fedcredit-empty-id-'))]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/the identity folder .* has no ca.pem/);
  });

  it('an identity folder that does not exist is named as such, with the identities beside it', async () => {
    const ids = mkdtempSync(join(tmpdir(), 'fedcredit-ids-'));
    mkdirSync(join(ids, 'bank-submitter'));
    writeFileSync(join(ids, 'bank-submitter', 'cert.pem'), '');
    const { code, stderr } = await cli(['job', 'status', 'job-20260101-00000000', '--identity', join(ids, 'bank-submiter')]);
    expect(code).toBe(2);
    expect(stderr).toContain(`the identity folder ${join(ids, 'bank-submiter')} does not exist`);
    expect(stderr).toContain(`${ids} holds the identities bank-submitter`);
  });

  it('job submit names a job file it cannot read, before it dials anyone', async () => {
    const { code, stderr } = await cli(['job', 'submit', '/nonexistent/job.yaml', '--insecure']);
    expect(code).toBe(2);
    expect(stderr).toContain('FC_CONFIG_INVALID: cannot read job config /nonexistent/job.yaml: ENOENT');
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
