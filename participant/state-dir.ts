import { join, resolve } from 'node:path';
import type { ParticipantConfig } from '../src/config/schemas.js';

/** Where a participant keeps its own record, job files and score requests: `state_dir` (relative to the config's folder), else fedcredit-state/<organisation>. */
export function participantStateDir(config: ParticipantConfig, configDir: string): string {
  return resolve(configDir, config.state_dir ?? join('fedcredit-state', config.organisation));
}
