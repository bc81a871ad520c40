/**
 * The kinds the parties of a vertical job relay: each codec sends the bytes the protocol always sent, and each kind
 * (a PSI stream's chunks and acknowledgements included) says in the egress report what it carries.
 */
import { describe, expect, it } from 'vitest';
import { PSI_MESSAGES, PSI_STREAMS } from '../src/psi/kinds.js';
import { decodePayload, encodePayload, LR_PAYLOADS, RELAY_CONTENT, relayContent } from '../src/vertical/lr/payloads.js';

describe('vertical payload kinds', () => {
  it('encode as the protocol always did: JSON text, float64 little-endian, one byte for a yes or no', () => {
    const reasons = [[{ party: 'tax-bureau', feature: 'h1', bin: 2, points: 3, baseline: 10 }]];
    expect(Buffer.from(encodePayload('score.reasons', reasons)).toString('utf8')).toBe(JSON.stringify(reasons));
    expect(decodePayload('score.reasons', encodePayload('score.reasons', reasons))).toEqual(reasons);
    const share = Float64Array.from([0.1, -2.5e300, Number.MIN_VALUE]);
    expect(Buffer.from(encodePayload('score.points_share', share))).toEqual(Buffer.from(share.buffer));
    expect(Array.from(decodePayload('score.share', encodePayload('score.share', share)))).toEqual(Array.from(share));
    expect(Array.from(PSI_MESSAGES['psi.host_set_wanted'].encode(true))).toEqual([1]);
    expect(PSI_MESSAGES['psi.host_set_wanted'].decode(new Uint8Array([0]))).toBe(false);
    const offer = { count: 3, version: 'ab'.repeat(32) };
    expect(Buffer.from(PSI_MESSAGES['psi.host_set'].encode(offer)).toString('utf8')).toBe(JSON.stringify(offer));
  });

  it('every kind says what it carries, a stream chunk under its stream, an acknowledgement as empty', () => {
    for (const kind of [...Object.keys(LR_PAYLOADS), ...Object.keys(PSI_STREAMS), ...Object.keys(PSI_MESSAGES)] as (keyof typeof RELAY_CONTENT)[]) {
      expect(RELAY_CONTENT[kind].length).toBeGreaterThan(20);
      expect(relayContent(kind)).toBe(RELAY_CONTENT[kind]);
    }
    expect(relayContent('psi.host_blinded#12')).toBe(PSI_STREAMS['psi.host_blinded']);
    expect(relayContent('psi.alignment.ack#0')).toBe('acknowledgements that chunks of psi.alignment arrived (empty)');
    expect(relayContent('psi.alignment.ack')).toBe('acknowledgements that chunks of psi.alignment arrived (empty)');
    expect(relayContent('no.such_kind')).toBe('no.such_kind');
  });
});
