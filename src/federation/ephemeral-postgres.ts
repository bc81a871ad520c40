/**
 * A throwaway PostgreSQL server for the tests and the benchmarks: initdb in a temporary folder, postgres on a free 127.0.0.1 port with
 * its unix socket in that folder (no system service), an administrator reached over the socket, password logins over
 * TCP. Stopped and removed by stop(). The server refuses to run as root: as root (CI), the folder is handed to the
 * `postgres` user (Debian's package creates it) and the server runs as that user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, openSync, readSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** The folder with initdb, pg_ctl, postgres and psql: FEDCREDIT_PG_BIN, or the newest of Debian's /usr/lib/postgresql/<version>/bin. */
export function postgresBinDir(): string {
  const fromEnv = process.env.FEDCREDIT_PG_BIN;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      'the PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) are missing: these tests run a real server. ' +
        "Install Debian's `postgresql` package (apt-get install -y postgresql; .ci/run does it), or set FEDCREDIT_PG_BIN to a folder holding them",
    );
  }
  return join(root, versions[0]!, 'bin');
}

/** A free TCP port on 127.0.0.1 (the OS picks it; the server binds it a moment later). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const ADMIN = 'fc_admin';

/** The first line of a file (its CSV header), reading only its first 64 KiB: the benchmark's files run to gigabytes. */
function firstLine(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const bytes = Buffer.alloc(64 * 1024);
    const n = readSync(fd, bytes, 0, bytes.length, 0);
    return bytes.toString('utf8', 0, n).split(/\r?\n/)[0]!;
  } finally {
    closeSync(fd);
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost (its own CA), and its key (mode 0600). */
export async function selfSignedCertificate(certFile: string, keyFile: string): Promise<void> {
  await run(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { timeout: 30_000 },
  );
  chmodSync(keyFile, 0o600);
}

export class EphemeralPostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly asUser: string[],
  ) {}

  /** Unix socket folder: the administrator connects through it without a password. */
  get socketDir(): string {
    return join(this.dir, 'socket');
  }

  /** The server's certificate (self-signed, for 127.0.0.1 and localhost) when started with tls: a client's CA file. */
  get certFile(): string {
    return join(this.dir, 'server.crt');
  }

  /** tls: serve TLS too (ssl=on) with a fresh self-signed certificate (openssl, which Debian's postgresql pulls in). */
  static async start(opts: { tls?: boolean } = {}): Promise<EphemeralPostgres> {
    const bin = postgresBinDir();
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-pg-'));
    const root = process.getuid?.() === 0;
    const asUser = root ? ['runuser', '-u', 'postgres', '--'] : [];
    writeFileSync(join(dir, 'pwfile'), 'admin-password\n');
    mkdirSync(join(dir, 'socket'), { mode: 0o700 });
    const owned = [dir, join(dir, 'socket'), join(dir, 'pwfile')];
    let tlsOptions = '';
    if (opts.tls) {
      await selfSignedCertificate(join(dir, 'server.crt'), join(dir, 'server.key'));
      owned.push(join(dir, 'server.key'));
      tlsOptions = ` -c ssl=on -c ssl_cert_file=${join(dir, 'server.crt')} -c ssl_key_file=${join(dir, 'server.key')}`;
    }
    if (root) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      for (const p of owned) chownSync(p, uid, gid);
    }
    const exec = (cmd: string, args: string[]) => {
      const [file, ...rest] = [...asUser, join(bin, cmd), ...args];
      return run(file!, rest, { timeout: 60_000 });
    };
    await exec('initdb', ['-D', join(dir, 'data'), '-U', ADMIN, '--pwfile', join(dir, 'pwfile'), '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C']);
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${join(dir, 'socket')} -c fsync=off -c shared_buffers=32MB -c max_connections=20 -c log_statement=all -c log_connections=on${tlsOptions}`;
      try {
        await exec('pg_ctl', ['start', '-w', '-t', '60', '-D', join(dir, 'data'), '-l', join(dir, 'server.log'), '-o', options]);
        return new EphemeralPostgres(dir, port, bin, asUser);
      } catch (err) {
        if (attempt >= 2) {
          rmSync(dir, { recursive: true, force: true });
          throw err;
        }
      }
    }
  }

  /** An administrator's connection (over the socket); end it when done. */
  async admin(database = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({ host: this.socketDir, port: this.port, user: ADMIN, database });
    await client.connect();
    return client;
  }

  /** Run SQL statements as the administrator. */
  async sql(text: string, database = 'postgres'): Promise<pg.QueryResult[]> {
    const client = await this.admin(database);
    try {
      const results = await client.query(text);
      return Array.isArray(results) ? results : [results];
    } finally {
      await client.end();
    }
  }

  /** Load a CSV file into an existing table with psql's client-side \copy (the line docs/configuration.md shows); an hour at most. */
  async copyCsv(database: string, table: string, columns: string[], file: string): Promise<void> {
    const list = columns.map((c) => pg.escapeIdentifier(c)).join(', ');
    await run(
      join(this.bin, 'psql'),
      [
        '-X',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        this.socketDir,
        '-p',
        String(this.port),
        '-U',
        ADMIN,
        '-d',
        database,
        '-c',
        `\\copy ${table} (${list}) FROM '${file.replace(/'/g, "''")}' WITH (FORMAT csv, HEADER true)`,
      ],
      { timeout: 3_600_000 },
    );
  }

  /**
   * Create `table` with the CSV's header as columns (the id column as text, the others as `numberType`) and a
   * `row_no` column numbering the rows in file order, then load the file.
   */
  async loadCsvTable(database: string, table: string, file: string, idColumn: string, numberType = 'double precision'): Promise<string[]> {
    const header = firstLine(file).split(',');
    const columns = header.map((c) => `${pg.escapeIdentifier(c)} ${c === idColumn ? 'text' : numberType}`);
    await this.sql(`CREATE TABLE ${pg.escapeIdentifier(table)} (row_no bigserial, ${columns.join(', ')})`, database);
    await this.copyCsv(database, pg.escapeIdentifier(table), header, file);
    return header;
  }

  /** A login role with a password that may only read what it is granted. */
  async createReader(role: string, password: string, database: string): Promise<void> {
    await this.sql(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN PASSWORD ${pg.escapeLiteral(password)} NOSUPERUSER NOCREATEDB NOCREATEROLE;
      ALTER ROLE ${pg.escapeIdentifier(role)} SET default_transaction_read_only = on;
      GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(database)} TO ${pg.escapeIdentifier(role)};`);
  }

  /** The server's log (every statement is logged: the tests check what the node ran). */
  log(): string {
    return readFileSync(join(this.dir, 'server.log'), 'utf8');
  }

  async stop(): Promise<void> {
    try {
      const [file, ...rest] = [...this.asUser, join(this.bin, 'pg_ctl'), 'stop', '-m', 'immediate', '-w', '-D', join(this.dir, 'data')];
      await run(file, rest, { timeout: 60_000 });
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
