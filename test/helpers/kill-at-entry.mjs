/**
 * Preloaded (`node --import`) into the processes of a test federation whose environment names a plan file
 * (FEDCREDIT_TEST_KILL_PLAN): the coordinator kills itself (SIGKILL, as `kill -9`) at an exact point of its ledger,
 * which no log line or frozen party can time (it records the next entry milliseconds later). The plan, written by the
 * test before it submits a job, is JSON `{ "before": kind }` (killed as the entry would be written: it is not on disk)
 * or `{ "after": kind }` (killed once the entry is on disk, its fsync returned); `"holdUntil": file` with `before`
 * holds the coordinator at the entry, its event loop running on, until the test creates the file, then kills it. The
 * plan file is deleted before the kill (all but a participant's stop, below), so the restarted coordinator runs on. Entries are found by their kind's bytes in what the ledger writes.
 *
 * `"stopBeforeWriting": { "participant": org, "file": name }` stops that participant (SIGSTOP, to itself) just before
 * it writes the named file of a job's folder, e.g. the vertical setup it received: a test freezes a party at an exact
 * point of the protocol, where a signal sent on a watch event would race the party. The test sends SIGCONT.
 */
import fs, { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { sep } from 'node:path';

const planFile = process.env.FEDCREDIT_TEST_KILL_PLAN;
const plan = () => (existsSync(planFile) ? JSON.parse(readFileSync(planFile, 'utf8')) : undefined);
if (planFile && process.argv[2] === 'participant') {
  const write = fs.writeFileSync;
  fs.writeFileSync = function (path, ...rest) {
    const stop = typeof path === 'string' ? plan()?.stopBeforeWriting : undefined;
    if (stop && path.includes(`${sep}fedcredit-state${sep}${stop.participant}${sep}jobs${sep}`) && path.split(sep).at(-1).startsWith(stop.file)) process.kill(process.pid, 'SIGSTOP');
    return write.call(this, path, ...rest);
  };
  syncBuiltinESMExports();
}
if (planFile && process.argv[2] === 'coordinator') {
  const probe = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe);
  await probe.close();
  const { write, sync } = proto;
  const kill = () => {
    // The restarted coordinator runs on; a participant's stop stays planned until the test removes the file.
    const stop = plan()?.stopBeforeWriting;
    if (stop) writeFileSync(planFile, JSON.stringify({ stopBeforeWriting: stop }));
    else rmSync(planFile, { force: true });
    process.kill(process.pid, 'SIGKILL');
  };
  const holds = (data, kind) => ArrayBuffer.isView(data) && Buffer.from(data.buffer, data.byteOffset, data.byteLength).includes(kind);
  let written = false;
  proto.write = function (data, ...rest) {
    const p = plan();
    if (p?.before && holds(data, p.before)) {
      if (!p.holdUntil) kill();
      // Held at the entry (the event loop runs on: streams flush, parties act) until the test creates the file.
      return new Promise(() => {
        setInterval(() => {
          if (existsSync(p.holdUntil)) kill();
        }, 20);
      });
    }
    if (p?.after && holds(data, p.after)) written = true;
    return write.call(this, data, ...rest);
  };
  proto.sync = async function () {
    await sync.call(this);
    if (written && plan()?.after) kill();
  };
}
