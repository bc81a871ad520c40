// Searching captured bytes (see FEDCREDIT_WIRE_CAPTURE in src/wire/framing.ts) for what must never be there.

/** The needles (each at least 4 bytes) that occur anywhere in the haystack, found in one pass. */
export function occurrences(haystack: Buffer, needles: readonly Buffer[]): Buffer[] {
  const byPrefix = new Map<number, Buffer[]>();
  for (const n of needles) {
    if (n.length < 4) throw new RangeError('needles must be at least 4 bytes');
    const k = n.readUInt32LE(0);
    byPrefix.set(k, [...(byPrefix.get(k) ?? []), n]);
  }
  const found = new Set<Buffer>();
  for (let i = 0; i + 4 <= haystack.length; i++) {
    const candidates = byPrefix.get(haystack.readUInt32LE(i));
    if (!candidates) continue;
    for (const n of candidates) if (i + n.length <= haystack.length && haystack.compare(n, 0, n.length, i, i + n.length) === 0) found.add(n);
  }
  return [...found];
}
