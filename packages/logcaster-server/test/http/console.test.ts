/// <reference lib="dom" />
// The web console in a real browser: Debian's chromium driven by puppeteer-core (no
// browser download), against the real `logcaster` (a child process, fed with
// `logcaster send`) holding a million lines. Skipped, with the reason in the title,
// where no chromium is installed (apt-get install -y chromium).
import { expect } from 'chai';
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

import { rmDir, tmpDir, waitFor } from '@logcaster/testkit';

import { runCli, startCli, type Running } from '../support/cli';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const chromium = CANDIDATES.find((p): p is string => p !== undefined && existsSync(p));
/** Screenshots land here (git ignores it); CI keeps the folder as its artifact. */
const ARTIFACTS = path.resolve(__dirname, '../../../../../artifacts');

const LINES = 1_000_000;
const NEEDLES = 7;

const describeBrowser = chromium ? describe : describe.skip;

describeBrowser(`web console in headless chromium${chromium ? '' : ' — skipped: no chromium found (apt-get install -y chromium, or set CHROMIUM_PATH)'}`, function () {
  this.timeout(60000);
  let server: Running;
  let dir: string;
  let browser: Browser;
  let page: Page;
  let profile: string;
  let base: string;

  before(async () => {
    server = await startCli(['--data-dir', 'none', '--capacity', String(LINES + 100)]);
    base = `http://127.0.0.1:${server.httpPort}`;
    // A million lines, with a few needles among them, written to a file 10,000 at a time.
    dir = tmpDir('console');
    const file = path.join(dir, 'lines.txt');
    const fd = openSync(file, 'w');
    const step = Math.floor(LINES / NEEDLES);
    for (let i = 0; i < LINES; i += 10_000) {
      let block = '';
      for (let k = i; k < i + 10_000; k++) block += k % step === 12345 ? `<11>Dec  1 10:00:00 web1 app: needle ${k} found\n` : `<14>Dec  1 10:00:00 web1 app: line ${k}\n`;
      writeSync(fd, block);
    }
    closeSync(fd);
    expect((await runCli(['send', '--port', String(server.ingestPort), file])).status).to.equal(0);
    expect((await stats()).current).to.equal(LINES);
    profile = tmpDir('chromium-profile');
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      userDataDir: profile,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
  });

  after(async () => {
    await browser?.close();
    if (server) {
      server.child.kill('SIGTERM');
      expect((await server.exited).code).to.equal(0);
    }
    if (profile) rmDir(profile);
    if (dir) rmDir(dir);
  });

  const stats = async (): Promise<{ current: number; total: number; tailSubscribers: number }> => (await fetch(`${base}/api/stats`)).json() as Promise<{ current: number; total: number; tailSubscribers: number }>;

  const cells = (column: number): Promise<string[]> => page.$$eval(`#rows tr td:nth-child(${column})`, (tds) => tds.map((td) => td.textContent ?? ''));

  it('opening /?q=… shows that search’s results without a click', async () => {
    await page.goto(`${base}/?q=${encodeURIComponent('keyword=needle')}`);
    await page.waitForFunction((n) => document.querySelectorAll('#rows tr').length === n && /matching/.test(document.querySelector('#status')!.textContent!), { timeout: 20000 }, NEEDLES);
    expect(await page.$eval('#q', (el) => (el as HTMLInputElement).value)).to.equal('keyword=needle');
    const lines = await cells(4);
    expect(lines).to.have.length(NEEDLES);
    expect(lines.every((l) => /needle \d+ found$/.test(l))).to.equal(true);
    // Newest first: the needles' numbers (their position in the input) go down.
    const numbers = lines.map((l) => Number(/needle (\d+)/.exec(l)![1]));
    expect(numbers).to.deep.equal([...numbers].sort((a, b) => b - a));
    expect(new Set(await cells(3))).to.deep.equal(new Set(['err']));
    expect(new Set(await cells(2))).to.deep.equal(new Set(['127.0.0.1']));
    expect((await cells(1))[0]).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
  });

  it('a search typed into the box goes into the address; a million rows are paged, 100 at a time', async () => {
    await page.$eval('#q', (el) => ((el as HTMLInputElement).value = ''));
    await page.type('#q', 'keyword=line');
    await Promise.all([page.waitForFunction(() => /matching/.test(document.querySelector('#status')!.textContent!) && location.search === '?q=keyword%3Dline'), page.click('#search button[type=submit]')]);
    await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 100, { timeout: 20000 });
    expect(await page.$eval('#range', (el) => el.textContent)).to.equal(`rows 1–100 of ${(LINES - NEEDLES).toLocaleString('en-US')}, newest first`);
    expect((await cells(4))[0]).to.match(new RegExp(`line ${LINES - 1}$`));
    await page.click('#older');
    await page.waitForFunction(() => /rows 101–200/.test(document.querySelector('#range')!.textContent!), { timeout: 20000 });
    expect(new URL(page.url()).searchParams.get('offset')).to.equal('100');
    expect((await cells(4))[0]).to.match(/line \d+$/);
  });

  it('shows the STATS figures and draws the lines-per-second chart', async () => {
    await page.waitForFunction(() => document.querySelector('#stat-total') !== null, { timeout: 10000 });
    expect(await page.$eval('#stat-total', (el) => el.textContent)).to.equal((await stats()).total.toLocaleString('en-US'));
    // Something was drawn on the canvas (not a blank bitmap).
    const inked = await page.$eval('#chart', (c) => {
      const canvas = c as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
      return n;
    });
    expect(inked).to.be.above(50);
  });

  it('live tail: a line sent now appears at the top within 1 s, with the current filter', async () => {
    await page.goto(`${base}/?q=${encodeURIComponent('keyword=tailme')}`);
    await page.waitForFunction(() => /matching/.test(document.querySelector('#status')!.textContent!), { timeout: 20000 });
    await page.click('#live');
    let tailSubscribers = 0;
    const poll = setInterval(() => void stats().then((s) => (tailSubscribers = s.tailSubscribers)), 50);
    // The stream is open once the server counts a subscriber.
    await waitFor(() => tailSubscribers === 1, 5000, 'the tail stream');
    clearInterval(poll);
    expect((await runCli(['send', '--port', String(server.ingestPort)], 'not for this filter\ntailme: the newest line\n')).status).to.equal(0);
    const sent = Date.now();
    await page.waitForFunction(() => document.querySelector('#rows tr.new td:nth-child(4)')?.textContent === 'tailme: the newest line', { timeout: 5000 });
    const elapsed = Date.now() - sent;
    expect(elapsed, `appeared after ${elapsed} ms`).to.be.below(1000);
    expect(await cells(4)).to.deep.equal(['tailme: the newest line']);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'console.png'), fullPage: true });
  });
});
