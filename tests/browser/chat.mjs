// The chat page (web/chat) in a real, headless Chromium against a running Portcullis with
// examples/demo.toml and the demo backend. tests/python/test_browser.py starts all of that and
// runs this script; it exits 0 when every step passed.
//
// Environment:
//   PORTCULLIS_URL        the gateway's public URL (default http://localhost:8080)
//   ALICE_USERNAME / ALICE_PASSWORD, BOB_USERNAME / BOB_PASSWORD   existing, confirmed users
//   CHROMIUM_PATH         the browser (default /usr/bin/chromium)
//   BROWSER_ARTIFACTS     where screenshots and the console log go (default tests/artifacts/browser)
//   DOCS_IMAGE            where to copy the "two users chatting" screenshot (unset: not copied)
//   BROWSER_TIMEOUT_MS    how long any single wait may take (default 30000)
//   BACKEND_PID, GATEWAY_PID  when set, the last steps stop the demo backend (SIGTERM), then the
//                         gateway, and check the page's explanations; unset: those steps are skipped
//
// No step asserts on timing: every wait is for a condition, with a generous timeout.

import { copyFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";

import {
  ARTIFACTS,
  BASE,
  PAGE_URL,
  TIMEOUT,
  VIEWPORT,
  check,
  countText,
  cspViolations,
  launch,
  log,
  newPage,
  nonce,
  openSignedOut,
  reportFailure,
  runMain,
  send,
  shot,
  signIn,
  step,
  waitForCount,
  waitForStatus,
  waitForText,
} from "./driver.mjs";

const DOCS_IMAGE = process.env.DOCS_IMAGE || "";

const alice = {
  name: "alice",
  username: process.env.ALICE_USERNAME || "alice",
  password: process.env.ALICE_PASSWORD || "",
};
const bob = {
  name: "bob",
  username: process.env.BOB_USERNAME || "bob",
  password: process.env.BOB_PASSWORD || "",
};
// Signs in with "Sign in with Amplify" (SRP on the page); the steps are skipped without a password.
const carol = {
  name: "carol",
  username: process.env.CAROL_USERNAME || "carol",
  password: process.env.CAROL_PASSWORD || "",
};

async function whoami(page, user, scopes) {
  await page.locator("#whoami").click();
  await waitForText(page, "#whoami-result dd", user.username, `${user.name}'s whoami`);
  const result = await page.locator("#whoami-result").innerText();
  for (const [scope, present] of Object.entries(scopes)) {
    check(result.includes(scope) === present, `${user.name}'s whoami ${present ? "lacks" : "shows"} ${scope}:\n${result}`);
  }
  check(/Connection id\s*\S+/.test(result), `${user.name}'s whoami shows no connection id:\n${result}`);
  check(!/Token expires\s*\(unknown\)/.test(result), `${user.name}'s whoami shows no token expiry:\n${result}`);
}

/** Both pages side by side in one picture, for the docs. */
async function composite(browser, left, right, dest) {
  // Wide enough for both screenshots at their natural size (scaling only blurs and bloats them).
  const width = 2 * (VIEWPORT.width + 2) + 36;
  const context = await browser.newContext({ viewport: { width, height: 600 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const img = async (file) => `data:image/png;base64,${(await readFile(file)).toString("base64")}`;
  const figure = async (file, caption) =>
    `<figure><figcaption>${caption}</figcaption><img src="${await img(file)}"></figure>`;
  await page.setContent(`<!doctype html><html><head><style>
      body{margin:0;padding:12px;display:flex;gap:12px;background:#cfd5dd;font:14px system-ui,sans-serif}
      figure{margin:0;flex:none} figcaption{padding:4px 2px 6px;color:#1c2330;font-weight:600}
      img{display:block;border:1px solid #9aa4b2;border-radius:6px}
    </style></head><body>
    ${await figure(left.file, left.caption)}${await figure(right.file, right.caption)}
    </body></html>`);
  await page.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
  await page.screenshot({ path: dest, fullPage: true });
  await context.close();
  log(`screenshot ${dest}`);
}

async function main() {
  check(alice.password && bob.password, "ALICE_PASSWORD and BOB_PASSWORD must be set");
  const browser = await launch();
  try {
    const a = await newPage(browser, "alice");
    const b = await newPage(browser, "bob");

    await step("the page loads signed out, with its security headers", async () => {
      // A signed-out visit asks nothing that fails (no 401 from GET /pools/main/session): the
      // step fails on any console error.
      const response = await openSignedOut(a.page);
      check(response && response.ok(), `GET ${PAGE_URL}: HTTP ${response?.status()}`);
      const headers = response.headers();
      check(/default-src 'self'/.test(headers["content-security-policy"] || ""), `no CSP: ${JSON.stringify(headers)}`);
      check(headers["x-content-type-options"] === "nosniff", "no X-Content-Type-Options: nosniff");
      check(headers["referrer-policy"] === "no-referrer", "no Referrer-Policy: no-referrer");
      check(await a.page.locator("#mode-token").isChecked(), "token mode is not the default");
      check(!(await a.page.locator("#scope-announce").isChecked()), "chat/announce is requested by default");
      await shot(a.page, "01-signed-out.png");
    });

    await step("the sign-in page names the app, and Cancel goes back to it", async () => {
      await a.page.locator("#sign-in").click();
      await a.page.waitForURL((u) => u.pathname.endsWith("/oauth2/authorize"), { timeout: TIMEOUT });
      const intro = await a.page.locator("main p.app").innerText();
      check(intro.includes("Portcullis chat"), `the sign-in page does not name the app: ${intro}`);
      await a.page.getByRole("button", { name: "Cancel" }).click();
      await a.page.waitForURL((u) => u.pathname.endsWith("/demo/") && u.search === "", { timeout: TIMEOUT });
      await waitForStatus(a.page, "signed-out", "cancelled");
      const alert = await a.page.locator("#alert").innerText();
      check(alert.trim() === "", `cancelling shows an alert: ${alert}`);
    });

    await step("alice signs in: token in memory, with chat/announce", async () => {
      await signIn(a.page, alice, { mode: "token", announce: true, screenshot: "02-hosted-sign-in.png" });
      const cookies = await a.context.cookies();
      check(!cookies.some((c) => c.name === "portcullis_access"), "token mode set an access cookie");
    });

    await step("bob signs in: HttpOnly cookie session, asking for chat/announce too", async () => {
      await openSignedOut(b.page);
      await signIn(b.page, bob, { mode: "cookie", announce: true });
      const cookies = Object.fromEntries((await b.context.cookies()).map((c) => [c.name, c]));
      check(cookies.portcullis_access?.httpOnly, `no HttpOnly portcullis_access cookie: ${JSON.stringify(cookies)}`);
      check(cookies.portcullis_access?.sameSite === "Strict", "portcullis_access is not SameSite=Strict");
      check(cookies.portcullis_refresh?.httpOnly, "no HttpOnly portcullis_refresh cookie");
      check(cookies.portcullis_csrf && !cookies.portcullis_csrf.httpOnly, "no script-readable portcullis_csrf cookie");
    });

    await step("the backend announces bob to alice", async () => {
      await waitForText(a.page, "#messages li.system", `${bob.username} joined`, "alice's page");
    });

    await step("bob reloads: the cookie session resumes", async () => {
      const left = await countText(a.page, "#messages li.system", `${bob.username} left`);
      await b.page.reload();
      await waitForStatus(b.page, "connected", bob.username);
      check(await b.page.locator("#mode-cookie").isChecked(), "the resumed page does not show cookie mode");
      // The old socket went away with the old page; the backend tells the others.
      await waitForCount(a.page, "#messages li.system", `${bob.username} left`, left + 1, "alice's page after bob's reload");
      await waitForCount(a.page, "#messages li.system", `${bob.username} joined`, 2, "alice's page after bob's reload");
    });

    const fromAlice = `hello bob, alice here (${nonce})`;
    const fromBob = `hi alice, bob here (${nonce})`;
    await step("alice → bob", async () => {
      await send(a.page, fromAlice);
      await waitForText(b.page, "#messages li.message", fromAlice, "bob's page");
      await waitForText(b.page, "#messages li.message", alice.username, "bob's page (sender)");
      check((await a.page.locator("#message-input").inputValue()) === "", "the input was not cleared after Send");
    });

    await step("bob → alice", async () => {
      await send(b.page, fromBob);
      await waitForText(a.page, "#messages li.message", fromBob, "alice's page");
    });

    await step("who am I?", async () => {
      await whoami(a.page, alice, { "chat/write": true, "chat/announce": true });
      await whoami(b.page, bob, { "chat/write": true, "chat/announce": true });
    });

    const bobsAnnouncement = `bob would like to announce (${nonce})`;
    await step("bob's announcement is refused: he has the scope but is not in the group admins", async () => {
      await send(b.page, bobsAnnouncement, "#announce");
      await waitForText(
        b.page,
        "#alert",
        "Not allowed: only members of the admins group may post announcements.",
        "bob's alert",
      );
      await waitForStatus(b.page, "connected", bob.username); // the socket stays open
      await shot(b.page, "04-announce-refused.png");
    });

    const alicesAnnouncement = `the demo works (${nonce})`;
    await step("alice's announcement reaches bob", async () => {
      await send(a.page, alicesAnnouncement, "#announce");
      await waitForText(b.page, "#messages li.announcement", alicesAnnouncement, "bob's page");
      // Bob's refused announcement never reached anyone.
      await waitForText(a.page, "#messages li.announcement", alicesAnnouncement, "alice's page");
      check((await countText(a.page, "#messages li", bobsAnnouncement)) === 0, "bob's refused announcement reached alice");
      check((await countText(b.page, "#messages li", bobsAnnouncement)) === 0, "bob's refused announcement came back");
    });

    await step("screenshot: two users chatting", async () => {
      const aliceShot = await shot(a.page, "03a-chatting-alice.png");
      const bobShot = await shot(b.page, "03b-chatting-bob.png");
      const dest = path.join(ARTIFACTS, "03-chatting.png");
      await composite(
        browser,
        { file: aliceShot, caption: `${alice.username}: token in memory, chat/announce granted` },
        { file: bobShot, caption: `${bob.username}: HttpOnly cookie session, not in admins` },
        dest,
      );
      if (DOCS_IMAGE) {
        await mkdir(path.dirname(DOCS_IMAGE), { recursive: true });
        await copyFile(dest, DOCS_IMAGE);
        log(`copied to ${DOCS_IMAGE}`);
      }
    });

    await step("the cookie session refreshes (POST /pools/main/session/refresh)", async () => {
      const result = await b.page.evaluate(async () => {
        const csrf = document.cookie.match(/(?:^|;\s*)portcullis_csrf=([^;]*)/)?.[1] || "";
        const r = await fetch("/pools/main/session/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": decodeURIComponent(csrf) },
          body: "client_id=web",
        });
        const wrong = await fetch("/pools/main/session/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": "wrong" },
          body: "client_id=web",
        });
        return { status: r.status, body: await r.json().catch(() => null), wrong: wrong.status };
      });
      check(result.status === 200 && result.body?.username === bob.username, `refresh: ${JSON.stringify(result)}`);
      check(!JSON.stringify(result.body).includes("eyJ"), `the refresh answer holds a token: ${JSON.stringify(result.body)}`);
      check(result.wrong === 403, `refresh with a wrong X-CSRF-Token: HTTP ${result.wrong}, expected 403`);
      // The 403 this step provokes on purpose is the one console error it may log.
    }, { expectConsoleErrors: /status of 403/ });

    await step("bob signs out: the gateway closes his socket with 1008", async () => {
      const left = await countText(a.page, "#messages li.system", `${bob.username} left`);
      await b.page.locator("#sign-out").click();
      await waitForStatus(b.page, "signed-out", "1008");
      const status = await b.page.locator("#status").innerText();
      check(/Token revoked/i.test(status), `bob's status does not say why: ${status}`);
      check(await b.page.locator("#sign-in").isVisible(), "bob's page does not offer to sign in again");
      const cookies = (await b.context.cookies()).map((c) => c.name);
      check(!cookies.includes("portcullis_access"), `the access cookie survived the sign-out: ${cookies}`);
      // Asked outside the page (with its cookies), so that the expected 401 is no console error.
      const session = (await b.context.request.get(new URL("/pools/main/session", BASE).href)).status();
      check(session === 401, `GET /pools/main/session after sign-out: ${session}, expected 401`);
      await shot(b.page, "05-signed-out.png");
      await waitForCount(a.page, "#messages li.system", `${bob.username} left`, left + 1, "alice's page after bob signed out");
    });

    await step("alice still chats", async () => {
      const text = `still here (${nonce})`;
      await send(a.page, text);
      await waitForText(a.page, "#messages li.message", text, "alice's own page");
      await waitForStatus(a.page, "connected", alice.username);
    });

    await step("alice signs out too: the refresh token is revoked, the gateway closes with 1008", async () => {
      await a.page.locator("#sign-out").click();
      await waitForStatus(a.page, "signed-out", "1008");
    });

    await step("alice reloads: token mode does not survive a reload", async () => {
      await a.page.reload();
      await waitForStatus(a.page, "signed-out", "Signed out");
    });

    await step("alice signs in again without chat/announce: her announcement is refused", async () => {
      await signIn(a.page, alice, { mode: "token", announce: false });
      await send(a.page, `no scope, no announcement (${nonce})`, "#announce");
      await waitForText(a.page, "#alert", "Not allowed: your sign-in did not grant the chat/announce scope.", "alice's alert");
      await waitForStatus(a.page, "connected", alice.username);
    });

    if (carol.password) {
      const c = await newPage(browser, "carol");
      await step("carol signs in with Amplify (SRP on the page): a wrong password first", async () => {
        await openSignedOut(c.page);
        await c.page.locator("#mode-amplify").check();
        check(!(await c.page.locator("#amplify-fields").isHidden()), "the Amplify fields stay hidden");
        check(await c.page.locator("#scope-announce").isDisabled(), "chat/announce is offered to Amplify");
        await c.page.locator("#amplify-username").fill(carol.username);
        await c.page.locator("#amplify-password").fill(`${carol.password}-wrong`);
        await c.page.locator("#sign-in").click();
        await waitForText(c.page, "#alert", "wrong username or password", "carol's alert");
        await waitForStatus(c.page, "signed-out", "Signed out");
      }, { expectConsoleErrors: /status of 400/ });

      await step("carol signs in with Amplify and chats; no token is kept in web storage", async () => {
        const requests = [];
        c.page.on("request", (r) => {
          if (r.method() === "POST") requests.push(`${r.headers()["x-amz-target"] || ""} ${r.postData() || ""}`);
        });
        await c.page.locator("#amplify-password").fill(carol.password);
        await c.page.locator("#sign-in").click();
        await waitForStatus(c.page, "connected", carol.username);
        check(requests.some((r) => r.includes("InitiateAuth") && r.includes("USER_SRP_AUTH")), `no USER_SRP_AUTH: ${requests}`);
        check(requests.some((r) => r.includes("PASSWORD_VERIFIER")), `no PASSWORD_VERIFIER answer: ${requests}`);
        check(!requests.some((r) => r.includes(carol.password)), "the password left the page");
        check(c.page.url().endsWith("/demo/"), `Amplify navigated away: ${c.page.url()}`);
        const stored = await c.page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
        check(!/eyJ/.test(stored), `a token in web storage: ${stored}`);
        const text = `carol via Amplify (${nonce})`;
        await send(c.page, text);
        await waitForText(a.page, "#messages li.message", text, "alice's page");
        await whoami(c.page, carol, { "aws.cognito.signin.user.admin": true, "chat/announce": false });
        await shot(c.page, "08-amplify-chatting.png");
      });

      await step("carol signs out: Amplify revokes the refresh token, the gateway closes with 1008", async () => {
        await c.page.locator("#sign-out").click();
        await waitForStatus(c.page, "signed-out", "1008");
      });
    } else {
      log("CAROL_PASSWORD not set: the Amplify steps are skipped");
    }

    const backendPid = Number(process.env.BACKEND_PID || 0);
    const gatewayPid = Number(process.env.GATEWAY_PID || 0);
    // What the browser logs while the backend or the gateway is gone, and nothing else.
    const outageErrors = /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed|status of 5\d\d/;
    if (backendPid && gatewayPid) {

      await step("the backend stops: the page says the backend is not answering", async () => {
        process.kill(backendPid, "SIGTERM");
        // The gateway cannot deliver the next message; the page asks /api/health why.
        await send(a.page, `anyone there? (${nonce})`);
        await waitForText(a.page, "#alert", "the chat backend is not answering", "alice's alert");
        await shot(a.page, "06-backend-down.png");
      }, { expectConsoleErrors: outageErrors });

      await step("the gateway stops: the page says Portcullis is not reachable and retries", async () => {
        process.kill(gatewayPid, "SIGTERM");
        await waitForText(a.page, "#alert", "Portcullis is not reachable", "alice's alert");
        await waitForStatus(a.page, "closed", "Reconnecting in");
        await shot(a.page, "07-gateway-down.png");
      }, { expectConsoleErrors: outageErrors });
    } else {
      log("BACKEND_PID / GATEWAY_PID not set: the outage steps are skipped");
    }

    await step("no CSP violations, no script errors, no console errors", async () => {
      check(cspViolations.length === 0, `CSP violations:\n${cspViolations.join("\n")}`);
    }, { expectConsoleErrors: outageErrors });
  } catch (err) {
    await reportFailure(err);
    throw err;
  } finally {
    await browser.close().catch(() => {});
  }
}

await runMain(main, "console.log");
