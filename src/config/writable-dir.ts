import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, FedcreditError } from '../errors.js';

/**
 * Make a process's own folder (`state_dir`, `ledger_dir`) with mode 0700 and prove it can be written, before anything
 * depends on it: a folder that cannot be made or written (a read-only disk, another user's folder, a path through a
 * file) is a setting to fix, named with its path and the system's reason, not a stack trace from the first write.
 */
export function writableDir(dir: string, setting: string, configFile: string): void {
  const probe = join(dir, `.fedcredit-write-check-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (err) {
    const io = err as NodeJS.ErrnoException;
    if (typeof io?.code !== 'string') throw err;
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${setting} ${dir} cannot be written: ${io.code} (${io.message})`,
      `set ${setting} in ${configFile} to a folder the user running fedcredit can create and write, on a disk with room, or give that user the folder`,
      { cause: err },
    );
  }
}
