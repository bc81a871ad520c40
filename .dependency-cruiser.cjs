/**
 * Import rules, checked by `npm run lint` (dependency-cruiser; docs/architecture.md explains the layers).
 *
 * LAYERS lists every folder of src/ (and the files at its root), coordinator/, participant/ and bench/, lowest first.
 * A module may import modules of its own folder and of LOWER layers only: never a higher layer, never another folder
 * of its own layer. So there is no import circle between folders and no two-way tie. A new folder goes into the
 * lowest layer above everything it imports (and below everything that imports it); the check names any folder that
 * is missing here.
 *
 * The one exception: src/wire/ may name, in type-only imports, the domain types its messages carry (a message holds
 * a model's Preprocessing): types are erased, so the wire code still runs without the domain code.
 */
const LAYERS = [
  // Foundation: bytes and hashes, errors, logging, paths, seeded random numbers, metric maths.
  ['src/bytes.ts', 'src/errors.ts', 'src/log.ts', 'src/metrics.ts', 'src/paths.ts', 'src/random.ts'],
  ['src/data', 'src/he', 'src/pki', 'src/evaluation.ts'],
  ['src/config', 'src/crypto', 'src/synth'],
  // The wire: messages, framing, proto, transport (below every protocol and runner).
  ['src/wire', 'src/credit', 'src/psi'],
  ['src/model'],
  ['src/fl', 'src/ledger', 'src/client.ts'],
  ['src/federation', 'src/report', 'src/vertical'],
  // The auditor's replay, then the job kinds' declarations (which name each kind's replay).
  ['src/audit'],
  ['src/jobs'],
  // Runners: the coordinator and the participant node.
  ['coordinator', 'participant'],
  // The command line (with the demo) and the benchmarks, at the top.
  ['src/cli', 'bench'],
];

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A folder's modules, or a root file itself. */
const pathOf = (entry) => (entry.endsWith('.ts') ? `^${escapeRegExp(entry)}$` : `^${escapeRegExp(entry)}/`);
const anyOf = (entries) => entries.map(pathOf).join('|');
const listed = anyOf(LAYERS.flat());

const layerRules = LAYERS.flatMap((layer, i) =>
  layer.flatMap((entry) => {
    const higher = LAYERS.slice(i + 1).flat();
    const sameLayer = layer.filter((other) => other !== entry);
    const rules = [];
    if (higher.length > 0) {
      rules.push({
        name: 'layer-upward',
        comment: `${entry} imports a higher layer: move the shared code down, or the importer up (LAYERS in .dependency-cruiser.cjs)`,
        severity: 'error',
        from: { path: pathOf(entry) },
        to: { path: anyOf(higher), ...(entry === 'src/wire' ? { dependencyTypesNot: ['type-only'] } : {}) },
      });
    }
    if (sameLayer.length > 0) {
      rules.push({
        name: 'layer-sideways',
        comment: `${entry} imports another folder of its own layer: one of the two belongs a layer lower (LAYERS in .dependency-cruiser.cjs)`,
        severity: 'error',
        from: { path: pathOf(entry) },
        to: { path: anyOf(sameLayer) },
      });
    }
    return rules;
  }),
);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import circle: modules that need each other belong together, or the shared part in a module of its own',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'layer-unlisted',
      comment: 'a folder of src/ (or a file at its root) that LAYERS in .dependency-cruiser.cjs does not place: add it',
      severity: 'error',
      from: { path: '^(src|coordinator|participant|bench)/', pathNot: listed },
      to: {},
    },
    {
      name: 'layer-unlisted',
      comment: 'an import of a folder of src/ (or a file at its root) that LAYERS in .dependency-cruiser.cjs does not place: add it',
      severity: 'error',
      from: {},
      to: { path: '^(src|coordinator|participant|bench)/', pathNot: listed },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // TypeScript 7's compiler has no JavaScript API for dependency-cruiser; swc parses the sources, type-only
    // imports included.
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^dist/' },
  },
};
