/**
 * Replay of a vertical-boost job's record (docs/audit-ledger.md, "Replaying a vertical-boost job"). The parts never
 * leave their owners and the histograms are under the guest's key, so an auditor cannot regrow the trees; what the
 * record does prove, and this checks, each failure named by its check:
 *  - schedule: at most `boosting.trees` trees, numbered in order; no split deeper than `boosting.depth`; each node's
 *    children hold its rows between them, the root the training and validation rows the alignment recorded;
 *  - early stopping: the trees grown and kept are the ones `early_stopping_patience` gives for the logged validation
 *    AUCs (the kept trees end at the first best; growing stops when the patience runs out or at `trees`);
 *  - split owners: every split is owned by a party of the job; the first `guest_only_trees` trees by the guest only;
 *  - asks: each level's logged histogram and split asks are the protocol's for the logged tree (the root, then the
 *    smaller child of each split, to every host; a split to its owner), so no ask is of a node outside the tree;
 *  - host views: each host's own digest of the asks it answered is the digest of the asks the guest logged for it;
 *  - relays: the boost step's relayed payloads are, per host, the keys, the layout, and one ask and one answer per
 *    logged ask (and the end), nothing else;
 *  - records: the `tree_built` entries are the trees the guest reported in the boost step;
 *  - manifest: the published manifest is the blob the record names, lists the kept trees' digests in order, names the
 *    job's guest and hosts, and commits to every party's part as the party reported it at finalize.
 */
import { hex, sha256Hex } from '../bytes.js';
import { errorMessage } from '../errors.js';
import { canonicalJson } from '../ledger/canonical.js';
import type { LedgerReadEntry } from '../ledger/read.js';
import { asksDigest, loggedAsks, protocolLevels } from '../vertical/boost/record.js';
import { BOOST_STEP_REPORTS, stepReport, TreeRecord } from '../vertical/step-reports.js';
import { startReplay, type ReplayJob, type ReplayRound } from './replay-job.js';
import type { BlobRef } from './replay.js';

interface Relay {
  from: string;
  to: string;
  kind: string;
  attempt: number;
}

interface Boosting {
  trees: number;
  depth: number;
  early_stopping_patience: number;
  guest_only_trees: number;
}

export async function replayBoostJob(jobId: string, entries: LedgerReadEntry[], blob: (ref: BlobRef) => Promise<Uint8Array>): Promise<ReplayJob> {
  const { job, fail } = startReplay(jobId);
  let guest = '';
  let hosts: string[] = [];
  let boosting: Boosting | undefined;
  let rootRows: number | undefined;
  let validationRows: number | undefined;
  let boostStep: { seq: number; relayed: Relay[]; reports: Record<string, unknown> } | undefined;
  let parts: Record<string, string> | undefined;
  const trees: { seq: number; tree: TreeRecord }[] = [];
  let published: { seq: number; body: Record<string, unknown>; blobs: BlobRef[] } | undefined;
  for (const { seq, entry, body } of entries) {
    const b = body as Record<string, any>;
    switch (entry.kind) {
      case 'job_submitted':
        job.name = b.name;
        job.purpose = b.purpose;
        job.submitter = b.submitter;
        guest = b.guest;
        hosts = b.hosts;
        boosting = b.boosting;
        break;
      case 'psi_completed':
        if (typeof b.train === 'number' && typeof b.validation === 'number') {
          rootRows = b.train + b.validation;
          validationRows = b.validation;
        }
        break;
      case 'step_completed':
        // The payloads of the attempt that completed (a superseded attempt's may arrive during it).
        if (b.name === 'boost') boostStep = { seq, relayed: ((b.relayed ?? []) as Relay[]).filter((r) => r.attempt === b.attempt), reports: b.reports ?? {} };
        if (b.name === 'finalize') {
          try {
            parts = Object.fromEntries(Object.entries(b.reports as Record<string, unknown>).map(([org, r]) => [org, stepReport(BOOST_STEP_REPORTS, 'finalize', r, org).part_sha256]));
          } catch (err) {
            fail(seq, `records: ${errorMessage(err)}`);
          }
        }
        break;
      case 'tree_built': {
        const parsed = TreeRecord.safeParse(b);
        if (parsed.success) trees.push({ seq, tree: parsed.data });
        else fail(seq, `records: a tree_built entry does not hold a tree record (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
        break;
      }
      case 'model_published':
        published = { seq, body: b, blobs: entry.blobs as BlobRef[] };
        job.publishedModel = b.model_sha256;
        break;
      case 'job_ended':
        job.state = b.state;
        break;
    }
  }
  if (!boosting) {
    job.failures.push('records: no job_submitted entry with a boosting section');
    return job;
  }
  const parties = [guest, ...hosts];
  const roleByParty = Object.fromEntries([[guest, 'guest'], ...hosts.map((h) => [h, 'host'])]);
  const lastSeq = (i: number) => trees[i]?.seq ?? trees.at(-1)?.seq ?? 0;

  // records: the coordinator's tree_built entries are what the guest reported.
  if (boostStep) {
    const reported = (boostStep.reports[guest] as { trees?: unknown[] } | undefined)?.trees ?? [];
    const parsed = reported.map((t) => TreeRecord.safeParse(t));
    if (parsed.some((p) => !p.success) || canonicalJson(parsed.map((p) => p.data)) !== canonicalJson(trees.map((t) => t.tree))) {
      fail(boostStep.seq, `records: the ${trees.length} tree_built entries are not the ${reported.length} trees ${guest} reported in the boost step`);
    }
  } else if (trees.length > 0) fail(trees[0]!.seq, 'records: trees are recorded but no boost step completed');

  // schedule: the count and order of the trees.
  if (trees.length > boosting.trees) fail(lastSeq(boosting.trees), `schedule: ${trees.length} trees were grown for a job of at most ${boosting.trees}`);
  trees.forEach(({ seq, tree }, i) => {
    if (tree.tree !== i) fail(seq, `schedule: the tree recorded as number ${tree.tree} is the ${i + 1}th grown`);
  });

  // early stopping: the trees grown and kept follow from the logged validation AUCs.
  const stopping = earlyStopping(
    trees.map((t) => t.tree.validation_auc),
    boosting,
    validationRows === undefined ? undefined : validationRows > 0,
  );
  if (stopping && trees.length > 0) {
    if (trees.length !== stopping.grown) {
      fail(
        lastSeq(trees.length - 1),
        `early stopping: ${trees.length} trees were grown where the logged validation AUCs and early_stopping_patience ${boosting.early_stopping_patience} stop at ${stopping.grown}`,
      );
    }
    const badKept = trees.find(({ tree }, i) => tree.kept !== i < stopping.kept);
    if (badKept)
      fail(badKept.seq, `early stopping: tree ${badKept.tree.tree} is recorded as ${badKept.tree.kept ? 'kept' : 'dropped'}; the best validation AUC keeps the first ${stopping.kept} trees`);
  }

  // Per tree: shape, depth, owners, the asks of each level.
  for (const { seq, tree } of trees) {
    const problems = treeProblems(tree, { parties, guest, hosts, depth: boosting.depth, guestOnly: tree.tree < boosting.guest_only_trees, rootRows });
    for (const p of problems) fail(seq, `tree ${tree.tree}: ${p}`);
    job.rounds.push({
      round: tree.tree,
      purpose: 'tree',
      contributors: parties,
      rowsByParty: {},
      trainLoss: null,
      validationAuc: tree.validation_auc,
      roleByParty,
      sumOk: problems.length === 0,
      // A kept tree is the model's (the manifest check below); a dropped one has no model to check.
      modelOk: tree.kept ? true : null,
    } satisfies ReplayRound);
  }

  // host views and relays: what each host saw and what crossed the coordinator, against the logged asks.
  if (boostStep) {
    const logged = trees.map((t) => t.tree);
    const count = (from: string, to: string, kind: string) => boostStep!.relayed.filter((r) => r.from === from && r.to === to && r.kind === kind).length;
    let accounted = 0;
    for (const h of hosts) {
      const asks = loggedAsks(logged, h);
      const report = boostStep.reports[h] as { asks?: unknown; asks_sha256?: unknown } | undefined;
      if (report?.asks !== asks.length || report.asks_sha256 !== asksDigest(asks)) {
        fail(
          boostStep.seq,
          `host views: ${h} reports ${String(report?.asks)} asks answered (digest ${String(report?.asks_sha256)}); the logged trees record ${asks.length} (digest ${asksDigest(asks)}): the guest asked ${h} other than it logged`,
        );
      }
      const histograms = asks.filter((a) => a[0] === 'histograms').length;
      const splits = asks.filter((a) => a[0] === 'splits').length;
      const expected: [string, string, string, number][] = [
        [guest, h, 'boost.keys', 1],
        [h, guest, 'boost.layout', 1],
        [guest, h, 'boost.ask', asks.length],
        [h, guest, 'boost.histograms', histograms],
        [h, guest, 'boost.partition', splits],
      ];
      for (const [from, to, kind, n] of expected) {
        const seen = count(from, to, kind);
        if (seen !== n) fail(boostStep.seq, `relays: ${from} sent ${to} ${seen} ${kind} payloads in the boost step; the logged trees account for ${n}`);
        accounted += n;
      }
    }
    if (boostStep.relayed.length !== accounted) {
      fail(boostStep.seq, `relays: ${boostStep.relayed.length} payloads were relayed in the boost step; the protocol and the logged trees account for ${accounted}`);
    }
  }

  // manifest: the published model is the logged kept trees and commits to every party's part.
  if (published) {
    const problem = await manifestProblem(published, {
      kept: trees.filter((t) => t.tree.kept).map((t) => t.tree.sha256),
      guest,
      hosts,
      parts,
      blob,
    });
    job.publishedModelOk = problem === undefined;
    if (problem) fail(published.seq, `manifest: ${problem}`);
  }
  if (job.state === 'succeeded' && !published) job.failures.push('manifest: the job ended as succeeded but no model_published entry exists');
  return job;
}

/** The trees the schedule grows and keeps for these validation AUCs (src/model/gbdt.ts `boost`); undefined when unknown. */
function earlyStopping(aucs: (number | null)[], b: Boosting, hasValidation: boolean | undefined): { grown: number; kept: number } | undefined {
  const validation = hasValidation ?? aucs.some((a) => a !== null);
  if (b.early_stopping_patience === 0 || !validation) return { grown: b.trees, kept: b.trees };
  let best = -Infinity;
  let kept = 0;
  for (let t = 0; t < Math.min(aucs.length, b.trees); t++) {
    const a = aucs[t] ?? Number.NaN;
    if (a > best) {
      best = a;
      kept = t + 1;
    }
    if (t + 1 - kept >= b.early_stopping_patience) return { grown: t + 1, kept };
  }
  // Not stopped within the logged trees: it grows on to `trees` (a shorter record is caught by the count).
  return { grown: b.trees, kept };
}

/** What is wrong with one logged tree: its shape, depth and owners, and the asks of its levels. */
function treeProblems(tree: TreeRecord, job: { parties: string[]; guest: string; hosts: string[]; depth: number; guestOnly: boolean; rootRows: number | undefined }): string[] {
  const { nodes } = tree;
  const problems: string[] = [];
  if (nodes.length === 0) return ['schedule: it has no node'];
  if (job.rootRows !== undefined && nodes[0]!.rows !== job.rootRows) problems.push(`schedule: its root holds ${nodes[0]!.rows} rows; the alignment has ${job.rootRows} training and validation rows`);
  // Each node reached once from the root, children after their parent.
  const depth = new Array<number>(nodes.length).fill(-1);
  depth[0] = 0;
  for (const [i, n] of nodes.entries()) {
    if (depth[i] === -1) {
      problems.push(`schedule: node ${i} hangs from no split`);
      continue;
    }
    if (n.owner === undefined) continue;
    const { left, right } = n;
    if (left === undefined || right === undefined || left <= i || right <= i || left >= nodes.length || right >= nodes.length || left === right || depth[left] !== -1 || depth[right] !== -1) {
      problems.push(`schedule: node ${i}'s children (${String(left)}, ${String(right)}) are not two new nodes of the tree`);
      return problems;
    }
    depth[left] = depth[right] = depth[i]! + 1;
    if (nodes[left]!.rows + nodes[right]!.rows !== n.rows) problems.push(`schedule: node ${i}'s children hold ${nodes[left]!.rows} + ${nodes[right]!.rows} rows, not its ${n.rows}`);
    if (depth[i]! >= job.depth) problems.push(`schedule: node ${i} is split at depth ${depth[i]}; the job's depth is ${job.depth}`);
    if (!job.parties.includes(n.owner)) problems.push(`split owners: node ${i} is split by ${n.owner}, not a party of the job`);
    else if (job.guestOnly && n.owner !== job.guest) problems.push(`split owners: node ${i} is split by ${n.owner} in one of the first guest_only_trees trees`);
  }
  if (problems.length > 0) return problems;
  const expected = protocolLevels(nodes, job.hosts, job.depth, job.guestOnly);
  for (let l = 0; l < Math.max(expected.length, tree.levels.length); l++) {
    const want = expected[l];
    const got = tree.levels[l];
    if (canonicalJson(want) !== canonicalJson(got)) {
      problems.push(
        `asks: level ${l} logs ${got ? `nodes ${JSON.stringify(got.nodes)}, histograms ${JSON.stringify(got.histograms)}, splits ${JSON.stringify(got.splits)}` : 'nothing'}; the protocol asks ${want ? `histograms ${JSON.stringify(want.histograms)}, splits ${JSON.stringify(want.splits)} of nodes ${JSON.stringify(want.nodes)}` : 'nothing'} (the root, then the smaller child of each split, to every host; a split to its owner)`,
      );
      break;
    }
  }
  return problems;
}

async function manifestProblem(
  published: { body: Record<string, unknown>; blobs: BlobRef[] },
  want: { kept: string[]; guest: string; hosts: string[]; parts: Record<string, string> | undefined; blob: (ref: BlobRef) => Promise<Uint8Array> },
): Promise<string | undefined> {
  const ref = published.blobs.find((r) => r.name === 'manifest.json');
  if (!ref) return 'the model_published entry names no manifest.json';
  const bytes = await want.blob(ref);
  if (sha256Hex(bytes) !== published.body.model_sha256 || hex(ref.sha256) !== published.body.model_sha256) return 'the manifest blob is not the model the entry names';
  let manifest: { trees?: unknown; guest?: unknown; hosts?: unknown; parts?: Record<string, { sha256?: unknown }> };
  try {
    manifest = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return 'the manifest is not JSON';
  }
  if (canonicalJson(manifest.trees) !== canonicalJson(want.kept)) {
    const trees = Array.isArray(manifest.trees) ? manifest.trees : [];
    const at = want.kept.findIndex((d, i) => trees[i] !== d);
    return `it lists ${trees.length} trees where the record keeps ${want.kept.length}${at >= 0 && at < trees.length ? ` (tree ${at} is not the logged tree ${want.kept[at]})` : ''}`;
  }
  if (manifest.guest !== want.guest || canonicalJson(manifest.hosts) !== canonicalJson(want.hosts))
    return `it names ${String(manifest.guest)} and ${JSON.stringify(manifest.hosts)}, not the job's guest and hosts`;
  if (!want.parts) return 'no finalize step recorded the parts the manifest commits to';
  const parties = [want.guest, ...want.hosts];
  const listed = Object.keys(manifest.parts ?? {});
  const extra = listed.filter((o) => !parties.includes(o));
  if (extra.length > 0) return `it commits to parts of ${extra.join(', ')}, not parties of the job`;
  const wrong = parties.find((o) => manifest.parts?.[o]?.sha256 !== want.parts![o] || want.parts![o] === undefined);
  if (wrong) return `it does not commit to ${wrong}'s part as ${wrong} reported it at finalize`;
  return undefined;
}
