/**
 * The status page in headless Chromium: Chromium's path and flags, and a page served by a real
 * Exporter fed with a fixed snapshot, for the tests of what the page renders (the page is a function
 * of /status, so these need no daemon).
 */
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { Exporter } from '../../src/observe/exporter.js';
import type { Observation } from '../../src/observe/observation.js';
import { memoryLogger } from './memory-logger.js';

export const CHROMIUM = '/usr/bin/chromium';
/** A page test's options: skipped, with the reason, where Chromium is not installed. */
export const NEEDS_CHROMIUM = { skip: existsSync(CHROMIUM) ? false : 'chromium not installed' };
/** Headless, and nothing Chromium would fetch or start on its own beside the page. */
export const CHROMIUM_ARGS: readonly string[] = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Opens `/` of an Exporter serving `observation`; everything is closed after the test. `problems`
 * collects the page's script errors and console errors (a request the page's CSP refused is one).
 */
export async function openStatusPage(t: TestContext, observation: Observation): Promise<{ page: Page; problems: string[] }> {
  const exporter = new Exporter({ host: '127.0.0.1', port: 0, logger: memoryLogger().logger, source: { observe: () => Promise.resolve(observation), gearmandScrapes: () => [] } });
  t.after(() => exporter.close());
  const { port } = await exporter.listen();
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  await page.goto(`http://127.0.0.1:${port}/`);
  return { page, problems };
}
