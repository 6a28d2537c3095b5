import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { ROOT } from '../../support/stack.js';

/**
 * The browser the UI tests drive: the system's Chromium (never a downloaded one), headless, with
 * no background traffic. TASKSTREAM_CHROMIUM names another executable.
 */
export const CHROMIUM = process.env.TASKSTREAM_CHROMIUM ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium), or set TASKSTREAM_CHROMIUM to another Chromium executable`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
}

/** A page with everything it logs kept, for the no-console-errors checks and for failure messages. */
export class WatchedPage {
  readonly log: string[] = [];
  readonly errors: string[] = [];

  private constructor(readonly page: Page) {
    page.on('console', (message: ConsoleMessage) => {
      const line = `[${message.type()}] ${message.text()}${message.location().url ? ` (${message.location().url})` : ''}`;
      this.log.push(line);
      if (message.type() === 'error') this.errors.push(line);
    });
    page.on('pageerror', (error) => {
      const line = `[pageerror] ${error.message}`;
      this.log.push(line);
      this.errors.push(line);
    });
  }

  /** A new page at `width`×`height` (a laptop's by default); with `apiKey`, the key is already in the tab's sessionStorage. */
  static async open(browser: Browser, options: { apiKey?: string; width?: number; height?: number } = {}): Promise<WatchedPage> {
    const context = await browser.newContext({ viewport: { width: options.width ?? 1366, height: options.height ?? 860 } });
    if (options.apiKey !== undefined) await context.addInitScript({ content: `sessionStorage.setItem('taskstream.apiKey', ${JSON.stringify(options.apiKey)});` });
    context.setDefaultTimeout(15_000);
    return new WatchedPage(await context.newPage());
  }

  /** The console as the failure message shows it. */
  get console(): string {
    return this.log.length === 0 ? '(the page logged nothing)' : this.log.join('\n');
  }

  /** Console errors other than those `expected` matches (network failures a test causes on purpose). */
  unexpectedErrors(expected: RegExp[] = []): string[] {
    return this.errors.filter((line) => !expected.some((pattern) => pattern.test(line)));
  }

  async close(): Promise<void> {
    await this.page.context().close();
  }
}

/** With TASKSTREAM_UI_SCREENSHOTS=1, the page as a PNG under docs/ui/ (for docs/ui.md); otherwise nothing, so test runs leave the tree clean. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.TASKSTREAM_UI_SCREENSHOTS !== '1') return;
  const dir = join(ROOT, 'docs', 'ui');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: false });
}
