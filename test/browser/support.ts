/**
 * The browser suites' pieces: Debian's Chromium driven by playwright-core (never a downloaded
 * browser), a logged-in page, and waits on what the dashboard marks as rendered.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/processes.js';
import { CHROMIUM_PATH } from '../helpers/services.js';

// page.evaluate's callback runs in the page, where this is the page's location.
declare const location: { hash: string };

export const SCREENSHOTS = join(REPO_ROOT, 'docs', 'screenshots');

export async function launchBrowser(): Promise<Browser> {
  // --no-sandbox: tests and CI run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'], timeout: 60_000 });
}

export async function newContext(browser: Browser): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
  ctx.setDefaultTimeout(20_000);
  return ctx;
}

/** Opens the dashboard and logs in through its form, as a person would. */
export async function login(ctx: BrowserContext, url: string, token: string): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(url);
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=whoami]');
  return page;
}

/** Goes to a view (`#/runs`, ...) and waits until it says it has rendered its data. */
export async function open(page: Page, hash: string, ready: string): Promise<void> {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await page.waitForSelector(`[data-view-ready="${ready}"]`);
}

/**
 * Takes a screenshot of the view. It is written to docs/screenshots/ when that picture is
 * missing, or always with RUNPLANE_TEST_SCREENSHOTS=1 (to refresh them), so an ordinary test
 * run does not rewrite the committed pictures.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const path = join(SCREENSHOTS, `${name}.png`);
  const png = await page.screenshot({ fullPage: false });
  if (process.env.RUNPLANE_TEST_SCREENSHOTS === '1' || !existsSync(path)) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    writeFileSync(path, png);
  }
}

/** The text of an element, whitespace-trimmed. */
export async function textOf(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? '').trim();
}
