// The chat page when things break: the gateway goes away, comes back without its backend, and
// the backend comes back. tests/python/test_browser_outages.py owns the processes; this script
// drives one page and, at each PHASE line it prints, waits for a line on stdin ("go") once the
// test has broken or repaired something. It exits 0 when every step passed.
//
// Environment: PORTCULLIS_URL, ALICE_USERNAME, ALICE_PASSWORD, CHROMIUM_PATH, BROWSER_ARTIFACTS,
// BROWSER_TIMEOUT_MS (default 90000: the page's reconnect back-off grows to 30 s).
// No step asserts on timing: every wait is for a condition, with a generous timeout.

import { chromium } from "playwright-core";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";

const BASE = process.env.PORTCULLIS_URL || "http://localhost:8080";
const PAGE_URL = new URL("/demo/", BASE).href;
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARTIFACTS = path.resolve(process.env.BROWSER_ARTIFACTS || "../artifacts/browser");
const TIMEOUT = Number(process.env.BROWSER_TIMEOUT_MS || 90_000);
const USER = process.env.ALICE_USERNAME || "alice";
const PASSWORD = process.env.ALICE_PASSWORD || "";

// What the browser logs while the gateway or the backend is gone; any other console error fails.
const OUTAGE_ERRORS =
  /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed|status of 5\d\d/;

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Tells the test what state the page reached, then waits until the test has acted. */
async function phase(name) {
  console.log(`PHASE ${name}`);
  const { value, done } = await lines.next();
  if (done || value.trim() !== "go") throw new Error(`the test did not continue after ${name}`);
}

async function state(page) {
  return page.evaluate(() => ({
    status: document.querySelector("#status")?.dataset.state,
    text: document.querySelector("#status")?.textContent,
    alert: document.querySelector("#alert")?.textContent,
  }));
}

async function waitFor(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: TIMEOUT });
  } catch {
    throw new Error(`${what}; the page shows ${JSON.stringify(await state(page))}`);
  }
}

const alertContains = (page, text) =>
  waitFor(page, `the alert never said ${JSON.stringify(text)}`, (t) =>
    (document.querySelector("#alert")?.textContent || "").includes(t), text);

const connected = (page) =>
  waitFor(page, "the page never connected", (u) => {
    const s = document.querySelector("#status");
    return s?.dataset.state === "connected" && s.textContent.includes(u);
  }, USER);

async function main() {
  await mkdir(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 760, height: 900 } });
    context.setDefaultTimeout(TIMEOUT);
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (msg) => {
      if (msg.type() === "error" && !OUTAGE_ERRORS.test(msg.text())) errors.push(`console: ${msg.text()}`);
    });

    // Cookie mode: the session lives in the browser's cookies, as a page a user left open would.
    // The discovery document is the last request of a signed-out page's start.
    const discovery = page.waitForResponse((r) => r.url().includes("/.well-known/openid-configuration"));
    await page.goto(PAGE_URL);
    await discovery;
    if (errors.length) throw new Error(`errors on the signed-out page:\n${errors.join("\n")}`);
    await page.locator("#mode-cookie").check();
    await page.locator("#sign-in").click();
    await page.locator("#username").fill(USER);
    await page.locator("#password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await connected(page);
    await phase("connected"); // the test stops the gateway

    await alertContains(page, "Portcullis is not reachable");
    await page.screenshot({ path: path.join(ARTIFACTS, "outage-1-gateway-down.png"), fullPage: true });
    await phase("gateway-down-shown"); // the test stops the backend and starts the gateway again

    await alertContains(page, "the chat backend is not answering");
    await page.screenshot({ path: path.join(ARTIFACTS, "outage-2-backend-down.png"), fullPage: true });
    await phase("backend-down-shown"); // the test starts the backend again

    await connected(page);
    await waitFor(page, "the connectivity alert stayed", () =>
      !(document.querySelector("#alert")?.textContent || "").includes("not"));
    const text = `back again ${Math.random().toString(36).slice(2, 8)}`;
    await page.locator("#message-input").fill(text);
    await page.locator("#send").click();
    await waitFor(page, "the message sent after recovery never came back", (t) =>
      [...document.querySelectorAll("#messages li")].some((li) => li.textContent.includes(t)), text);
    await page.screenshot({ path: path.join(ARTIFACTS, "outage-3-recovered.png"), fullPage: true });
    if (errors.length) throw new Error(`console errors or uncaught page errors:\n${errors.join("\n")}`);
  } finally {
    await browser.close().catch(() => {});
  }
}

try {
  await main();
  console.log("PASS: the page explained each outage and recovered");
  process.exit(0);
} catch (err) {
  console.error(`FAIL: ${err.message}`);
  process.exit(1);
}
