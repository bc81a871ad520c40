// Searching captured bytes (see FEDCREDIT_WIRE_CAPTURE in src/wire/framing.ts) for what must never be there.

const TABLE_BITS = 24;

/** Where a 4-byte window (read little-endian) falls in a table of 2^TABLE_BITS cells. */
const cellOf = (window: number) => Math.imul(window, 0x9e3779b1) >>> (32 - TABLE_BITS);

/**
 * The needles (each at least 4 bytes) that occur anywhere in the haystack. Each needle is anchored on the 4-byte
 * window of its own that is rarest in the haystack, so a needle that begins like many places do (a float64 of an
 * integer starts with four zero bytes, as does much of a ciphertext) is compared only where its rarest window
 * occurs; a needle with a window the haystack never holds is not compared at all.
 */
export function occurrences(haystack: Buffer, needles: readonly Buffer[]): Buffer[] {
  for (const n of needles) if (n.length < 4) throw new RangeError('needles must be at least 4 bytes');
  // How often each window occurs, by table cell (windows sharing a cell add up; 255 means 255 or more).
  const seen = new Uint8Array(1 << TABLE_BITS);
  for (let i = 0; i + 4 <= haystack.length; i++) {
    const c = cellOf(haystack.readUInt32LE(i));
    if (seen[c]! < 255) seen[c]!++;
  }
  const anchored = new Map<number, { needle: Buffer; offset: number }[]>();
  const anchors = new Uint8Array(1 << TABLE_BITS);
  for (const needle of needles) {
    let best = -1;
    let bestCount = 256;
    for (let k = 0; k + 4 <= needle.length && bestCount > 0; k++) {
      const count = seen[cellOf(needle.readUInt32LE(k))]!;
      if (count < bestCount) [best, bestCount] = [k, count];
    }
    if (bestCount === 0) continue;
    const window = needle.readUInt32LE(best);
    anchors[cellOf(window)] = 1;
    const list = anchored.get(window);
    if (list) list.push({ needle, offset: best });
    else anchored.set(window, [{ needle, offset: best }]);
  }
  const found = new Set<Buffer>();
  for (let i = 0; i + 4 <= haystack.length; i++) {
    const window = haystack.readUInt32LE(i);
    if (!anchors[cellOf(window)]) continue;
    for (const { needle, offset } of anchored.get(window) ?? []) {
      const at = i - offset;
      if (at >= 0 && at + needle.length <= haystack.length && haystack.compare(needle, 0, needle.length, at, at + needle.length) === 0) found.add(needle);
    }
  }
  return [...found];
}
