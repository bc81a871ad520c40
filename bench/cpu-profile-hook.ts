/**
 * A CPU profiler for every process and thread of a benchmark, loaded with
 * `NODE_OPTIONS="--import file://…/dist/bench/cpu-profile-hook.js"` and FEDCREDIT_CPU_PROF_DIR=<folder>.
 * Node 20 refuses `--cpu-prof` in NODE_OPTIONS, and the local cluster starts its coordinator and participants with
 * `node <cli>` (no execArgv), so the bench cannot pass the flag to them; NODE_OPTIONS reaches them, and this module
 * does what `--cpu-prof` does: V8's sampling profiler from start to exit (1 ms interval), written as
 * CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile, the same format and name. Worker threads load it too, and
 * write their profile in half-second slices (see below).
 */
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';

const dir = process.env.FEDCREDIT_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  let seq = 0;
  // Messages to the inspector of the current thread are dispatched synchronously, so this works in 'exit'.
  const write = (restart: boolean) => {
    session.post('Profiler.stop', (err, result) => {
      const idle = new Set(err ? [] : result.profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
      if (!err && result.profile.samples?.some((id) => !idle.has(id))) {
        const d = new Date();
        const p = (n: number, w = 2) => String(n).padStart(w, '0');
        const stamp = `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}.${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `CPU.${stamp}.${process.pid}.${threadId}.${p(++seq, 3)}.cpuprofile`), JSON.stringify(result.profile));
      }
    });
    if (restart) session.post('Profiler.start');
  };
  if (isMainThread) {
    process.once('exit', () => write(false));
  } else {
    // A worker thread is usually ended by terminate() or by its process exiting, and then runs no 'exit' handler:
    // it writes what it has every half second instead (a profile per slice; the summary adds them up).
    setInterval(() => write(true), 500).unref();
  }
}
