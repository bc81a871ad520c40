/** The tests' throwaway PostgreSQL server (shared with the benchmarks): see src/federation/ephemeral-postgres.ts. */
export { ADMIN, EphemeralPostgres as TestPostgres, postgresBinDir, selfSignedCertificate } from '../../src/federation/ephemeral-postgres.js';
