/**
 * `fedcredit`: the one command for every role. Run `fedcredit --help` or `fedcredit <command> --help`.
 */
// Each command imports what it runs when it runs (`await import` in its action): a participant does not load the
// coordinator, the demo or the audit replay, and `fedcredit job status` loads none of them.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadYamlConfig } from '../config/load.js';
import { CoordinatorConfig, JobSpec, ParticipantConfig } from '../config/schemas.js';
import { ErrorCode, FedcreditError, errorMessage, fileSystemProblem, isFedcreditError } from '../errors.js';
import { createLogger, LOG_FORMATS, type LogFormat, type Logger } from '../log.js';
import { checkOwnIdentity, identityFromDir, insecureTransport, type Transport } from '../wire/transport.js';
import { ROLES, type Role } from '../pki/names.js';
import { initCa, issueCertificate, listIssued, refreshCrl, revokeCertificate, signCertificateRequest } from '../pki/ca.js';
import { requestCertificate } from '../pki/identity.js';
import { Approvals } from '../../participant/approvals.js';
import { softwareVersion } from '../paths.js';
import { COORDINATOR_ENV, CoordinatorClient, DEFAULT_COORDINATOR, coordinatorAddress } from '../client.js';
import { participantStateDir } from '../../participant/state-dir.js';
import type { IdFormat } from '../psi/ids.js';
import type { CsvDatasetSpec } from '../data/schema.js';
import { LedgerError } from '../ledger/errors.js';
import type { ReplayReport } from '../audit/replay.js';
import { hex } from '../bytes.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** How a node process logs: --log-format, else text on a terminal and JSON lines elsewhere (files, pipes, collectors). */
const logFormatOption = () =>
  new Option('--log-format <format>', 'text (one readable line per event) or json (one JSON object per line); default: text on a terminal, json otherwise').choices(LOG_FORMATS);

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
    .addOption(logFormatOption())
    .action(async (opts: { config: string; listen?: string; readyFile?: string; insecure?: boolean; logFormat?: LogFormat }) => {
      const config = loadYamlConfig(opts.config, CoordinatorConfig, 'coordinator');
      if (opts.listen) config.listen = opts.listen;
      const configDir = dirname(resolve(opts.config));
      config.state_dir = resolve(configDir, config.state_dir);
      const log = createLogger('coordinator', config.log_level, opts.logFormat);
      const transport = nodeTransport(config.tls, configDir, opts.insecure, opts.config, log);
      checkOwnIdentity(transport, { role: 'coordinator' }, opts.config);
      const { startCoordinator } = await import('../../coordinator/server.js');
      const running = await startCoordinator(config, log, transport);
      running.failed.catch(async (err: unknown) => {
        process.stderr.write(`fedcredit: ${isFedcreditError(err) ? err.describe() : String(err)}\n`);
        await running.close().catch(() => undefined);
        process.exit(2);
      });
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
    .addOption(logFormatOption())
    .action(async (opts: { config?: string; coordinator?: string; insecure?: boolean; logFormat?: LogFormat }) => {
      if (!opts.config)
        throw new FedcreditError(ErrorCode.CONFIG_INVALID, 'fedcredit participant needs --config <participant.yaml>', 'e.g. fedcredit participant --config examples/vertical/bank.yaml');
      const config = loadYamlConfig(opts.config, ParticipantConfig, 'participant');
      const log = createLogger(config.organisation, config.log_level, opts.logFormat);
      const configDir = dirname(resolve(opts.config));
      const transport = nodeTransport(config.tls, configDir, opts.insecure, opts.config, log);
      checkOwnIdentity(transport, { organisation: config.organisation, role: 'participant' }, opts.config);
      const { ParticipantNode } = await import('../../participant/node.js');
      const node = new ParticipantNode({ config, configDir, log, coordinator: opts.coordinator, transport, configFile: resolve(opts.config) });
      onShutdown(async () => {
        log.info('shutting down');
        await node.stop();
      });
      await node.start();
    });

  participant
    .command('pending')
    .description("job offers waiting for this data owner's approval (consent.approval: manual)")
    .requiredOption('-c, --config <file>', "the participant's config")
    .action((opts: { config: string }) => {
      const offers = approvalsFor(opts.config).pending();
      if (offers.length === 0) process.stdout.write('no offer is waiting\n');
      for (const o of offers)
        process.stdout.write(
          `${o.jobId}  ${o.kind}  "${o.name}" from ${o.submitter}: ${o.purpose}\n    columns: ${o.columns.join(', ')}\n${(o.shares ?? []).map((s) => `    also sends: ${s}\n`).join('')}`,
        );
    });

  for (const [command, approved] of [
    ['approve', true],
    ['reject', false],
  ] as const) {
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
    .action(async (opts: { config: string; job: string }) => {
      const config = loadYamlConfig(opts.config, ParticipantConfig, 'participant');
      const stateDir = participantStateDir(config, dirname(resolve(opts.config)));
      const { egressSummary, formatEgress } = await import('./egress.js');
      process.stdout.write(formatEgress(opts.job, egressSummary(stateDir, opts.job)) + '\n');
    });

  const job = program.command('job').description('submit and follow jobs');
  const coordinatorOption = ['--coordinator <host:port>', `coordinator address (default: the \`coordinator\` of --config, else $${COORDINATOR_ENV}, else ${DEFAULT_COORDINATOR})`] as const;
  const configOption = ['-c, --config <file>', 'a participant or client config: its `coordinator` field names the coordinator'] as const;
  const identityOption = ['--identity <dir>', 'your certificate folder (ca.pem, cert.pem, key.pem) from `fedcredit pki issue`'] as const;
  const insecureOption = ['--insecure', 'plaintext gRPC without mutual TLS (tests only)'] as const;

  job
    .command('submit')
    .argument('<job.yaml>', 'job file')
    .description('submit a job; with --watch, follow it to the end and (with --out) fetch the model')
    .option(...coordinatorOption)
    .option(...configOption)
    .option(...identityOption)
    .option(...insecureOption)
    .option('--submitter <organisation>', 'with --insecure only: the organisation to name as submitter (with TLS it is the one in your certificate)', 'anonymous')
    .option('-w, --watch', 'follow progress until the job ends')
    .option('-o, --out <dir>', 'with --watch: write the published model here')
    .action(async (file: string, opts: ClientOptions & { submitter: string; watch?: boolean; out?: string }) => {
      // Checked here first, so that a missing file or a wrong field is named by the file's own name.
      loadYamlConfig(file, JobSpec, 'job', '`job submit`');
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
    .option(...configOption)
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
    .option(...configOption)
    .option(...identityOption)
    .option(...insecureOption)
    .action(async (jobId: string, opts: ClientOptions) => {
      const client = clientFor(opts);
      try {
        const s = await client.getJob(jobId);
        process.stdout.write(
          `${s.jobId}: ${s.state} (${s.stage}) round ${s.roundsDone}/${s.rounds}; participants ${s.participants.join(', ')}\n${s.message}\n` +
            (s.modelSha256.length ? `model sha256 ${hex(s.modelSha256)}\n` : ''),
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
    .option(...configOption)
    .option(...identityOption)
    .option(...insecureOption)
    .action(async (jobId: string, opts: ClientOptions & { out: string }) => {
      const client = clientFor(opts);
      try {
        const { writeArtifact } = await import('../model/artifact.js');
        await writeArtifact(opts.out, await client.downloadModel(jobId));
        process.stdout.write(`model of ${jobId} written to ${opts.out}\n`);
      } finally {
        client.close();
      }
    });

  program
    .command('score')
    .description(
      "score enterprises: with a vertical model on the guest's (the bank's) machine, every party computing its part (--config, --model JOB, --ids or --id); or with a downloaded horizontal model, locally (--model DIR --data FILE.csv)",
    )
    .option(
      '-c, --config <file>',
      "vertical: the guest participant's config (its state folder receives the request and the scores); horizontal: optional, a participant config whose data section says how to read --data",
    )
    .requiredOption('--model <job-id|dir>', 'vertical: the vertical-lr or vertical-boost job whose model to use; horizontal: the folder `fedcredit job model JOB --out DIR` wrote')
    .option('--ids <file.csv>', "vertical: enterprise ids to score, one per line; a header `id`, `enterprise_id` or the guest's data.id_column is skipped, and that column read")
    .option('--id <id>', 'vertical: a single enterprise id')
    .option('--data <file.csv>', "horizontal: the enterprises to score, with an id column and the model's feature columns")
    .option('--id-column <name>', 'horizontal, without --config: the id column of --data', 'id')
    .option('-o, --out <file.csv>', 'write the scores here (default: print them)')
    .option('--id-format <format>', "uscc (check digit verified) or any; default: the model job's alignment.id_format")
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
      const usage = "give either a vertical job and its guest's config (`fedcredit report JOB --config GUEST.yaml`) or a downloaded horizontal model (`fedcredit report --model DIR`)";
      const vertical = jobId !== undefined || opts.config !== undefined || opts.batch !== undefined;
      if (opts.model !== undefined && vertical) command.error(`error: --model cannot be combined with a job id, --config or --batch; ${usage}`);
      if (opts.model === undefined && !vertical) command.error(`error: nothing to report on; ${usage}`);
      if (opts.model === undefined && (jobId === undefined || opts.config === undefined)) command.error(`error: ${jobId === undefined ? 'no job id' : 'no --config'}; ${usage}`);
      let figures: string[];
      if (opts.model !== undefined) {
        const { writeArtifactReport } = await import('../report/artifact-report.js');
        figures = await writeArtifactReport(resolve(opts.model), resolve(opts.out));
      } else {
        const config = loadYamlConfig(opts.config!, ParticipantConfig, 'participant');
        const configDir = dirname(resolve(opts.config!));
        const { writeGuestJobReport } = await import('./job-report.js');
        const written = await writeGuestJobReport(config, configDir, join(participantStateDir(config, configDir), 'jobs'), jobId!, resolve(opts.out), opts.batch);
        if (written.note) process.stderr.write(`note: ${written.note}\n`);
        figures = written.figures;
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
    .option('--model <type>', 'vertical: logistic or gbdt (gradient-boosted trees); horizontal: logistic or mlp', 'logistic')
    .option('--trees <n>', 'vertical with --model gbdt: trees to grow', positiveInt, 20)
    .option('--plaintext', 'run without encryption (comparison only)')
    .option('--seed <n>', 'seed for data and training', positiveInt, 7)
    .action(async (opts: { out: string; mode: string; epochs: number; rounds: number; model: string; trees: number; plaintext?: boolean; seed: number }) => {
      if (opts.mode !== 'vertical' && opts.mode !== 'horizontal') throw new InvalidArgumentError(`--mode ${opts.mode}: use vertical or horizontal`);
      if (opts.model !== 'logistic' && opts.model !== 'mlp' && opts.model !== 'gbdt') throw new InvalidArgumentError('--model is logistic, gbdt (vertical) or mlp (horizontal)');
      const { runDemo } = await import('./demo/run.js');
      await runDemo({ mode: opts.mode, out: resolve(opts.out), epochs: opts.epochs, rounds: opts.rounds, model: opts.model, trees: opts.trees, plaintext: Boolean(opts.plaintext), seed: opts.seed });
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
        const { loadSynthIntoPostgres } = await import('../synth/postgres.js');
        for (const t of await loadSynthIntoPostgres(opts.postgres, files)) process.stdout.write(`${opts.postgres}: table ${t.table}, ${t.rows} rows\n`);
      };
      if (opts.mode === 'vertical') {
        const { writeVerticalSynth } = await import('../synth/vertical.js');
        const result = await writeVerticalSynth(resolve(opts.out), { seed: opts.seed });
        for (const p of result.parties) process.stdout.write(`${resolve(opts.out, p.file)}: ${p.rows} rows, columns ${p.features.join(', ')}\n`);
        process.stdout.write(`${result.intersection} enterprises are in all four files\n`);
        await toDatabase(result.parties.map((p) => ({ party: p.party, file: resolve(opts.out, p.file), spec: p.spec })));
        return;
      }
      if (opts.mode !== 'horizontal') throw new InvalidArgumentError(`--mode ${opts.mode}: use vertical or horizontal`);
      const { writeHorizontalSynth } = await import('../synth/sme.js');
      const result = await writeHorizontalSynth(resolve(opts.out), { seed: opts.seed });
      for (const f of [...result.parties, result.test]) process.stdout.write(`${f.path}: ${f.rows} rows, bad rate ${(100 * f.badRate).toFixed(1)}%\n`);
      await toDatabase(result.parties.map((f) => ({ party: f.party, file: f.path, spec: f.spec })));
    });

  const pki = program.command('pki').description("the federation's certificate authority: certificates for every node and user, and their revocation");

  pki
    .command('init')
    .description('create a federation CA in DIR (ca.pem, ca-key.pem with mode 0600, crl.pem, issued.json)')
    .requiredOption('--dir <dir>', 'the CA folder (keep it offline, or at least away from the nodes)')
    .option('--name <name>', "the CA's name", 'fedcredit federation CA')
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
        ...(opts.hosts
          ? {
              hosts: opts.hosts
                .split(',')
                .map((h) => h.trim())
                .filter(Boolean),
            }
          : {}),
        ...(opts.out ? { outDir: resolve(opts.out) } : {}),
      });
      process.stdout.write(`issued ${opts.role} certificate for ${opts.org} (serial ${issued.serial}): ${dirname(issued.certFile)}\n`);
    });

  pki
    .command('request')
    .description("on the organisation's own machine: make its key (key.pem, 0600) and a certificate signing request (request.csr) for the CA; the key never leaves")
    .requiredOption('--org <organisation>', 'the organisation (lower-case letters, digits, dashes), e.g. tax-bureau')
    .requiredOption('--role <role>', 'coordinator, participant, submitter or auditor')
    .requiredOption('--out <dir>', 'the identity folder to create (key.pem and request.csr; cert.pem and ca.pem go here once signed)')
    .option('--hosts <names>', 'coordinator only: extra host names or IPs the coordinator is reached at, comma-separated')
    .action(async (opts: { org: string; role: string; out: string; hosts?: string }) => {
      if (!(ROLES as readonly string[]).includes(opts.role)) throw new InvalidArgumentError(`--role ${opts.role}: use ${ROLES.join(', ')}`);
      const made = await requestCertificate(resolve(opts.out), {
        organisation: opts.org,
        role: opts.role as Role,
        ...(opts.hosts
          ? {
              hosts: opts.hosts
                .split(',')
                .map((h) => h.trim())
                .filter(Boolean),
            }
          : {}),
      });
      process.stdout.write(
        `key written to ${made.keyFile} (keep it here; it never leaves this machine)\n` +
          `send ${made.csrFile} to the federation's CA operator, who runs \`fedcredit pki sign --dir <ca> --csr request.csr --org ${opts.org} --role ${opts.role}\`;\n` +
          `put the cert.pem and ca.pem you get back into ${resolve(opts.out)}\n`,
      );
    });

  pki
    .command('sign')
    .description('at the CA: check a certificate signing request and issue its certificate (cert.pem and ca.pem, no key) into --out')
    .requiredOption('--dir <dir>', 'the CA folder')
    .requiredOption('--csr <file>', 'the request.csr an organisation made with `fedcredit pki request`')
    .option('--org <organisation>', 'refuse the request unless it is for this organisation')
    .option('--role <role>', 'refuse the request unless it is for this role')
    .option('--out <dir>', 'where to write cert.pem and ca.pem (default: <ca>/issued/<org>-<role>)')
    .option('--days <n>', 'validity in days', positiveInt, 365)
    .action(async (opts: { dir: string; csr: string; org?: string; role?: string; out?: string; days: number }) => {
      if (opts.role && !(ROLES as readonly string[]).includes(opts.role)) throw new InvalidArgumentError(`--role ${opts.role}: use ${ROLES.join(', ')}`);
      const csrPem = await readFile(resolve(opts.csr), 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new FedcreditError(ErrorCode.CONFIG_INVALID, `cannot read ${resolve(opts.csr)}: ${err.code ?? err.message}`, 'pass the request.csr file the organisation sent');
      });
      const signed = await signCertificateRequest(resolve(opts.dir), csrPem, {
        expect: { ...(opts.org ? { organisation: opts.org } : {}), ...(opts.role ? { role: opts.role as Role } : {}) },
        validityDays: opts.days,
        ...(opts.out ? { outDir: resolve(opts.out) } : {}),
      });
      process.stdout.write(`issued ${signed.role} certificate for ${signed.organisation} (serial ${signed.serial}): send ${signed.certFile} and ${signed.caFile} back to ${signed.organisation}\n`);
    });

  pki
    .command('revoke')
    .description('revoke certificates and re-sign the revocation list; a coordinator using it reloads it within seconds')
    .requiredOption('--dir <dir>', 'the CA folder')
    .option('--org <organisation>', "revoke this organisation's certificates")
    .option('--role <role>', 'with --org: only this role')
    .option('--serial <hex>', 'revoke one certificate by serial number')
    .action(async (opts: { dir: string; org?: string; role?: string; serial?: string }) => {
      if (Boolean(opts.org) === Boolean(opts.serial)) throw new InvalidArgumentError('give --org (optionally with --role) or --serial');
      const selector = opts.serial ? { serial: opts.serial } : { organisation: opts.org!, ...(opts.role ? { role: opts.role as Role } : {}) };
      const result = await revokeCertificate(resolve(opts.dir), selector);
      process.stdout.write(
        `revoked: ${result.revoked.join(', ') || 'none'}${result.alreadyRevoked.length ? `; already revoked: ${result.alreadyRevoked.join(', ')}` : ''}\ncopy ${join(resolve(opts.dir), 'crl.pem')} to the coordinator's tls.crl path if it is elsewhere\n`,
      );
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

  const audit = program.command('audit').description('check a ledger as an auditor: integrity, replay, data use');

  audit
    .command('fetch')
    .description("copy the coordinator's audit ledger over the network (needs an auditor certificate), then verify it")
    .requiredOption('-o, --out <dir>', 'folder to write the copy into')
    .option(...coordinatorOption)
    .option(...configOption)
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
    .description('re-add the logged encrypted updates and re-apply the logged aggregates, up to the published model (scoring jobs change no model: listed, not replayed)')
    .action(async (dir: string, opts: { job?: string; report?: string }) => {
      const report = await replayIntactLedger(dir, opts.job);
      if (!report) return;
      const { formatReplay } = await import('../audit/replay.js');
      process.stdout.write(formatReplay(report) + '\n');
      if (opts.report) {
        const { replayReportHtml } = await import('../audit/report.js');
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
    .description('who used which dataset (columns, schema hash, rows, id-set hash), when, in which job (kind, model scored with, outcome), for which purpose')
    .action(async (dir: string, opts: { job?: string; party?: string }) => {
      const { dataUses, formatDataUses } = await import('../audit/show.js');
      process.stdout.write(formatDataUses(dataUses(dir, { jobId: opts.job, party: opts.party })) + '\n');
    });

  return program;
}

type ScoreOptions = {
  config?: string;
  model: string;
  ids?: string;
  id?: string;
  data?: string;
  idColumn: string;
  out?: string;
  idFormat?: string;
  purpose: string;
  coordinator?: string;
  identity?: string;
  insecure?: boolean;
};

async function scoreCommand(opts: ScoreOptions): Promise<void> {
  if (opts.data !== undefined) return scoreLocally(opts);
  if (opts.config === undefined)
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      "no --config: a vertical model scores with the guest's participant config; a downloaded horizontal model with --data FILE.csv",
      'e.g. fedcredit score --config bank.yaml --model JOB --id 91350100M000100Y43, or fedcredit score --model ./model --data applicants.csv',
    );
  if (Boolean(opts.ids) === Boolean(opts.id))
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, 'give either --ids <file.csv> or --id <id>', 'e.g. fedcredit score --config bank.yaml --model JOB --id 91350100M000100Y43');
  if (opts.idFormat !== undefined && opts.idFormat !== 'uscc' && opts.idFormat !== 'any') throw new InvalidArgumentError('--id-format is uscc or any');
  const config = loadYamlConfig(opts.config, ParticipantConfig, 'participant');
  const [{ readIdList }, { checkScoreRequest }, { requestScores }] = await Promise.all([
    import('../../participant/vertical-score.js'),
    import('./score-request.js'),
    import('../vertical/score-client.js'),
  ]);
  const ids = opts.ids ? readIdList(resolve(opts.ids), config.data.id_column) : [opts.id!];
  const stateDir = participantStateDir(config, dirname(resolve(opts.config)));
  checkScoreRequest({ stateDir, organisation: config.organisation, modelJob: opts.model, ids, source: opts.ids ? `--ids ${opts.ids}` : '--id', idFormat: opts.idFormat as IdFormat | undefined });
  process.stderr.write(`scoring ${ids.length} enterprise(s) with ${opts.model}\n`);
  const coordinator = coordinatorAddress(opts);
  const result = await requestScores({
    coordinator: coordinator.address,
    coordinatorSource: coordinator.source,
    transport: clientTransport(opts),
    organisation: config.organisation,
    stateDir,
    modelJob: opts.model,
    ids,
    idFormat: opts.idFormat as IdFormat | undefined,
    purpose: opts.purpose,
    // The scoring job's id is what `fedcredit report --batch` and the ledger know the batch by.
    onSubmitted: (jobId) => process.stderr.write(`scoring job ${jobId}\n`),
  });
  if (opts.out) {
    await writeFile(resolve(opts.out), result.csv, { mode: 0o600 });
    process.stdout.write(`${result.message}\nscores written to ${opts.out} (scoring job ${result.jobId}: \`fedcredit report ${opts.model} --config ${opts.config} --batch ${result.jobId}\`)\n`);
  } else {
    process.stdout.write(result.csv);
  }
}

/** A downloaded horizontal model scores the rows of --data on this machine. */
async function scoreLocally(opts: ScoreOptions): Promise<void> {
  if (opts.ids !== undefined || opts.id !== undefined)
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      '--data scores a CSV with a horizontal model; --ids and --id name enterprises for a vertical model',
      'give either --model DIR --data FILE.csv, or --config GUEST.yaml --model JOB --ids FILE',
    );
  const config = opts.config ? loadYamlConfig(opts.config, ParticipantConfig, 'participant') : undefined;
  const [{ scoreWithArtifact }, { formatLoadReport }] = await Promise.all([import('../model/local-score.js'), import('../data/csv.js')]);
  const result = await scoreWithArtifact({ modelDir: resolve(opts.model), dataFile: resolve(opts.data!), dataSpec: config?.data, idColumn: opts.idColumn });
  process.stderr.write(`${formatLoadReport(result.report)}\n${result.rows} enterprise(s) scored with the model of ${result.jobId}\n`);
  const e = result.evaluation;
  if (e && 'unread' in e) process.stderr.write(`no AUC or KS: the labels in "${e.labelColumn}" were not read (${e.unread})\n`);
  else if (e) {
    const rows = `${e.n} of them with a label in "${e.labelColumn}" (${e.positives} defaults)`;
    process.stderr.write(Number.isNaN(e.auc) ? `${rows}: no AUC or KS, which need both defaults and non-defaults\n` : `${rows}: AUC ${e.auc.toFixed(4)}, KS ${e.ks.toFixed(4)}\n`);
  }
  if (opts.out) {
    await writeFile(resolve(opts.out), result.csv, { mode: 0o600 });
    process.stdout.write(`scores written to ${opts.out}\n`);
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
  const { formatVerifyReport, verifyLedger } = await import('../ledger/verify.js');
  const report = await verifyLedger(dir, { receiptsDir });
  process.stdout.write(formatVerifyReport(report) + '\n');
  if (!report.ok) process.exitCode = 4;
}

/**
 * Replay only a ledger that verifies (a torn tail from a crash mid-write aside): on any damage, or anything the
 * replay cannot read, say what and where as FC_LEDGER_DAMAGED and exit 4, rather than replay a partial record.
 */
async function replayIntactLedger(dir: string, jobId?: string): Promise<ReplayReport | undefined> {
  const damaged = (message: string) => {
    const err = new FedcreditError(
      ErrorCode.LEDGER_DAMAGED,
      message,
      `\`fedcredit audit verify ${dir}\` gives the full report; replay a copy of the ledger that verifies (from the coordinator or a backup)`,
    );
    process.stderr.write(`fedcredit: ${err.describe()}\n`);
    process.exitCode = 4;
    return undefined;
  };
  const { verifyLedger } = await import('../ledger/verify.js');
  const verified = await verifyLedger(dir);
  if (!verified.ok && verified.failure!.problem !== 'torn') {
    const f = verified.failure!;
    return damaged(`the ledger ${dir} is damaged at entry ${f.seq} (${f.problem}): ${f.detail}; nothing was replayed`);
  }
  try {
    const { replayLedger } = await import('../jobs/replay.js');
    return await replayLedger(dir, { jobId });
  } catch (err) {
    return damaged(`replaying the ledger ${dir} failed: ${errorMessage(err)}`);
  }
}

interface ClientOptions {
  coordinator?: string;
  config?: string;
  identity?: string;
  insecure?: boolean;
}

/** A submitter's or auditor's transport: its certificate folder, or plaintext with --insecure. */
function clientTransport(opts: { identity?: string; insecure?: boolean }): Transport {
  if (opts.insecure) return insecureTransport();
  if (!opts.identity) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      'no identity: the coordinator accepts only callers with a federation certificate',
      'pass --identity <folder> with the ca.pem, cert.pem and key.pem that `fedcredit pki issue --role submitter` (or auditor) wrote',
    );
  }
  return identityFromDir(opts.identity);
}

function clientFor(opts: ClientOptions): CoordinatorClient {
  const { address, source } = coordinatorAddress(opts);
  return new CoordinatorClient(address, clientTransport(opts), source);
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
  const { createProgressRenderer } = await import('./progress.js');
  const renderer = createProgressRenderer();
  const last = await client.watchJob(jobId, (e) => renderer.onEvent(e));
  renderer.stop();
  if (last.state !== 'succeeded') {
    process.stderr.write(`job ${jobId} ${last.state}: ${last.message}\n`);
    process.exitCode = 3;
    return;
  }
  if (out) {
    const { writeArtifact } = await import('../model/artifact.js');
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
    const io = fileSystemProblem(err);
    if (io) {
      process.stderr.write(`fedcredit: ${io.message}\n  fix: ${io.fix}\n`);
      process.exit(2);
    }
    throw err;
  }
}
