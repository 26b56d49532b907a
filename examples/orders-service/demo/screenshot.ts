// Renders an HTML file in headless Chromium (Debian's `chromium` package, driven by playwright-core; no browser is
// ever downloaded) and saves a PNG: the check that the demo's report really renders.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

/** Where Debian installs Chromium; `GANTRY_CHROMIUM` overrides it. */
export const CHROMIUM_PATH = process.env['GANTRY_CHROMIUM'] ?? '/usr/bin/chromium';

/** Flags for a quiet, offline headless Chromium. */
export const CHROMIUM_FLAGS: readonly string[] = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/** The Chromium executable, or `undefined` with the reason when it is missing. */
export function findChromium(): { path: string } | { missing: string } {
  if (existsSync(CHROMIUM_PATH)) return { path: CHROMIUM_PATH };
  return {
    missing:
      `Chromium is not installed at ${CHROMIUM_PATH}: install Debian's package (apt-get install chromium; ` +
      './gantry does it when run as root) or point GANTRY_CHROMIUM at a Chromium binary',
  };
}

/** What a screenshot looked like. */
export interface Screenshot {
  readonly path: string;
  readonly width: number;
  readonly height: number;
  /** Inline SVG charts the page laid out with a non-zero size. */
  readonly charts: number;
  /** The page's title. */
  readonly title: string;
}

/**
 * Opens `htmlPath` in headless Chromium, checks the charts were laid out, and writes a full-page PNG.
 * @throws Error when Chromium is missing (the message says how to install it) or the page cannot be loaded.
 */
export async function screenshotReport(htmlPath: string, pngPath: string, width = 1200): Promise<Screenshot> {
  const found = findChromium();
  if ('missing' in found) throw new Error(found.missing);
  const browser = await chromium.launch({ executablePath: found.path, headless: true, args: [...CHROMIUM_FLAGS] });
  try {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load' });
    // Runs in the page; written as a string because this package compiles without the DOM types.
    const layout = await page.evaluate<{ charts: number; height: number; title: string }>(`({
      charts: [...document.querySelectorAll('svg')].filter((svg) => svg.getBoundingClientRect().width > 100).length,
      height: document.documentElement.scrollHeight,
      title: document.title,
    })`);
    await page.screenshot({ path: pngPath, fullPage: true });
    return { path: pngPath, width, height: layout.height, charts: layout.charts, title: layout.title };
  } finally {
    await browser.close();
  }
}
