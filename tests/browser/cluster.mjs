// The chat page against three Portcullis nodes behind a round-robin (not sticky) nginx:
// tests/python/test_cluster_lb.py starts the cluster, the demo backend and nginx, creates the
// users and runs this script, which exits 0 when every step passed. Every request the page makes
// may land on another node: the hosted sign-in page, the form post, the token exchange, the
// cookie session, the WebSocket and the SSE stream.
//
// Environment: PORTCULLIS_URL (nginx), ALICE_USERNAME / ALICE_PASSWORD, BOB_USERNAME /
// BOB_PASSWORD, CHROMIUM_PATH, BROWSER_ARTIFACTS, BROWSER_TIMEOUT_MS (default 30000).
// No step asserts on timing: every wait is for a condition, with a generous timeout.

import {
  launch,
  newPage,
  nonce,
  openSignedOut,
  reportFailure,
  runMain,
  send,
  shot,
  signIn,
  step,
  waitForStatus,
  waitForText,
} from "./driver.mjs";

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

async function main() {
  const browser = await launch();
  try {
    const a = await newPage(browser, "alice");
    const b = await newPage(browser, "bob");

    await step("alice signs in through the balancer, token in memory", async () => {
      await openSignedOut(a.page);
      await signIn(a.page, alice, { mode: "token", announce: false });
      await shot(a.page, "cluster-1-alice-signed-in.png");
    });

    await step("bob signs in through the balancer with the HttpOnly cookie session", async () => {
      await openSignedOut(b.page);
      await signIn(b.page, bob, { mode: "cookie", announce: false });
    });

    await step("the backend announces bob to alice, wherever their sockets are", async () => {
      await waitForText(a.page, "#messages li.system", `${bob.username} joined`, "alice's page");
    });

    const fromAlice = `hello bob, across nodes (${nonce})`;
    const fromBob = `hi alice, across nodes (${nonce})`;
    await step("alice → bob", async () => {
      await send(a.page, fromAlice);
      await waitForText(b.page, "#messages li.message", fromAlice, "bob's page");
    });

    await step("bob → alice", async () => {
      await send(b.page, fromBob);
      await waitForText(a.page, "#messages li.message", fromBob, "alice's page");
    });

    await step("bob reloads: the cookie session resumes on whichever node answers", async () => {
      await b.page.reload();
      await waitForStatus(b.page, "connected", bob.username);
      const again = `again (${nonce})`;
      await send(a.page, again);
      await waitForText(b.page, "#messages li.message", again, "bob's page after the reload");
      await shot(b.page, "cluster-2-chatting.png");
    });
  } catch (err) {
    await reportFailure(err);
    throw err;
  } finally {
    await browser.close();
  }
}

await runMain(main, "cluster-console.log");
