/**
 * `node dist/bench/profile-summary.js DIR [DIR...]`: where the CPU time went, from the V8 CPU profiles
 * (`.cpuprofile`) that `node --cpu-prof --cpu-prof-dir=DIR` writes, one per process and thread. Self time is
 * summed by category (from each function's script URL) and by process role, and printed as Markdown: the share of
 * active CPU (everything but `(idle)`) per category, the fedcredit files among it, and the top functions.
 * `npm run bench -- --quick --profile DIR` profiles each scenario into DIR/<scenario> and runs this on each.
 *
 * A process's role is read from its stacks: the fedcredit folder (coordinator/, participant/, bench/) whose code is
 * on the most sampled stacks. A worker thread (thread id > 0 in the file name) is counted with its process.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export const CATEGORIES = [
  'crypto: node-seal (CKKS, WASM)',
  'crypto: Node (X25519, Ed25519, SHA-256, AES)',
  'TensorFlow.js',
  'gRPC + protobuf (JS)',
  'Node: http2 / TLS / net / streams',
  'Node: module loading (start-up)',
  'Node: other internals (fs, buffers, zlib, timers)',
  'native builtins and bindings (no script)',
  'fedcredit JS glue',
  'other packages',
  '(garbage collector)',
  '(program)',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** The category of a function, and a finer label (the fedcredit file or the package) for the glue and packages. */
export function categorise(frame: CallFrame): { category: Category | '(idle)' | '(root)'; detail: string } {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(idle)' || functionName === '(root)' || functionName === '(garbage collector)' || functionName === '(program)') {
      return { category: functionName as Category, detail: functionName };
    }
    return { category: 'native builtins and bindings (no script)', detail: functionName };
  }
  if (url.startsWith('wasm://')) return { category: 'crypto: node-seal (CKKS, WASM)', detail: 'node-seal WASM' };
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) {
    if (pkg === 'node-seal') return { category: 'crypto: node-seal (CKKS, WASM)', detail: 'node-seal JS' };
    if (pkg.startsWith('@tensorflow/')) return { category: 'TensorFlow.js', detail: pkg };
    if (pkg.startsWith('@grpc/') || pkg === 'protobufjs' || pkg.startsWith('@protobufjs/')) return { category: 'gRPC + protobuf (JS)', detail: pkg };
    return { category: 'other packages', detail: pkg };
  }
  if (url.startsWith('node:')) {
    if (/^node:(internal\/)?crypto/.test(url)) return { category: 'crypto: Node (X25519, Ed25519, SHA-256, AES)', detail: url };
    if (/^node:(internal\/)?(http2|_tls|tls|net|stream|streams|stream_base_commons|js_stream_socket)/.test(url) || /^node:internal\/(http2|streams|stream_base)/.test(url)) {
      return { category: 'Node: http2 / TLS / net / streams', detail: url };
    }
    if (/^node:internal\/(modules|deps\/cjs-module-lexer)\//.test(url)) return { category: 'Node: module loading (start-up)', detail: url };
    return { category: 'Node: other internals (fs, buffers, zlib, timers)', detail: url };
  }
  const ours = ourFile(url);
  if (ours) return { category: 'fedcredit JS glue', detail: ours };
  return { category: 'other packages', detail: url };
}

const ROLE_DIRS = ['coordinator', 'participant', 'bench'] as const;
const OUTSIDE = '(no fedcredit code on the stack: GC, I/O and gRPC callbacks, start-up)';

interface Tally {
  /** microseconds of self time per category, per detail, per function */
  byCategory: Map<string, number>;
  byDetail: Map<string, number>;
  byFunction: Map<string, { us: number; category: string }>;
  /** active time by the nearest fedcredit function on the stack (its own time and the library code under it) */
  byOwner: Map<string, Map<string, number>>;
  activeUs: number;
  idleUs: number;
  processes: Set<string>;
}

function newTally(): Tally {
  return { byCategory: new Map(), byDetail: new Map(), byFunction: new Map(), byOwner: new Map(), activeUs: 0, idleUs: 0, processes: new Set() };
}

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

interface ProfileSummary {
  file: string;
  pid: string;
  thread: string;
  roleVotes: Record<(typeof ROLE_DIRS)[number], number>;
  tally: Tally;
}

/** Self time per node of one profile, categorised; and the votes for its process role. */
export interface Window {
  label: string;
  startUs: number;
  endUs: number;
}

export function summariseProfile(file: string, windows?: Window[]): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const [, , , pid = '?', thread = '0'] = basename(file).split('.');
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // The time of sample i is the gap to the next sample (V8 records the gap before each sample).
  const all = new Map<number, number>();
  const inWindows = new Map<number, number>();
  const deltas = profile.timeDeltas;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += deltas[i]!;
    const d = Math.max(0, i + 1 < deltas.length ? deltas[i + 1]! : (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length));
    const id = profile.samples[i]!;
    all.set(id, (all.get(id) ?? 0) + d);
    // Sample times are on the monotonic clock (microseconds), like process.hrtime in every process of the machine.
    if (!windows || windows.some((w) => at >= w.startUs && at <= w.endUs)) inWindows.set(id, (inWindows.get(id) ?? 0) + d);
  }
  const memo = <T>(f: (id: number, up: (id: number) => T | undefined) => T) => {
    const cache = new Map<number, T>();
    const get = (id: number): T => {
      if (!cache.has(id))
        cache.set(
          id,
          f(id, (p) => (parent.has(p) ? get(parent.get(p)!) : undefined)),
        );
      return cache.get(id)!;
    };
    return get;
  };
  // A native function (a V8 builtin or a Node binding: no script URL) counts in its caller's category: statelessDH
  // under node:crypto is X25519, writeBuffer under node:fs is file I/O.
  const categoryOf = memo<{ category: Category | '(idle)' | '(root)'; detail: string }>((id, up) => {
    const own = categorise(byId.get(id)!.callFrame);
    if (own.category !== 'native builtins and bindings (no script)') return own;
    const caller = up(id);
    return caller && caller.category !== '(root)' && caller.category !== '(idle)' ? { category: caller.category, detail: caller.detail } : own;
  });
  // The process's role: the fedcredit folder nearest the root of the stack (the bench's code calls the ledger; the
  // participant's code calls src/), voted by every sample of the whole run.
  const roleOfNode = memo<(typeof ROLE_DIRS)[number] | null>((id, up) => {
    const file = ourFile(byId.get(id)!.callFrame.url);
    return up(id) ?? ROLE_DIRS.find((d) => file?.startsWith(`${d}/`)) ?? null;
  });
  const ownerOf = memo<string>((id, up) => {
    const f = byId.get(id)!.callFrame;
    const file = ourFile(f.url);
    if (file && file !== 'bench/cpu-profile-hook.js') return f.functionName ? `${f.functionName} ${file}` : `(anonymous) ${file}:${f.lineNumber + 1}`;
    return up(id) ?? OUTSIDE;
  });
  const roleVotes = { coordinator: 0, participant: 0, bench: 0 };
  for (const [id, t] of all) {
    const role = roleOfNode(id);
    if (role && categoryOf(id).category !== '(idle)') roleVotes[role] += t;
  }
  const tally = newTally();
  for (const [id, t] of inWindows) {
    const { category, detail } = categoryOf(id);
    if (category === '(root)') continue;
    if (category === '(idle)') {
      tally.idleUs += t;
      continue;
    }
    tally.activeUs += t;
    add(tally.byCategory, category, t);
    if (category === 'fedcredit JS glue' || category === 'other packages') add(tally.byDetail, `${category === 'fedcredit JS glue' ? '' : 'package '}${detail}`, t);
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : ''}`.trim();
    const prev = tally.byFunction.get(key);
    tally.byFunction.set(key, { us: (prev?.us ?? 0) + t, category });
    const owner = ownerOf(id);
    const perCat = tally.byOwner.get(owner) ?? new Map<string, number>();
    add(perCat, category, t);
    tally.byOwner.set(owner, perCat);
  }
  tally.processes.add(pid);
  return { file, pid, thread, roleVotes, tally };
}

/** A fedcredit file (relative to dist/), or undefined for anything else (packages ship dist/ folders too). */
function ourFile(url: string): string | undefined {
  if (!url || url.includes('/node_modules/')) return undefined;
  return /\/dist\/(.+)$/.exec(url)?.[1];
}

function shortUrl(url: string): string {
  if (url.startsWith('wasm://')) return 'wasm';
  const pkg = /\/node_modules\/(.+)$/.exec(url)?.[1];
  if (pkg) return pkg;
  return ourFile(url) ?? url;
}

function merge(into: Tally, from: Tally): void {
  for (const [k, v] of from.byCategory) add(into.byCategory, k, v);
  for (const [k, v] of from.byDetail) add(into.byDetail, k, v);
  for (const [k, v] of from.byFunction) {
    const prev = into.byFunction.get(k);
    into.byFunction.set(k, { us: (prev?.us ?? 0) + v.us, category: v.category });
  }
  for (const [owner, cats] of from.byOwner) {
    const m = into.byOwner.get(owner) ?? new Map<string, number>();
    for (const [c, v] of cats) add(m, c, v);
    into.byOwner.set(owner, m);
  }
  into.activeUs += from.activeUs;
  into.idleUs += from.idleUs;
  for (const p of from.processes) into.processes.add(p);
}

/**
 * Markdown for one folder of profiles (one scenario). With `windows`, only the samples taken inside them count:
 * the steady state a benchmark figure measures, without process start-up and job set-up.
 */
export function summariseDir(dir: string, title = basename(dir), windows?: Window[], topFunctions = 5, topOwners = 8): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return `### ${title}\n\nno .cpuprofile files in ${dir}\n`;
  const profiles = files.map((f) => summariseProfile(join(dir, f), windows));
  // A process's role: the votes of all its threads together.
  const votes = new Map<string, Record<string, number>>();
  for (const p of profiles) {
    const v = votes.get(p.pid) ?? { coordinator: 0, participant: 0, bench: 0 };
    for (const r of ROLE_DIRS) v[r]! += p.roleVotes[r];
    votes.set(p.pid, v);
  }
  const roleOfPid = (pid: string) => {
    const v = votes.get(pid)!;
    const best = ROLE_DIRS.reduce((a, b) => (v[b]! > v[a]! ? b : a));
    if (v[best] === 0) return 'other';
    return best === 'bench' ? 'bench process' : best === 'participant' ? 'participants' : 'coordinator';
  };
  const groups = new Map<string, Tally>();
  const all = newTally();
  for (const p of profiles) {
    const role = roleOfPid(p.pid);
    const t = groups.get(role) ?? newTally();
    merge(t, p.tally);
    groups.set(role, t);
    merge(all, p.tally);
  }
  const roles = [...groups.keys()].sort((a, b) => ['coordinator', 'participants', 'bench process', 'other'].indexOf(a) - ['coordinator', 'participants', 'bench process', 'other'].indexOf(b));
  const pct = (us: number, of: number) => (of > 0 ? `${((100 * us) / of).toFixed(1)}%` : '');
  const s = (us: number) => `${(us / 1e6).toFixed(1)} s`;
  const lines: string[] = [];
  lines.push(`### ${title}`, '');
  const span = windows ? windows.reduce((n, w) => n + (w.endUs - w.startUs), 0) : 0;
  const scope = windows
    ? `only the ${windows.length} measured stretch${windows.length === 1 ? '' : 'es'} (${s(span)} of wall time: ${[...new Set(windows.map((w) => w.label.replace(/ rounds .*| \d+ participants.*/, '')))].join('; ')})`
    : 'whole run, start-up and set-up included';
  lines.push(`${scope}. ${profiles.length} profiles (${new Set(profiles.map((p) => p.pid)).size} processes); active CPU ${s(all.activeUs)} (idle ${s(all.idleUs)}).`, '');
  const head = ['share of active CPU', ...roles.map((r) => `${r} (${groups.get(r)!.processes.size} proc., ${s(groups.get(r)!.activeUs)})`), `all (${s(all.activeUs)})`];
  lines.push(`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`);
  for (const c of CATEGORIES) {
    const row = [c, ...roles.map((r) => pct(groups.get(r)!.byCategory.get(c) ?? 0, groups.get(r)!.activeUs)), pct(all.byCategory.get(c) ?? 0, all.activeUs)];
    if ((all.byCategory.get(c) ?? 0) > 0) lines.push(`| ${row.join(' | ')} |`);
  }
  lines.push('');
  const details = [...all.byDetail].sort((a, b) => b[1] - a[1]).slice(0, 6);
  if (details.length > 0) lines.push(`Glue and packages, largest: ${details.map(([k, v]) => `${k} ${pct(v, all.activeUs)}`).join(', ')}.`, '');
  lines.push(`Top ${topFunctions} functions by self time (all processes):`, '');
  lines.push('| function | category | share |', '| --- | --- | --- |');
  for (const [k, v] of [...all.byFunction].sort((a, b) => b[1].us - a[1].us).slice(0, topFunctions)) lines.push(`| \`${k}\` | ${v.category} | ${pct(v.us, all.activeUs)} |`);
  lines.push('');
  lines.push(`Top ${topOwners} fedcredit functions, each with the library code it calls (the nearest fedcredit frame on the stack):`, '');
  lines.push('| fedcredit function | share | mostly |', '| --- | --- | --- |');
  const owned = [...all.byOwner].map(([k, cats]) => ({ k, us: [...cats.values()].reduce((a, b) => a + b, 0), cats: [...cats].sort((a, b) => b[1] - a[1]) }));
  for (const o of owned.sort((a, b) => b.us - a.us).slice(0, topOwners)) {
    const mostly = o.cats
      .slice(0, 2)
      .map(([c, v]) => `${c} ${pct(v, o.us)}`)
      .join(', ');
    lines.push(`| \`${o.k}\` | ${pct(o.us, all.activeUs)} | ${mostly} |`);
  }
  lines.push('');
  if (roles.length > 1) {
    for (const r of roles) {
      const t = groups.get(r)!;
      const top = [...t.byOwner]
        .map(([k, cats]) => [k, [...cats.values()].reduce((a, b) => a + b, 0)] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5);
      lines.push(`- ${r}: ${top.map(([k, v]) => `\`${k}\` ${pct(v, t.activeUs)}`).join(', ')}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** The steady state (when the bench wrote windows.json beside the profiles) and the whole run. */
export function summariseScenario(dir: string, title = basename(dir)): string {
  const file = join(dir, 'windows.json');
  const windows = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Window[]) : [];
  const whole = summariseDir(dir, `${title}: whole run`);
  return windows.length > 0 ? `${summariseDir(dir, `${title}: measured rounds`, windows)}\n${whole}` : whole;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dirs = process.argv.slice(2);
  if (dirs.length === 0) {
    process.stderr.write('usage: node dist/bench/profile-summary.js DIR [DIR...]  (folders of .cpuprofile files)\n');
    process.exit(2);
  }
  for (const dir of dirs) console.log(summariseScenario(dir));
}
