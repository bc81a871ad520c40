/** What both demos set up the same way: their output folders and the federation PKI (they run with mutual TLS). */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { identityDir, writeFederationPki } from '../../federation/pki-layout.js';
import { issueCertificate } from '../../pki/ca.js';
import { identityFromDir, type Transport } from '../../wire/transport.js';

/** CA and certificates under `<out>/pki`; returns the submitter's transport (the organisation submitting the job). */
export async function writeDemoPki(out: string, participants: string[], submitter: string): Promise<Transport> {
  await writeFederationPki(out, participants);
  const dir = identityDir(out, submitter, 'submitter');
  await issueCertificate(join(out, 'pki'), { organisation: submitter, role: 'submitter', outDir: dir });
  return identityFromDir(dir);
}

/** A fresh output folder with data/, config/ and logs/, and a way to print progress lines. */
export async function demoFolders(out: string): Promise<{ dataDir: string; configDir: string; logDir: string; say: (line: string) => void }> {
  await rm(out, { recursive: true, force: true });
  const configDir = join(out, 'config');
  await mkdir(configDir, { recursive: true });
  return { dataDir: join(out, 'data'), configDir, logDir: join(out, 'logs'), say: (line) => process.stdout.write(line + '\n') };
}
