// Loads a self-contained HTML report in headless Chromium (Debian's /usr/bin/chromium, or
// $CHROMIUM) and checks that it rendered:
//   node check-report.mjs REPORT.html SCREENSHOT.png [--expect-charts N] [--expect-text STRING]...
//                         [--expect-selector CSS]... [--timeout SECONDS]
// Fails (exit 1, one "FAIL: ..." line each) when the page tries any network request (all are
// blocked but the report's own file:// URL), logs a console error or throws an uncaught
// exception, has fewer than N charts (svg.chart elements, each named by data-chart), a chart
// smaller than 51x51 px or without a drawn mark (a path, polyline, rect or circle of class
// "mark" with a nonzero size or length), or lacks an expected text, or has no rendered element
// (nonzero box) matching an expected CSS selector. Writes a full-page
// screenshot whenever the page loaded. Exit 2 on usage errors. Every wait is bounded by
// --timeout (default 30 s; a watchdog 2 s later, then at most 5 s to close the browser), and the
// browser is always closed. Uses playwright-core only: it downloads no browser.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const USAGE =
    'usage: node check-report.mjs REPORT.html SCREENSHOT.png [--expect-charts N] ' +
    '[--expect-text STRING]... [--expect-selector CSS]... [--timeout SECONDS]';

function usageError(message) {
    console.error(`check-report: ${message}`);
    console.error(USAGE);
    process.exit(2);
}

function parseArgs(argv) {
    const opts = { positional: [], expectCharts: 0, expectTexts: [], expectSelectors: [], timeoutMs: 30000 };
    for (let i = 0; i < argv.length; i++) {
        let arg = argv[i];
        let value;
        const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
        if (eq > 0) {
            value = arg.slice(eq + 1);
            arg = arg.slice(0, eq);
        }
        const takeValue = () => {
            if (value !== undefined) return value;
            if (i + 1 >= argv.length) usageError(`${arg} needs a value`);
            return argv[++i];
        };
        switch (arg) {
            case '-h':
            case '--help':
                console.log(USAGE);
                process.exit(0);
                break;
            case '--expect-charts': {
                const v = takeValue();
                if (!/^\d+$/.test(v)) usageError(`--expect-charts wants a whole number, not '${v}'`);
                opts.expectCharts = Number(v);
                break;
            }
            case '--expect-text': {
                const v = takeValue();
                if (v === '') usageError('--expect-text wants a non-empty string');
                opts.expectTexts.push(v);
                break;
            }
            case '--expect-selector': {
                const v = takeValue();
                if (v === '') usageError('--expect-selector wants a CSS selector');
                opts.expectSelectors.push(v);
                break;
            }
            case '--timeout': {
                const v = takeValue();
                if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0)
                    usageError(`--timeout wants a positive number of seconds, not '${v}'`);
                opts.timeoutMs = Math.round(Number(v) * 1000);
                break;
            }
            case '--':
                opts.positional.push(...argv.slice(i + 1));
                i = argv.length;
                break;
            default:
                if (arg.startsWith('-') && arg !== '-') usageError(`unknown option ${argv[i]}`);
                opts.positional.push(argv[i]);
        }
    }
    if (opts.positional.length !== 2)
        usageError(`expected REPORT.html and SCREENSHOT.png, got ${opts.positional.length} argument(s)`);
    return opts;
}

const opts = parseArgs(process.argv.slice(2));
const reportPath = path.resolve(opts.positional[0]);
const screenshotPath = path.resolve(opts.positional[1]);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const started = Date.now();

const failures = [];
const fail = (message) => {
    if (finished) return; // the watchdog has reported and is closing down
    failures.push(message);
    console.log(`FAIL: ${message}`);
};
let browser;
let finished = false;

async function closeBrowser() {
    if (!browser) return;
    const b = browser;
    browser = undefined;
    await Promise.race([
        b.close().catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 5000)),
    ]);
}

async function finish(code) {
    if (finished) return;
    finished = true;
    await closeBrowser();
    process.exit(code);
}

// Each step that can wait is bounded by what is left of --timeout; this watchdog, 2 s later,
// catches whatever has no timeout of its own (page.evaluate): it reports, closes the browser
// (at most 5 s) and exits.
const watchdog = setTimeout(() => {
    fail(`timed out after ${opts.timeoutMs / 1000} s (the page or the browser did not finish)`);
    console.log(`check-report: FAILED, ${failures.length} failure(s): ${reportPath}`);
    finish(1);
}, opts.timeoutMs + 2000);

const remaining = () => Math.max(500, opts.timeoutMs - (Date.now() - started));

async function main() {
    if (!existsSync(reportPath) || !statSync(reportPath).isFile()) {
        fail(`report not found: ${reportPath}`);
        return;
    }
    if (!existsSync(executablePath)) {
        fail(`chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
        return;
    }

    const reportUrl = pathToFileURL(reportPath).href;
    try {
        browser = await chromium.launch({
            executablePath,
            args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
            timeout: remaining(),
        });
    } catch (e) {
        fail(`could not launch ${executablePath}: ${String(e.message).split('\n')[0]}`);
        return;
    }
    console.log(`browser: ${executablePath}, Chromium ${browser.version()}`);
    const context = await browser.newContext({
        viewport: { width: 1280, height: 900 },
        deviceScaleFactor: 1,
        serviceWorkers: 'block',
    });

    // A self-contained report fetches nothing: every request but the report itself is blocked
    // and counted.
    // Requests that route() does not intercept (other file:// URLs) are still seen, and counted,
    // by the 'request' event; data:, blob: and about: URLs are no network.
    const attempted = new Map();
    const allowed = (url) =>
        url.split('#')[0] === reportUrl || /^(data|blob|about):/.test(url);
    const note = (req) => {
        if (!allowed(req.url()) && !attempted.has(req))
            attempted.set(req, `${req.method()} ${req.url()} (${req.resourceType()})`);
    };
    context.on('request', note);
    await context.route('**/*', (route) => {
        const req = route.request();
        if (allowed(req.url())) return route.continue();
        note(req);
        return route.abort('blockedbyclient');
    });
    const sockets = [];
    await context.routeWebSocket(/.*/, (ws) => {
        sockets.push(`WebSocket ${ws.url()}`);
        ws.close();
    });

    const page = await context.newPage();
    page.setDefaultTimeout(remaining());
    const consoleErrors = [];
    const consoleWarnings = [];
    const pageErrors = [];
    page.on('console', (msg) => {
        const type = msg.type();
        if (type !== 'error' && type !== 'warning') return;
        const loc = msg.location();
        const where = loc && loc.url ? ` (at ${loc.url}:${loc.lineNumber + 1})` : '';
        if (type === 'error') consoleErrors.push({ text: msg.text(), where, url: loc && loc.url });
        else consoleWarnings.push(`${msg.text()}${where}`);
    });
    page.on('pageerror', (err) => pageErrors.push(String(err.message || err).split('\n')[0]));
    page.on('crash', () => pageErrors.push('the page crashed'));

    let loaded = false;
    try {
        await page.goto(reportUrl, { waitUntil: 'load', timeout: remaining() });
        loaded = true;
        // Let scripts that draw on load finish: fonts, then two animation frames.
        await page.evaluate(
            () =>
                document.fonts.ready.then(
                    () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))),
                ),
        );
    } catch (e) {
        fail(`the report did not load: ${String(e.message).split('\n')[0]}`);
    }

    if (loaded) {
        const charts = await page.$$eval('svg.chart', (svgs) =>
            svgs.map((svg, index) => {
                const box = svg.getBoundingClientRect();
                const marks = [
                    ...svg.querySelectorAll('path.mark, polyline.mark, rect.mark, circle.mark'),
                ];
                let drawn = 0;
                for (const m of marks) {
                    let ok = false;
                    try {
                        const b = m.getBBox();
                        ok = b.width > 0 || b.height > 0;
                    } catch {}
                    if (!ok && typeof m.getTotalLength === 'function') {
                        try {
                            ok = m.getTotalLength() > 0;
                        } catch {}
                    }
                    if (ok) drawn++;
                }
                return {
                    index,
                    name: svg.getAttribute('data-chart'),
                    width: box.width,
                    height: box.height,
                    marks: marks.length,
                    drawn,
                };
            }),
        );
        for (const c of charts) {
            const label = c.name ? `'${c.name}'` : `#${c.index + 1}`;
            const size = `${Math.round(c.width)}x${Math.round(c.height)}`;
            console.log(`chart ${c.name || `#${c.index + 1}`}: ${size} px, ${c.drawn} drawn mark(s) of ${c.marks}`);
            if (!c.name) fail(`chart ${label} has no data-chart attribute`);
            if (!(c.width > 50 && c.height > 50))
                fail(`chart ${label} is ${size} px, not larger than 50x50`);
            if (c.drawn === 0)
                fail(
                    c.marks === 0
                        ? `chart ${label} has no mark (no path/polyline/rect/circle of class "mark")`
                        : `chart ${label} has no drawn mark (all ${c.marks} mark element(s) are empty)`,
                );
        }
        if (charts.length < opts.expectCharts)
            fail(`found ${charts.length} chart(s) (svg.chart), expected at least ${opts.expectCharts}`);

        for (const selector of opts.expectSelectors) {
            let rendered = 0;
            try {
                rendered = await page.$$eval(selector, (els) =>
                    els.filter((el) => {
                        const b = el.getBoundingClientRect();
                        return b.width > 0 || b.height > 0;
                    }).length,
                );
            } catch (e) {
                fail(`bad selector ${JSON.stringify(selector)}: ${String(e.message).split('\n')[0]}`);
                continue;
            }
            if (rendered === 0) fail(`no rendered element matches ${JSON.stringify(selector)}`);
            else console.log(`selector ${JSON.stringify(selector)}: ${rendered} rendered`);
        }

        if (opts.expectTexts.length) {
            const text = await page.evaluate(() => document.body ? document.body.innerText : '');
            for (const t of opts.expectTexts) {
                if (!text.includes(t)) fail(`the page's text does not contain ${JSON.stringify(t)}`);
                else console.log(`text ${JSON.stringify(t)}: found`);
            }
        }

        try {
            mkdirSync(path.dirname(screenshotPath), { recursive: true });
            await page.screenshot({ path: screenshotPath, fullPage: true, timeout: remaining() });
            console.log(`screenshot: ${screenshotPath}`);
        } catch (e) {
            fail(`could not take the screenshot: ${String(e.message).split('\n')[0]}`);
        }
    }

    const blocked = [...attempted.values(), ...sockets];
    for (const b of blocked) fail(`network request (a self-contained report fetches nothing): ${b}`);
    console.log(`network requests tried: ${blocked.length}`);
    for (const e of pageErrors) fail(`uncaught exception in the page: ${e}`);
    // Chromium logs each blocked request as a console error too: already reported above.
    const blockedUrls = new Set([...attempted.keys()].map((r) => r.url()));
    for (const e of consoleErrors)
        if (!(e.url && blockedUrls.has(e.url) && e.text.startsWith('Failed to load resource')))
            fail(`console error: ${e.text}${e.where}`);
    for (const w of consoleWarnings) console.log(`console warning: ${w}`);
}

try {
    await main();
} catch (e) {
    fail(`unexpected error: ${e && e.stack ? e.stack : e}`);
}
if (!finished) {
    clearTimeout(watchdog);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (failures.length === 0) {
        console.log(`check-report: OK in ${secs} s: ${reportPath}`);
        await finish(0);
    } else {
        console.log(`check-report: FAILED, ${failures.length} failure(s) in ${secs} s: ${reportPath}`);
        await finish(1);
    }
}
