/**
 * `fedcredit`: the one command for every role. Run `fedcredit --help` or `fedcredit <command> --help`.
 */
import { Command, InvalidArgumentError } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { requestScores } from '../vertical/score-client.js';
import { egressSummary, formatEgress } from './egress.js';
import { loadYamlConfig } from '../config/load.js';
import { CoordinatorConfig, ParticipantConfig } from '../config/schemas.js';
import { ErrorCode, FedcreditError, isFedcreditError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { identityFromDir, insecureTransport, type Transport } from '../wire/transport.js';
import { initCa, issueCertificate, listIssued, refreshCrl, revokeCertificate, ROLES, type Role } from '../pki/pki.js';
import { softwareVersion } from '../paths.js';
import { CoordinatorClient } from '../client.js';
import { writeArtifact } from '../model/artifact.js';
import { createProgressRenderer } from './progress.js';
import { startCoordinator } from '../../coordinator/server.js';
import { ParticipantNode, participantStateDir } from '../../participant/node.js';
import { readIdList } from '../../participant/vertical-score.js';
import { Approvals } from '../../participant/approvals.js';
import { runDemo } from '../demo/run.js';
import { writeHorizontalSynth } from '../synth/sme.js';
import { writeVerticalSynth } from '../synth/vertical.js';
import { loadSynthIntoPostgres } from '../synth/postgres.js';
import type { CsvDatasetSpec } from '../data/schema.js';
import { formatVerifyReport, verifyLedger } from '../ledger/verify.js';
import { LedgerError } from '../ledger/errors.js';
import { formatReplay, replayLedger } from '../audit/replay.js';
import { replayReportHtml } from '../audit/report.js';
import { loadBatchStability, writeJobReport } from '../report/job-report.js';
import { writeArtifactReport } from '../report/artifact-report.js';
import { dataUses, formatDataUses } from '../audit/show.js';

const DEFAULT_COORDINATOR = '127.0.0.1:7700';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** Stop on SIGTERM/SIGINT: close cleanly, exit 0. */
function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const handler = async () => {
    if (closing) return;
    closing = true;
    await close().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}

function buildProgram(): Command {
  const program = new Command('fedcredit')
    .description('Privacy-preserving federated credit modelling: data stays with its owner; only encrypted values travel.')
    .version(softwareVersion())
    .showHelpAfterError()
    // `fedcredit participant egress --config X`: options after a subcommand belong to it.
    .enablePositionalOptions();

  program
    .command('coordinator')
    .description('run the coordinator: participants dial in, submitters send jobs')
    .requiredOption('-c, --config <file>', 'coordinator.yaml')
    .option('--listen <host:port>', 'override `listen` from the config')
    .option('--ready-file <file>', 'write the bound address here once listening (for scripts that use port 0)')
    .option('--insecure', 'plaintext gRPC without mutual TLS (tests only: peers are not authenticated)')
    .action(async (opts: { config: string; listen?: string; readyFile?: string; insecure?: boolean }) => {
      const config = loadYamlConfig(opts.config, CoordinatorConfig, 'coordinator');
      if (opts.listen) config.listen = opts.listen;
      const configDir = dirname(resolve(opts.config));
      config.state_dir = resolve(configDir, config.state_dir);
      const log = createLogger('coordinator', config.log_level);
      const transport = nodeTransport(config.tls, configDir, opts.insecure, opts.config, log);
      const running = await startCoordinator(config, log, transport);
      if (opts.readyFile) await writeFile(opts.readyFile, running.address);
      onShutdown(async () => {
        log.info('shutting down');
        await running.close();
      });
    });

  const participant = program
    .command('participant')
    .description("run a data owner's participant node: it dials out to the coordinator and keeps the data local")
    .option('-c, --config <file>', 'participant.yaml (required to run the node)')
    .option('--coordinator <host:port>', 'override `coordinator` from the config')
    .option('--insecure', 'plaintext gRPC without mutual TLS (tests only: peers are not authenticated)')
    .action(async (opts: { config?: string; coordinator?: string; insecure?: boolean }) => {
      if (!opts.config) throw new FedcreditError(ErrorCode.CONFIG_INVALID, 'fedcredit participant needs --config <participant.yaml>', 'e.g. fedcredit participant --config examples/vertical/bank.yaml');
      const config = loadYamlConfig(opts.config, ParticipantConfig, 'participant');
      const log = createLogger(config.organisation, config.log_level);
      const configDir = dirname(resolve(opts.config));
      const transport = nodeTransport(config.tls, configDir, opts.insecure, opts.config, log);
      const node = new ParticipantNode({ config, configDir, log, coordinator: opts.coordinator, transport });
      onShutdown(async () => {
        log.info('shutting down');
        await node.stop();
      });
      await node.start();
    });

  participant
    .command('pending')
    .description('job offers waiting for this data owner\'s approval (consent.approval: manual)')
    .requiredOption('-c, --config <file>', "the participant's config")
    .action((opts: { config: string }) => {
      const offers = approvalsFor(opts.config).pending();
      if (offers.length === 0) process.stdout.write('no offer is waiting\n');
      for (const o of offers) process.stdout.write(`${o.jobId}  ${o.kind}  "${o.name}" from ${o.submitter}: ${o.purpose}\n    columns: ${o.columns.join(', ')}\n`);
    });

  for (const [command, approved] of [['approve', true], ['reject', false]] as const) {
    participant
      .command(command)
      .argument('<job-id>')
      .description(`${command} a job offer waiting for this data owner (consent.approval: manual)`)
      .requiredOption('-c, --config <file>', "the participant's config")
      .option('--reason <text>', 'recorded with the decision', '')
      .action((jobId: string, opts: { config: string; reason: string }) => {
        const offer = approvalsFor(opts.config).decide(jobId, approved, opts.reason);
        process.stdout.write(`${approved ? 'approved' : 'rejected'} ${jobId} ("${offer.name}" from ${offer.submitter}); the node answers the coordinator within a second\n`);
      });
  }

  participant
    .command('egress')
    .description("what left this data owner's domain in a job, from the node's own record")
    .requiredOption('-c, --config <file>', "the participant's config (its state folder holds the record)")
    .requiredOption('--job <id>', 'the job')
    .action((opts: { config: string; job: string }) => {
      const config = loadYamlConfig(opts.config, ParticipantConfig, 'participant');
      const stateDir = participantStateDir(config, dirname(resolve(opts.config)));
      process.stdout.write(formatEgress(opts.job, egressSummary(stateDir, opts.job)) + '\n');
    });

  const job = program.command('job').description('submit and follow jobs');
  const coordinatorOption = ['--coordinator <host:port>', 'coordinator address', DEFAULT_COORDINATOR] as const;
  const identityOption = ['--identity <dir>', 'your certificate folder (ca.pem, cert.pem, key.pem) from `fedcredit pki issue`'] as const;
  const insecureOption = ['--insecure', 'plaintext gRPC without mutual TLS (tests only)'] as const;

  job
    .command('submit')
    .argument('<job.yaml>', 'job file')
    .description('submit a job; with --watch, follow it to the end and (with --out) fetch the model')
    .option(...coordinatorOption)
    .option(...identityOption)
    .option(...insecureOption)
    .option('--submitter <organisation>', 'with --insecure only: the organisation to name as submitter (with TLS it is the one in your certificate)', 'anonymous')
    .option('-w, --watch', 'follow progress until the job ends')
    .option('-o, --out <dir>', 'with --watch: write the published model here')
    .action(async (file: string, opts: ClientOptions & { submitter: string; watch?: boolean; out?: string }) => {
      const client = clientFor(opts);
      try {
        const jobId = await client.submitJob(await readFile(file, 'utf8'), opts.submitter);
        process.stdout.write(`submitted ${jobId}\n`);
        if (!opts.watch) return;
        await watchToEnd(client, jobId, opts.out);
      } finally {
        client.close();
      }
    });

  job
    .command('watch')
    .argument('<job-id>')
    .description('follow a job until it ends')
    .option(...coordinatorOption)
    .option(...identityOption)
    .option(...insecureOption)
    .option('-o, --out <dir>', 'write the published model here')
    .action(async (jobId: string, opts: ClientOptions & { out?: string }) => {
      const client = clientFor(opts);
      await watchToEnd(client, jobId, opts.out).finally(() => client.close());
    });

  job
    .command('status')
    .argument('<job-id>')
    .option(...coordinatorOption)
    .option(...identityOption)
    .option(...insecureOption)
    .action(async (jobId: string, opts: ClientOptions) => {
      const client = clientFor(opts);
      try {
        const s = await client.getJob(jobId);
        process.stdout.write(
          `${s.jobId}: ${s.state} (${s.stage}) round ${s.roundsDone}/${s.rounds}; participants ${s.participants.join(', ')}\n${s.message}\n` +
            (s.modelSha256.length ? `model sha256 ${Buffer.from(s.modelSha256).toString('hex')}\n` : ''),
        );
      } finally {
        client.close();
      }
    });

  job
    .command('model')
    .argument('<job-id>')
    .requiredOption('-o, --out <dir>', 'folder to write the model into')
    .option(...coordinatorOption)
    .option(...identityOption)
    .option(...insecureOption)
    .action(async (jobId: string, opts: ClientOptions & { out: string }) => {
      const client = clientFor(opts);
      try {
        await writeArtifact(opts.out, await client.downloadModel(jobId));
        process.stdout.write(`model of ${jobId} written to ${opts.out}\n`);
      } finally {
        client.close();
      }
    });

  program
    .command('score')
    .description("score enterprises with a trained vertical model: run on the guest's (the bank's) machine, the scores stay there")
    .requiredOption('-c, --config <file>', "the guest participant's config (its state folder receives the request and the scores)")
    .requiredOption('--model <job-id>', 'the vertical-lr job whose model to use')
    .option('--ids <file.csv>', 'enterprise ids to score, one per line (header `id` or `enterprise_id` allowed)')
    .option('--id <id>', 'a single enterprise id')
    .option('-o, --out <file.csv>', 'write the scores here (default: print them)')
    .option('--id-format <format>', 'uscc (check digit verified) or any', 'uscc')
    .option('--purpose <text>', 'why these enterprises are scored (kept in the record)', 'credit decision on new applications')
    .option('--coordinator <host:port>', "override the config's coordinator address")
    .option('--identity <dir>', "the bank's submitter certificate folder (`fedcredit pki issue --role submitter`)")
    .option('--insecure', 'plaintext gRPC without mutual TLS (tests only)')
    .action(async (opts: ScoreOptions) => {
      await scoreCommand(opts);
    });

  program
    .command('report')
    .description(
      "write a model report (HTML with ROC, KS, score distribution, lift, calibration, IV, scorecard): of a vertical job on its guest's machine (JOB --config), or of a downloaded horizontal model (--model)",
    )
    .argument('[job-id]', 'a vertical-lr job (with --config)')
    .option('-c, --config <file>', "vertical: the guest participant's config (the report is built from its job folder)")
    .option('-m, --model <dir>', 'horizontal: a model artifact folder (`fedcredit job model ID --out DIR`); the report is built from it alone')
    .option('-o, --out <file.html>', 'where to write the report (figures go beside it, in <name>-figures/)', 'report.html')
    .option('--batch <score-job-id>', 'vertical: add the stability of a scoring batch (score and feature PSI against training)')
    .action(async (jobId: string | undefined, opts: { config?: string; model?: string; out: string; batch?: string }, command: Command) => {
      const usage = 'give either a vertical job and its guest\'s config (`fedcredit report JOB --config GUEST.yaml`) or a downloaded horizontal model (`fedcredit report --model DIR`)';
      const vertical = jobId !== undefined || opts.config !== undefined || opts.batch !== undefined;
      if (opts.model !== undefined && vertical) command.error(`error: --model cannot be combined with a job id, --config or --batch; ${usage}`);
      if (opts.model === undefined && !vertical) command.error(`error: nothing to report on; ${usage}`);
      if (opts.model === undefined && (jobId === undefined || opts.config === undefined)) command.error(`error: ${jobId === undefined ? 'no job id' : 'no --config'}; ${usage}`);
      let figures: string[];
      if (opts.model !== undefined) {
        figures = await writeArtifactReport(resolve(opts.model), resolve(opts.out));
      } else {
        const config = loadYamlConfig(opts.config!, ParticipantConfig, 'participant');
        const jobs = join(participantStateDir(config, dirname(resolve(opts.config!))), 'jobs');
        figures = await writeJobReport(join(jobs, jobId!), resolve(opts.out), opts.batch ? { stability: loadBatchStability(join(jobs, opts.batch)) } : {});
      }
      process.stdout.write(`report written to ${opts.out} (${figures.length} figures beside it)\n`);
    });

  program
    .command('demo')
    .description('generate synthetic SME data and run a whole federation on this machine: vertical (bank, tax bureau, power company, platform) or horizontal (three banks)')
    .option('-o, --out <dir>', 'output folder', './fedcredit-demo')
    .option('--mode <mode>', 'vertical or horizontal', 'vertical')
    .option('--epochs <n>', 'vertical: most training epochs (early stopping may end sooner)', positiveInt, 30)
    .option('--rounds <n>', 'horizontal: training rounds', positiveInt, 12)
    .option('--model <type>', 'horizontal: logistic or mlp', 'logistic')
    .option('--plaintext', 'run without encryption (comparison only)')
    .option('--seed <n>', 'seed for data and training', positiveInt, 7)
    .action(async (opts: { out: string; mode: string; epochs: number; rounds: number; model: string; plaintext?: boolean; seed: number }) => {
      if (opts.mode !== 'vertical' && opts.mode !== 'horizontal') throw new InvalidArgumentError(`--mode ${opts.mode}: use vertical or horizontal`);
      if (opts.model !== 'logistic' && opts.model !== 'mlp') throw new InvalidArgumentError('--model is logistic or mlp');
      await runDemo({ mode: opts.mode, out: resolve(opts.out), epochs: opts.epochs, rounds: opts.rounds, model: opts.model, plaintext: Boolean(opts.plaintext), seed: opts.seed });
    });

  program
    .command('synth')
    .description('write the synthetic SME data sets the demo uses (see examples/synthetic-data.md)')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--mode <mode>', 'vertical (bank, tax bureau, power company, platform) or horizontal (three banks)', 'vertical')
    .option('--seed <n>', 'seed', positiveInt, 7)
    .option('--postgres <url>', 'also load each file into a table of this PostgreSQL database (postgres://user@host:port/db; password from PGPASSWORD), named after its party')
    .action(async (opts: { out: string; mode: string; seed: number; postgres?: string }) => {
      const toDatabase = async (files: { party: string; file: string; spec: CsvDatasetSpec }[]) => {
        if (opts.postgres === undefined) return;
        for (const t of await loadSynthIntoPostgres(opts.postgres, files)) process.stdout.write(`${opts.postgres}: table ${t.table}, ${t.rows} rows\n`);
      };
      if (opts.mode === 'vertical') {
        const result = await writeVerticalSynth(resolve(opts.out), { seed: opts.seed });
        for (const p of result.parties) process.stdout.write(`${resolve(opts.out, p.file)}: ${p.rows} rows, columns ${p.features.join(', ')}\n`);
        process.stdout.write(`${result.intersection} enterprises are in all four files\n`);
        await toDatabase(result.parties.map((p) => ({ party: p.party, file: resolve(opts.out, p.file), spec: p.spec })));
        return;
      }
      if (opts.mode !== 'horizontal') throw new InvalidArgumentError(`--mode ${opts.mode}: use vertical or horizontal`);
      const result = await writeHorizontalSynth(resolve(opts.out), { seed: opts.seed });
      for (const f of [...result.parties, result.test]) process.stdout.write(`${f.path}: ${f.rows} rows, bad rate ${(100 * f.badRate).toFixed(1)}%\n`);
      await toDatabase(result.parties.map((f) => ({ party: f.party, file: f.path, spec: f.spec })));
    });

  const pki = program.command('pki').description("the federation's certificate authority: certificates for every node and user, and their revocation");

  pki
    .command('init')
    .description('create a federation CA in DIR (ca.pem, ca-key.pem with mode 0600, crl.pem, issued.json)')
    .requiredOption('--dir <dir>', 'the CA folder (keep it offline, or at least away from the nodes)')
    .option('--name <name>', 'the CA\'s name', 'fedcredit federation CA')
    .option('--days <n>', 'validity in days', positiveInt, 3650)
    .action(async (opts: { dir: string; name: string; days: number }) => {
      await initCa(resolve(opts.dir), { name: opts.name, validityDays: opts.days });
      process.stdout.write(`federation CA created in ${resolve(opts.dir)}\n`);
    });

  pki
    .command('issue')
    .description('issue a certificate and key to an organisation for a role; writes cert.pem, key.pem (0600) and ca.pem into --out')
    .requiredOption('--dir <dir>', 'the CA folder')
    .requiredOption('--org <organisation>', 'the organisation (lower-case letters, digits, dashes), e.g. tax-bureau')
    .requiredOption('--role <role>', 'coordinator, participant, submitter or auditor')
    .option('--out <dir>', 'where to write the identity folder (default: <ca>/issued/<org>-<role>)')
    .option('--hosts <names>', 'coordinator only: extra host names or IPs the coordinator is reached at, comma-separated')
    .option('--days <n>', 'validity in days', positiveInt, 365)
    .action(async (opts: { dir: string; org: string; role: string; out?: string; hosts?: string; days: number }) => {
      if (!(ROLES as readonly string[]).includes(opts.role)) throw new InvalidArgumentError(`--role ${opts.role}: use ${ROLES.join(', ')}`);
      const issued = await issueCertificate(resolve(opts.dir), {
        organisation: opts.org,
        role: opts.role as Role,
        validityDays: opts.days,
        ...(opts.hosts ? { hosts: opts.hosts.split(',').map((h) => h.trim()).filter(Boolean) } : {}),
        ...(opts.out ? { outDir: resolve(opts.out) } : {}),
      });
      process.stdout.write(`issued ${opts.role} certificate for ${opts.org} (serial ${issued.serial}): ${dirname(issued.certFile)}\n`);
    });

  pki
    .command('revoke')
    .description('revoke certificates and re-sign the revocation list; a coordinator using it reloads it within seconds')
    .requiredOption('--dir <dir>', 'the CA folder')
    .option('--org <organisation>', 'revoke this organisation\'s certificates')
    .option('--role <role>', 'with --org: only this role')
    .option('--serial <hex>', 'revoke one certificate by serial number')
    .action(async (opts: { dir: string; org?: string; role?: string; serial?: string }) => {
      if (Boolean(opts.org) === Boolean(opts.serial)) throw new InvalidArgumentError('give --org (optionally with --role) or --serial');
      const selector = opts.serial ? { serial: opts.serial } : { organisation: opts.org!, ...(opts.role ? { role: opts.role as Role } : {}) };
      const result = await revokeCertificate(resolve(opts.dir), selector);
      process.stdout.write(`revoked: ${result.revoked.join(', ') || 'none'}${result.alreadyRevoked.length ? `; already revoked: ${result.alreadyRevoked.join(', ')}` : ''}\ncopy ${join(resolve(opts.dir), 'crl.pem')} to the coordinator's tls.crl path if it is elsewhere\n`);
    });

  pki
    .command('list')
    .description('the certificates this CA issued, with their state')
    .requiredOption('--dir <dir>', 'the CA folder')
    .action(async (opts: { dir: string }) => {
      for (const c of await listIssued(resolve(opts.dir))) process.stdout.write(`${c.serial}  ${c.organisation.padEnd(20)} ${c.role.padEnd(12)} until ${c.notAfter}${c.revoked ? '  REVOKED' : ''}\n`);
    });

  pki
    .command('refresh-crl')
    .description('re-sign the revocation list before it expires (it is valid 7 days; handshakes fail once it has expired)')
    .requiredOption('--dir <dir>', 'the CA folder')
    .action(async (opts: { dir: string }) => {
      await refreshCrl(resolve(opts.dir));
      process.stdout.write(`revocation list re-signed: ${join(resolve(opts.dir), 'crl.pem')}\n`);
    });

  const audit = program.command('audit').description("check a ledger as an auditor: integrity, replay, data use");

  audit
    .command('fetch')
    .description("copy the coordinator's audit ledger over the network (needs an auditor certificate), then verify it")
    .requiredOption('-o, --out <dir>', 'folder to write the copy into')
    .option(...coordinatorOption)
    .option(...identityOption)
    .option(...insecureOption)
    .action(async (opts: ClientOptions & { out: string }) => {
      const client = clientFor(opts);
      try {
        const files = await client.readLedger(resolve(opts.out));
        process.stdout.write(`${files.length} files copied to ${resolve(opts.out)}\n`);
      } finally {
        client.close();
      }
      await verifyAndReport(resolve(opts.out));
    });

  audit
    .command('verify')
    .argument('<ledger>', 'ledger folder (entries.log, blobs/, signers.json)')
    .option('--receipts <dir>', "folder of participants' receipts (*.receipts / *.sth files, searched recursively)")
    .description('check every signature, the hash chain, blobs, and the Merkle tree heads participants hold')
    .action(async (dir: string, opts: { receipts?: string }) => {
      await verifyAndReport(dir, opts.receipts);
    });

  audit
    .command('replay')
    .argument('<ledger>', 'ledger folder')
    .option('--job <id>', 'only this job')
    .option('--report <file.html>', 'also write a self-contained HTML report with the training curves')
    .description('re-add the logged encrypted updates and re-apply the logged aggregates, up to the published model')
    .action(async (dir: string, opts: { job?: string; report?: string }) => {
      const report = await replayLedger(dir, { jobId: opts.job });
      process.stdout.write(formatReplay(report) + '\n');
      if (opts.report) {
        await writeFile(opts.report, await replayReportHtml(report, resolve(dir)));
        process.stdout.write(`report written to ${opts.report}\n`);
      }
      if (!report.ok) process.exitCode = 4;
    });

  audit
    .command('show')
    .argument('<ledger>', 'ledger folder')
    .option('--job <id>', 'only this job')
    .option('--party <organisation>', 'only this data owner')
    .description('who used which dataset (schema hash, rows, id-set hash), when, in which job, for which purpose')
    .action((dir: string, opts: { job?: string; party?: string }) => {
      process.stdout.write(formatDataUses(dataUses(dir, { jobId: opts.job, party: opts.party })) + '\n');
    });

  return program;
}

type ScoreOptions = { config: string; model: string; ids?: string; id?: string; out?: string; idFormat: string; purpose: string; coordinator?: string; identity?: string; insecure?: boolean };

async function scoreCommand(opts: ScoreOptions): Promise<void> {
  if (Boolean(opts.ids) === Boolean(opts.id)) throw new FedcreditError(ErrorCode.CONFIG_INVALID, 'give either --ids <file.csv> or --id <id>', 'e.g. fedcredit score --config bank.yaml --model JOB --id 91350100M000100Y43');
  if (opts.idFormat !== 'uscc' && opts.idFormat !== 'any') throw new InvalidArgumentError('--id-format is uscc or any');
  const config = loadYamlConfig(opts.config, ParticipantConfig, 'participant');
  const ids = opts.ids ? readIdList(resolve(opts.ids)) : [opts.id!];
  process.stderr.write(`scoring ${ids.length} enterprise(s) with ${opts.model}\n`);
  const result = await requestScores({
    coordinator: opts.coordinator ?? config.coordinator,
    transport: clientTransport(opts),
    organisation: config.organisation,
    stateDir: participantStateDir(config, dirname(resolve(opts.config))),
    modelJob: opts.model,
    ids,
    idFormat: opts.idFormat,
    purpose: opts.purpose,
  });
  if (opts.out) {
    await writeFile(resolve(opts.out), result.csv, { mode: 0o600 });
    process.stdout.write(`${result.message}\nscores written to ${opts.out}\n`);
  } else {
    process.stdout.write(result.csv);
  }
}

function approvalsFor(configFile: string): Approvals {
  const config = loadYamlConfig(configFile, ParticipantConfig, 'participant');
  return new Approvals(participantStateDir(config, dirname(resolve(configFile))));
}

/** Verify a ledger folder, print the report, and exit 4 if it does not verify. */
async function verifyAndReport(dir: string, receiptsDir?: string): Promise<void> {
  const report = await verifyLedger(dir, { receiptsDir });
  process.stdout.write(formatVerifyReport(report) + '\n');
  if (!report.ok) process.exitCode = 4;
}

interface ClientOptions {
  coordinator: string;
  identity?: string;
  insecure?: boolean;
}

/** A submitter's or auditor's transport: its certificate folder, or plaintext with --insecure. */
function clientTransport(opts: { identity?: string; insecure?: boolean }): Transport {
  if (opts.insecure) return insecureTransport();
  if (!opts.identity) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, 'no identity: the coordinator accepts only callers with a federation certificate', 'pass --identity <folder> with the ca.pem, cert.pem and key.pem that `fedcredit pki issue --role submitter` (or auditor) wrote');
  }
  return identityFromDir(opts.identity);
}

function clientFor(opts: ClientOptions): CoordinatorClient {
  return new CoordinatorClient(opts.coordinator, clientTransport(opts));
}

/** A coordinator's or participant's transport: the config's `tls` section, or plaintext with --insecure. */
function nodeTransport(tls: { dir: string; crl?: string } | undefined, configDir: string, insecure: boolean | undefined, configFile: string, log: Logger): Transport {
  if (insecure) return insecureTransport(log);
  if (!tls) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${configFile} has no \`tls\` section: nodes talk only over mutual TLS`,
      'issue a certificate (`fedcredit pki issue --dir <ca> --org <organisation> --role <role> --out <folder>`) and add `tls: { dir: <folder> }` to the config; --insecure runs without TLS, for tests only',
    );
  }
  return identityFromDir(resolve(configDir, tls.dir), { crl: tls.crl ? resolve(configDir, tls.crl) : undefined });
}

async function watchToEnd(client: CoordinatorClient, jobId: string, out?: string): Promise<void> {
  const renderer = createProgressRenderer();
  const last = await client.watchJob(jobId, (e) => renderer.onEvent(e));
  renderer.stop();
  if (last.state !== 'succeeded') {
    process.stderr.write(`job ${jobId} ${last.state}: ${last.message}\n`);
    process.exitCode = 3;
    return;
  }
  if (out) {
    await writeArtifact(out, await client.downloadModel(jobId));
    process.stdout.write(`model written to ${out}\n`);
  }
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (isFedcreditError(err)) {
      process.stderr.write(`fedcredit: ${err.describe()}\n`);
      process.exit(2);
    }
    if (err instanceof LedgerError) {
      process.stderr.write(`fedcredit: audit ledger (${err.problem}): ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
