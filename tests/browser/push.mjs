// Pushes to users and rooms in a real, headless Chromium: the chat page (web/chat) against
// examples/demo.toml and the demo backend, as tests/python/test_browser_push.py starts them.
// At each `PHASE <name> [arg]` line it prints, the script waits for "go" on stdin once the test
// has checked or done something through the management API (SigV4, botocore). Exits 0 when
// every step passed.
//
// Four tabs: alice (token in memory: a WebSocket), bob twice (one tab with the token in memory:
// a WebSocket; one with the cookie session: a WebSocket and the notifications' Server-Sent
// Events stream) and carol (cookie session). Environment as chat.mjs, plus CAROL_USERNAME /
// CAROL_PASSWORD. No step asserts on timing: every wait is for a condition.

import readline from "node:readline";

import {
  TIMEOUT,
  check,
  countText,
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
  waitForText,
} from "./driver.mjs";

const user = (name) => ({
  name,
  username: process.env[`${name.toUpperCase()}_USERNAME`] || name,
  password: process.env[`${name.toUpperCase()}_PASSWORD`] || "",
});
const alice = user("alice");
const bob = user("bob");
const carol = user("carol");

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Tells the test what the pages reached, then waits until the test has checked or acted. */
async function phase(name, arg = "") {
  console.log(`PHASE ${name}${arg ? ` ${arg}` : ""}`);
  const { value, done } = await lines.next();
  if (done || value.trim() !== "go") throw new Error(`the test did not continue after ${name}`);
}

async function notificationsLive(page, who) {
  try {
    await page.locator('#notifications-status[data-state="live"]').waitFor({ timeout: TIMEOUT });
  } catch {
    const status = await page.locator("#notifications-status").innerText().catch(() => "?");
    throw new Error(`${who}'s notifications never went live: ${status}`);
  }
}

/** Sends `/join ROOM` and waits for the page to say it is in the room. */
async function join(page, room, who) {
  await send(page, `/join ${room}`);
  await waitForText(page, "#room", `#${room}`, `${who}'s room`);
}

async function main() {
  for (const u of [alice, bob, carol]) check(u.password, `${u.name.toUpperCase()}_PASSWORD must be set`);
  const browser = await launch();
  try {
    const a = await newPage(browser, "alice");
    const bw = await newPage(browser, "bob-websocket");
    const bs = await newPage(browser, "bob-sse");
    const c = await newPage(browser, "carol");

    await step("everyone signs in; the cookie-session tabs open their notifications stream", async () => {
      for (const [tab, u, mode] of [[a, alice, "token"], [bw, bob, "token"], [bs, bob, "cookie"], [c, carol, "cookie"]]) {
        await openSignedOut(tab.page);
        await signIn(tab.page, u, { mode, announce: u === alice });
      }
      await notificationsLive(bs.page, "bob's cookie tab");
      await notificationsLive(c.page, "carol's tab");
      const tokenTab = await bw.page.locator("#notifications-status").innerText();
      check(/cookie session/.test(tokenTab), `the token tab does not say why it has no stream: ${tokenTab}`);
    });

    await phase("signed-in"); // the test lists bob's and carol's connections through @users

    const inRust = `only for #rust (${nonce})`;
    const inLobby = `for the lobby (${nonce})`;
    await step("a room's message reaches its members only", async () => {
      await join(bw.page, "rust", "bob's token tab");
      await join(c.page, "rust", "carol");
      await waitForText(bw.page, "#messages li.system", "carol joined #rust", "bob's token tab");
      await send(c.page, inRust);
      await waitForText(c.page, "#messages li.message", inRust, "carol's own page");
      await waitForText(bw.page, "#messages li.message", inRust, "bob's token tab (a member)");
      // Delivery to each receiver is in publish order: once the lobby message published after
      // it is there, the room's message would have come first to a member.
      await send(a.page, inLobby);
      for (const [tab, who] of [[a, "alice"], [bw, "bob's token tab"], [bs, "bob's cookie tab"], [c, "carol"]]) {
        await waitForText(tab.page, "#messages li.message", inLobby, who);
      }
      check((await countText(a.page, "#messages li", inRust)) === 0, "alice (not in #rust) got #rust's message");
      check((await countText(bs.page, "#messages li", inRust)) === 0, "bob's cookie tab (not in #rust) got #rust's message");
      await shot(bw.page, "push-1-room.png");
    });

    const direct = `psst bob (${nonce})`;
    const forCarol = `and you, carol (${nonce})`;
    await step("a direct message reaches bob's tabs only: the WebSocket one and the notifications stream", async () => {
      await send(a.page, `/msg bob ${direct}`);
      // alice's receipt: bob's two WebSockets and his one stream
      await waitForText(a.page, "#messages li.direct", "delivered to 3 connections", "alice's receipt");
      await waitForText(bw.page, "#messages li.direct", direct, "bob's token tab (WebSocket)");
      await waitForText(bs.page, "#notifications li.direct", direct, "bob's notifications (Server-Sent Events)");
      await waitForText(bs.page, "#notifications li.direct", "Direct message from alice", "bob's notifications");
      await send(a.page, `/msg carol ${forCarol}`);
      await waitForText(c.page, "#notifications li.direct", forCarol, "carol's notifications");
      await waitForText(c.page, "#messages li.direct", forCarol, "carol's chat");
      check((await countText(c.page, "li", direct)) === 0, "carol got bob's direct message");
      check((await countText(a.page, "#messages li", "alice → you")) === 0, "alice got her own direct message back");
      await shot(bs.page, "push-2-direct.png");
    });

    const announcement = `notifications work (${nonce})`;
    await step("an announcement reaches the notifications streams too (the topic announcements)", async () => {
      await send(a.page, announcement, "#announce");
      await waitForText(bs.page, "#notifications li.announcement", announcement, "bob's notifications");
      await waitForText(c.page, "#notifications li.announcement", announcement, "carol's notifications");
      await waitForText(bw.page, "#messages li.announcement", announcement, "bob's token tab");
    });

    const missed = `sent while you were away (${nonce})`;
    await step("a stream that reconnects with Last-Event-ID gets what it missed", async () => {
      const status = bs.page.locator("#notifications-status");
      const streamId = await status.getAttribute("data-connection-id");
      check(streamId, "bob's notifications stream shows no connection id");
      const lastSeen = await bs.page.locator("#notifications li").first().getAttribute("data-event-id");
      check(lastSeen, "bob's last notification has no event id");
      // EventSource comes back by itself, with the id of the last event it saw. Its attempts
      // are refused (as by a network that is down) until alice has sent, so that the message
      // can only arrive by replay.
      let refusing = true;
      const refused = new Promise((resolve) => {
        bs.page.route("**/chat/events**", (route) => {
          resolve();
          return route.abort("connectionrefused");
        });
      });
      const resumed = new Promise((resolve) => {
        bs.page.on("request", async (request) => {
          if (refusing || !request.url().includes("/chat/events")) return;
          resolve((await request.allHeaders())["last-event-id"] || "");
        });
      });
      await phase("drop-stream", streamId); // the test closes it: DELETE @connections/{id}
      await refused;
      await send(a.page, `/msg bob ${missed}`);
      // bob's two WebSockets only: the stream is away
      await waitForText(a.page, "#messages li.direct", "delivered to 2 connections", "alice's receipt");
      await waitForText(bw.page, "#messages li.direct", missed, "bob's token tab");
      await bs.page.unroute("**/chat/events**");
      refusing = false;
      const resumedFrom = await resumed;
      check(resumedFrom === lastSeen, `EventSource resumed from ${JSON.stringify(resumedFrom)}, not ${lastSeen}`);
      await waitForText(bs.page, "#notifications li.direct", missed, "bob's notifications after the reconnection");
      await notificationsLive(bs.page, "bob's cookie tab");
      check((await countText(bs.page, "#notifications li", direct)) === 1, "the replay repeated an event the stream had seen");
      await shot(bs.page, "push-3-replayed.png");
    }, { expectConsoleErrors: /ERR_CONNECTION_REFUSED/ });

    await step("carol signs out: the gateway ends her stream, and the page does not ask again", async () => {
      await c.page.locator("#sign-out").click();
      await waitForText(c.page, "#status", "Signed out", "carol's status");
      check(
        (await c.page.locator("#notifications-status").getAttribute("data-connection-id")) === null,
        "carol's page still holds a notifications stream",
      );
    });
  } catch (err) {
    await reportFailure(err);
    throw err;
  } finally {
    await browser.close().catch(() => {});
  }
}

await runMain(main, "push-console.log");
