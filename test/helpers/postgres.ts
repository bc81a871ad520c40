/** The tests' throwaway PostgreSQL server (shared with the benchmarks): see src/federation/ephemeral-postgres.ts. */
export { ADMIN, EphemeralPostgres as TestPostgres, postgresBinDir } from '../../src/federation/ephemeral-postgres.js';
