/**
 * The PKI layout of a federation run on one machine (the demo, the tests, the benchmarks): a CA in <dir>/pki and
 * every identity in <dir>/pki/issued/<organisation>-<role>.
 */
import { join } from 'node:path';
import { initCa, issueCertificate } from '../pki/ca.js';
import type { Role } from '../pki/names.js';

export function identityDir(dir: string, org: string, role: Role): string {
  return join(dir, 'pki', 'issued', `${org}-${role}`);
}

/** A CA and the certificates a federation needs: the coordinator's and each participant's. */
export async function writeFederationPki(dir: string, participants: string[]): Promise<void> {
  const ca = join(dir, 'pki');
  await initCa(ca, { name: 'fedcredit federation on this machine' });
  await issueCertificate(ca, { organisation: 'coordinator', role: 'coordinator', outDir: identityDir(dir, 'coordinator', 'coordinator') });
  for (const org of participants) await issueCertificate(ca, { organisation: org, role: 'participant', outDir: identityDir(dir, org, 'participant') });
}
