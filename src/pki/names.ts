/**
 * How a fedcredit certificate names its holder, shared by the CA, an organisation's identity and the verifier:
 * roles, organisation names, the subject alternative name URIs that carry them, serial numbers, and the key and
 * signature algorithms (ECDSA P-256 with SHA-256).
 */
import { isIP } from 'node:net';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { x509 } from './x509.js';

/** What a certificate holder may do in the federation. */
export type Role = 'coordinator' | 'participant' | 'submitter' | 'auditor';

/** Every role, in a stable order. */
export const ROLES: readonly Role[] = ['coordinator', 'participant', 'submitter', 'auditor'];

/** Organisation names: lowercase letters, digits and hyphens, starting with a letter or digit, at most 63 chars. */
export const ORGANISATION_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** SAN URI prefixes that carry the identity. */
export const ROLE_URI_PREFIX = 'urn:fedcredit:role:';
export const ORGANISATION_URI_PREFIX = 'urn:fedcredit:org:';

export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** The subject alternative names of an identity: its organisation and role as URIs, and a coordinator's hosts. */
export function identityNames(organisation: string, role: Role, hosts: string[]): x509.JsonGeneralNames {
  const names: x509.JsonGeneralNames = [
    { type: 'url', value: ORGANISATION_URI_PREFIX + organisation },
    { type: 'url', value: ROLE_URI_PREFIX + role },
  ];
  if (role === 'coordinator') {
    for (const host of uniq(['localhost', '127.0.0.1', '::1', ...hosts])) names.push({ type: isIP(host) ? 'ip' : 'dns', value: host });
  }
  return names;
}

/**
 * The form Node's `serialNumber` uses (OpenSSL's BN_bn2hex): upper-case hex, two digits per byte, no leading zero
 * bytes. Accepts any case, colons, and leading zeros.
 */
export function normaliseSerial(serial: string): string {
  const hex = serial.replace(/[:\s]/g, '').toUpperCase().replace(/^0+/, '');
  if (hex === '') return '00';
  return hex.length % 2 === 1 ? '0' + hex : hex;
}

export function checkOrganisation(organisation: unknown): string {
  if (typeof organisation !== 'string' || !ORGANISATION_PATTERN.test(organisation)) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `invalid organisation name ${JSON.stringify(organisation)}: it must match ${ORGANISATION_PATTERN.source}`,
      'use 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit (e.g. "bank-a")',
    );
  }
  return organisation;
}

export function checkRole(role: unknown): Role {
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `invalid role ${JSON.stringify(role)}`, `use one of ${ROLES.join(', ')}`);
  }
  return role as Role;
}

const DNS_NAME = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export function checkHosts(hosts: string[], role: Role): string[] {
  if (hosts.length > 0 && role !== 'coordinator') {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `hosts (${hosts.join(', ')}) were given for a ${role} certificate; only the coordinator is a TLS server`,
      'drop the hosts, or issue a coordinator certificate',
    );
  }
  for (const host of hosts) {
    if (!isIP(host) && !DNS_NAME.test(host)) {
      throw new FedcreditError(
        ErrorCode.CONFIG_INVALID,
        `invalid host ${JSON.stringify(host)}: not a DNS name or IP address`,
        'pass the names and addresses participants use to reach the coordinator, e.g. coordinator.example.org or 10.0.0.5 (no port, no scheme)',
      );
    }
  }
  return hosts.map((h) => (isIP(h) ? h : h.toLowerCase()));
}

export function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

export function uniq<T>(values: T[]): T[] {
  return [...new Set(values)];
}
