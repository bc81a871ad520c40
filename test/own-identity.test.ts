import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { initCa, issueCertificate } from '../src/pki/ca.js';
import { checkOwnIdentity, identityFromDir } from '../src/wire/transport.js';

describe("a node's own certificate, checked at start against its config", () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-own-identity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses another organisation's or role's certificate at start, naming both and the fix", async () => {
    const ca = join(dir, 'pki');
    await initCa(ca);
    await issueCertificate(ca, { organisation: 'bank', role: 'participant', outDir: join(dir, 'id', 'bank') });
    await issueCertificate(ca, { organisation: 'bank', role: 'submitter', outDir: join(dir, 'id', 'bank-submitter') });
    const bank = identityFromDir(join(dir, 'id', 'bank'));

    expect(() => checkOwnIdentity(bank, { organisation: 'bank', role: 'participant' }, 'bank.yaml')).not.toThrow();
    const err = (() => {
      try {
        checkOwnIdentity(bank, { organisation: 'credit-bureau', role: 'participant' }, 'credit-bureau.yaml');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(FedcreditError);
    expect((err as FedcreditError).code).toBe(ErrorCode.CONFIG_INVALID);
    expect((err as FedcreditError).message).toBe(`credit-bureau.yaml: tls.dir ${join(dir, 'id', 'bank')} holds bank's participant certificate, but this node runs as credit-bureau's participant`);
    expect((err as FedcreditError).hint).toContain("point tls.dir at credit-bureau's participant identity folder (`fedcredit pki request --org credit-bureau --role participant`");

    const submitter = identityFromDir(join(dir, 'id', 'bank-submitter'));
    expect(() => checkOwnIdentity(submitter, { organisation: 'bank', role: 'participant' }, 'bank.yaml')).toThrow("holds bank's submitter certificate, but this node runs as bank's participant");
    expect(() => checkOwnIdentity(bank, { role: 'coordinator' }, 'coordinator.yaml')).toThrow("holds bank's participant certificate, but this node runs as a coordinator");
  });
});
