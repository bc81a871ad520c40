/**
 * What the PSI's two sides send each other, by kind, with what each carries in a data owner's words (a participant's
 * egress report reads them, through src/vertical/lr/payloads.ts). The id sets travel as streams: a stream `kind`
 * goes as chunks `kind#0`, `kind#1`, … each acknowledged by the receiver as `kind.ack#k` (src/psi/stream.ts). The
 * scoring PSI adds two single messages, each with its codec (src/psi/scoring.ts).
 */

export const PSI_STREAMS = {
  'psi.host_blinded': "this party's ids, hashed with the job's salt (scoring: the model's) and blinded with its secret key (X25519), in the order of the blinded values",
  'psi.guest_blinded': "the guest's ids, hashed with the job's salt and blinded with its secret key (X25519)",
  'psi.guest_double': "the guest's blinded ids, blinded again with this party's key",
  'psi.alignment': "positions (in the host's blinded list) of the enterprises every party holds, per part of the job",
} as const;
export type PsiStream = keyof typeof PSI_STREAMS;

/** The scoring host's blinded set, as it names it: how many ids, and the SHA-256 (hex) of the sorted blinded values. */
export interface HostSetOffer {
  count: number;
  version: string;
}

export const PSI_MESSAGES = {
  'psi.host_set': {
    what: "scoring: the count of this party's ids blinded for the model, and the SHA-256 of those blinded values",
    encode: (offer: HostSetOffer) => new Uint8Array(Buffer.from(JSON.stringify(offer))),
    decode: (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8')) as HostSetOffer,
  },
  'psi.host_set_wanted': {
    what: "scoring: whether the guest asks for the host's blinded ids (one byte: it has not kept that set)",
    encode: (wanted: boolean) => new Uint8Array([wanted ? 1 : 0]),
    decode: (bytes: Uint8Array) => bytes[0] === 1,
  },
} satisfies Record<string, { what: string; encode(value: never): Uint8Array; decode(bytes: Uint8Array): unknown }>;
export type PsiMessage = keyof typeof PSI_MESSAGES;
export type PsiMessageOf<K extends PsiMessage> = ReturnType<(typeof PSI_MESSAGES)[K]['decode']>;

/** Every kind a PsiLink carries: a stream's chunks and acknowledgements, and the scoring messages. */
export type PsiWireKind = `${PsiStream}#${number}` | `${PsiStream}.ack#${number}` | PsiMessage;

export const chunkKind = (stream: PsiStream, k: number): PsiWireKind => `${stream}#${k}`;
export const ackKind = (stream: PsiStream, k: number): PsiWireKind => `${stream}.ack#${k}`;

/**
 * The stream a kind belongs to: the stream itself or a chunk of it, or with `ack` its acknowledgements (with or
 * without a chunk's number); undefined for any other kind.
 */
export function streamOf(kind: string): { stream: PsiStream; ack: boolean } | undefined {
  const m = /^(.+?)(\.ack)?(?:#\d+)?$/.exec(kind);
  const stream = m?.[1];
  return stream !== undefined && stream in PSI_STREAMS ? { stream: stream as PsiStream, ack: m?.[2] !== undefined } : undefined;
}
