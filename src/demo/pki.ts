/** The demo's federation PKI, written beside its configs: the demo runs with mutual TLS like a real deployment. */
import { join } from 'node:path';
import { EphemeralFederation } from '../federation/ephemeral.js';
import { issueCertificate } from '../pki/pki.js';
import { identityFromDir, type Transport } from '../wire/transport.js';

/** CA and certificates under `<out>/pki`; returns the submitter's transport (the organisation submitting the job). */
export async function writeDemoPki(out: string, participants: string[], submitter: string): Promise<Transport> {
  await EphemeralFederation.writePki(out, participants);
  const dir = join(out, 'pki', 'issued', `${submitter}-submitter`);
  await issueCertificate(join(out, 'pki'), { organisation: submitter, role: 'submitter', outDir: dir });
  return identityFromDir(dir);
}
