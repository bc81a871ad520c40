/**
 * Preloaded (`node --import`) into the processes of a test federation whose environment names a plan file
 * (FEDCREDIT_TEST_KILL_PLAN): the coordinator kills itself (SIGKILL, as `kill -9`) at an exact point of its ledger,
 * which no log line or frozen party can time (it records the next entry milliseconds later). The plan, written by the
 * test before it submits a job, is JSON `{ "before": kind }` (killed as the entry would be written: it is not on disk)
 * or `{ "after": kind }` (killed once the entry is on disk, its fsync returned); `"holdUntil": file` with `before`
 * holds the coordinator at the entry, its event loop running on, until the test creates the file, then kills it. The
 * plan file is deleted before the kill, so the restarted coordinator runs on. Entries are found by their kind's bytes in what the ledger writes.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';

const planFile = process.env.FEDCREDIT_TEST_KILL_PLAN;
if (planFile && process.argv[2] === 'coordinator') {
  const probe = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe);
  await probe.close();
  const { write, sync } = proto;
  const plan = () => (existsSync(planFile) ? JSON.parse(readFileSync(planFile, 'utf8')) : undefined);
  const kill = () => {
    rmSync(planFile, { force: true });
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
