/**
 * Debian's Chromium driven by playwright-core, for tests that must see a page the way a reader does. No browser is
 * downloaded: the executable is FEDCREDIT_CHROMIUM or /usr/bin/chromium, and a missing one fails the test with the
 * fix (never a skip, or a broken report would pass unnoticed on a machine without a browser).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export function chromiumPath(): string {
  const path = process.env.FEDCREDIT_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(
      `Chromium not found at ${path} (the report test drives it through playwright-core, which downloads no browser). ` +
        `Install it with \`sudo apt-get install -y --no-install-recommends chromium\`, or set FEDCREDIT_CHROMIUM to a Chromium executable.`,
    );
  }
  return path;
}

/** Headless, offline-minded Chromium with its own fresh profile (playwright makes a temporary one per launch). */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  try {
    return await chromium.launch({
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (err) {
    throw new Error(`Chromium at ${executablePath} did not start: ${(err as Error).message}. Reinstall it (apt-get install chromium) or point FEDCREDIT_CHROMIUM at a working one.`);
  }
}

export interface OpenedPage {
  page: Page;
  /** Console errors, uncaught page errors and failed requests, as readable lines. */
  problems: string[];
  /** Every URL the page requested, the page itself included. */
  requests: string[];
}

/** Open `url` in a new page, recording every request and anything that went wrong, and wait until it has loaded. */
export async function openPage(browser: Browser, url: string): Promise<OpenedPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? 'unknown'})`));
  const response = await page.goto(url, { waitUntil: 'load' });
  if (response && !response.ok()) problems.push(`page answered ${response.status()}`);
  return { page, problems, requests };
}

/* The functions below run inside the page. The project compiles without the DOM library, so they name the few DOM
   members they use through these minimal shapes. */
interface Box {
  width: number;
  height: number;
}
interface El {
  getBoundingClientRect(): Box;
  getBBox(): Box;
  querySelectorAll(selector: string): ArrayLike<El>;
}
interface Doc {
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
  documentElement: { scrollWidth: number };
}

/** Size of the SVG at `selector` and how many of its data marks (Vega's `role-mark` groups) draw something. */
export function svgDrawing(page: Page, selector: string): Promise<{ width: number; height: number; marks: number } | null> {
  return page.evaluate((sel) => {
    const doc = (globalThis as unknown as { document: Doc }).document;
    const svg = doc.querySelector(sel);
    if (!svg) return null;
    const box = svg.getBoundingClientRect();
    const marks = Array.from(svg.querySelectorAll('g.role-mark > path, g.role-mark > line, g.role-mark > rect')).filter((m) => {
      const b = m.getBBox();
      return b.width > 0 || b.height > 0;
    });
    return { width: box.width, height: box.height, marks: marks.length };
  }, selector);
}

/** The page's full width and the rendered height of each of its tables. */
export function layout(page: Page): Promise<{ scrollWidth: number; tableHeights: number[] }> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: Doc }).document;
    return { scrollWidth: doc.documentElement.scrollWidth, tableHeights: Array.from(doc.querySelectorAll('table')).map((t) => t.getBoundingClientRect().height) };
  });
}
