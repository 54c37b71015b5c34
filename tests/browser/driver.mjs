// What the browser scripts (chat.mjs, push.mjs) share: the environment they read, a step runner
// that fails on any console error, the page's waits, and signing in through the hosted page.
//
// No helper asserts on timing: every wait is for a condition, with a generous timeout.

import { chromium } from "playwright-core";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const BASE = process.env.PORTCULLIS_URL || "http://localhost:8080";
export const PAGE_URL = new URL("/demo/", BASE).href;
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const ARTIFACTS = path.resolve(process.env.BROWSER_ARTIFACTS || path.join(here, "..", "artifacts", "browser"));
export const TIMEOUT = Number(process.env.BROWSER_TIMEOUT_MS || 30_000);
export const VIEWPORT = { width: 640, height: 800 };
export const nonce = Math.random().toString(36).slice(2, 8);

const consoleLines = [];
export const cspViolations = [];
const pageErrors = [];
// Every console error fails the run, except those a step expects (an outage it causes).
const consoleErrors = [];
let expectedConsoleErrors = null; // a RegExp while a step causes errors on purpose
const pages = {};

export function log(...args) {
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
}

let currentStep = "setup";
export async function step(name, fn, { expectConsoleErrors = null } = {}) {
  currentStep = name;
  expectedConsoleErrors = expectConsoleErrors;
  log(`STEP ${name}`);
  await fn();
  checkConsole();
}

/** Fails on any console error or uncaught exception seen so far. */
export function checkConsole() {
  check(pageErrors.length === 0, `uncaught errors:\n${pageErrors.join("\n")}`);
  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join("\n")}`);
}

export function watch(page, who) {
  pages[who] = page;
  page.on("console", (msg) => {
    const line = `${who} console.${msg.type()}: ${msg.text()}`;
    consoleLines.push(line);
    if (/Content Security Policy/i.test(msg.text())) cspViolations.push(line);
    if (msg.type() === "error" && !(expectedConsoleErrors && expectedConsoleErrors.test(msg.text()))) {
      consoleErrors.push(`${line} (step "${currentStep}")`);
    }
  });
  page.on("pageerror", (err) => {
    const line = `${who} page error: ${err.stack || err}`;
    consoleLines.push(line);
    pageErrors.push(line);
  });
  page.on("requestfailed", (req) => {
    consoleLines.push(`${who} request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText}`);
  });
}

export async function shot(page, file) {
  const dest = path.join(ARTIFACTS, file);
  await page.screenshot({ path: dest, fullPage: true });
  log(`screenshot ${dest}`);
  return dest;
}

// ---- waiting for the page ------------------------------------------------------------------------

export async function waitForStatus(page, state, text = "") {
  try {
    await page.waitForFunction(
      ([s, t]) => {
        const el = document.querySelector("#status");
        return el && el.dataset.state === s && el.textContent.includes(t);
      },
      [state, text],
      { timeout: TIMEOUT },
    );
  } catch (e) {
    throw new Error(
      `#status never became data-state=${state} containing ${JSON.stringify(text)}; ` +
        `it is ${await describeStatus(page)}`,
    );
  }
}

export async function describeStatus(page) {
  return page
    .evaluate(() => {
      const s = document.querySelector("#status");
      const a = document.querySelector("#alert");
      return `data-state=${s?.dataset.state} text=${JSON.stringify(s?.textContent)} alert=${JSON.stringify(a?.textContent)}`;
    })
    .catch((e) => `(page not readable: ${e.message})`);
}

export async function waitForText(page, selector, text, what) {
  try {
    await page.locator(selector, { hasText: text }).first().waitFor({ state: "visible", timeout: TIMEOUT });
  } catch {
    const now = await page.locator(selector).allInnerTexts().catch(() => []);
    throw new Error(`${what}: no ${selector} containing ${JSON.stringify(text)}; there is ${JSON.stringify(now)}`);
  }
}

export async function countText(page, selector, text) {
  return page.locator(selector, { hasText: text }).count();
}

export async function waitForCount(page, selector, text, atLeast, what) {
  try {
    await page.waitForFunction(
      ([sel, t, n]) => [...document.querySelectorAll(sel)].filter((e) => e.textContent.includes(t)).length >= n,
      [selector, text, atLeast],
      { timeout: TIMEOUT },
    );
  } catch {
    const now = await page.locator(selector).allInnerTexts().catch(() => []);
    throw new Error(`${what}: expected ${atLeast} × ${selector} containing ${JSON.stringify(text)}; there is ${JSON.stringify(now)}`);
  }
}

/**
 * Opens the page signed out and waits until its start-up requests are over: the discovery
 * document is the last one a signed-out page fetches (after asking about a cookie session, if
 * it asks at all).
 */
export async function openSignedOut(page) {
  const discovery = page.waitForResponse((r) => r.url().includes("/.well-known/openid-configuration"), {
    timeout: TIMEOUT,
  });
  const response = await page.goto(PAGE_URL, { waitUntil: "load" });
  await discovery;
  await waitForStatus(page, "signed-out", "Signed out");
  return response;
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

// ---- the flows -------------------------------------------------------------------------------------

export async function signIn(page, user, { mode, announce, screenshot = null }) {
  await page.locator(mode === "cookie" ? "#mode-cookie" : "#mode-token").check();
  await page.locator("#scope-announce").setChecked(announce);
  await page.locator("#sign-in").click();
  await page.waitForURL((u) => u.pathname.endsWith("/oauth2/authorize"), { timeout: TIMEOUT });
  const query = new URL(page.url()).searchParams;
  check(query.get("code_challenge_method") === "S256", `authorize request without S256: ${page.url()}`);
  check(/^[A-Za-z0-9_-]{43}$/.test(query.get("code_challenge") || ""), "code_challenge is not a base64url SHA-256");
  check((query.get("state") || "").length >= 22, "state is missing or short");
  const scope = (query.get("scope") || "").split(" ");
  for (const s of ["openid", "email", "profile", "chat/write"]) check(scope.includes(s), `scope lacks ${s}: ${scope}`);
  check(scope.includes("chat/announce") === announce, `scope ${announce ? "lacks" : "has"} chat/announce: ${scope}`);
  // Only the PKCE verifier, the state and the mode wait in sessionStorage across the redirect.
  await page.locator("#username").waitFor({ timeout: TIMEOUT });
  if (screenshot) await shot(page, screenshot);
  await page.locator("#username").fill(user.username);
  await page.locator("#password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await waitForStatus(page, "connected", user.username);
  check(new URL(page.url()).search === "", `the code stayed in the address bar: ${page.url()}`);
  const storage = await page.evaluate(() => ({
    session: Object.keys(sessionStorage),
    local: Object.keys(localStorage),
    cookie: document.cookie,
  }));
  check(storage.session.length === 0, `sessionStorage is not empty after sign-in: ${storage.session}`);
  check(storage.local.length === 0, `localStorage is not empty after sign-in: ${storage.local}`);
  check(!/portcullis_access|portcullis_refresh/.test(storage.cookie), `a token cookie is readable by script: ${storage.cookie}`);
}

export async function send(page, text, button = "#send") {
  await page.locator("#message-input").fill(text);
  await page.locator(button).click();
}

/** Headless Chromium, as every script drives it. */
export async function launch() {
  await mkdir(ARTIFACTS, { recursive: true });
  log(`page ${PAGE_URL}, browser ${CHROMIUM}`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--disable-dev-shm-usage"],
  });
}

/** A new browser context (its own cookies: another browser profile) with one watched page. */
export async function newPage(browser, who) {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, locale: "en-US" });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  watch(page, who);
  return { context, page };
}

/** Says where the run stopped: each page's state, messages and a screenshot, the console. */
export async function reportFailure(err) {
  console.error(`\nFAIL in step "${currentStep}": ${err.message}`);
  for (const [who, page] of Object.entries(pages)) {
    if (page.isClosed()) continue;
    console.error(`  ${who}: ${page.url()} ${await describeStatus(page)}`);
    const messages = await page.locator("#messages li").allInnerTexts().catch(() => []);
    if (messages.length) console.error(`  ${who}'s messages: ${JSON.stringify(messages)}`);
    await shot(page, `failure-${who}.png`).catch(() => {});
  }
  if (consoleLines.length) {
    console.error("\n---- browser console (last 40 lines) ----");
    console.error(consoleLines.slice(-40).join("\n"));
  }
}

/** Runs a script's `main` and exits 0 when every step passed. */
export async function runMain(main, consoleFile) {
  try {
    await main();
    log("PASS: all browser steps passed");
    await writeFile(path.join(ARTIFACTS, consoleFile), consoleLines.join("\n") + "\n").catch(() => {});
    process.exit(0);
  } catch (err) {
    if (currentStep === "setup") console.error(`FAIL during setup: ${err.stack || err}`);
    await writeFile(path.join(ARTIFACTS, consoleFile), consoleLines.join("\n") + "\n").catch(() => {});
    process.exit(1);
  }
}
