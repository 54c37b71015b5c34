// Portcullis Node.js bootstrap: runs an unchanged AWS Lambda handler against the Lambda Runtime
// API at AWS_LAMBDA_RUNTIME_API. Node standard library only.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const PREFIX = "/2018-06-01/runtime";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port: Number(port), method, path: PREFIX + urlPath, headers, agent },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorBody(error) {
  const errorType = (error && error.name) || "Error";
  const errorMessage = error && error.message !== undefined ? String(error.message) : String(error);
  const stackTrace = error && error.stack ? String(error.stack).split("\n") : [];
  return { errorType, body: JSON.stringify({ errorType, errorMessage, trace: stackTrace }) };
}

async function postError(urlPath, error) {
  const { errorType, body } = errorBody(error);
  await request("POST", urlPath, body, {
    "Content-Type": "application/json",
    "Lambda-Runtime-Function-Error-Type": errorType,
  });
}

async function loadHandler() {
  const spec = process.env._HANDLER || "";
  const dot = spec.lastIndexOf(".");
  const modulePath = spec.slice(0, dot);
  const exportName = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const base = path.resolve(root, modulePath);
  const file = [".js", ".mjs", ".cjs"].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!file) {
    const e = new Error(`Cannot find module '${modulePath}'`);
    e.name = "Runtime.ImportModuleError";
    throw e;
  }
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    console.error(err && err.stack ? err.stack : String(err));
    const e = new Error(`${err && err.name}: ${err && err.message}`);
    e.name = err instanceof SyntaxError ? "Runtime.UserCodeSyntaxError" : "Runtime.ImportModuleError";
    throw e;
  }
  const handler = mod[exportName] ?? (mod.default && mod.default[exportName]);
  if (typeof handler !== "function") {
    const e = new Error(`${modulePath}.${exportName} is undefined or not exported`);
    e.name = "Runtime.HandlerNotFound";
    throw e;
  }
  return handler;
}

function context(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
  if (headers["lambda-runtime-trace-id"]) process.env._X_AMZN_TRACE_ID = headers["lambda-runtime-trace-id"];
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
}

function run(handler, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, value) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(value);
    };
    try {
      const out = handler(event, ctx, callback);
      if (out && typeof out.then === "function") out.then((v) => callback(null, v), (e) => callback(e ?? new Error("rejected")));
      else if (handler.length < 3) callback(null, out);
    } catch (e) {
      callback(e);
    }
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (e) {
    console.error(`[ERROR] ${e.name}: ${e.message}`);
    await postError("/init/error", e);
    process.exit(1);
  }
  for (;;) {
    const next = await request("GET", "/invocation/next");
    if (next.status !== 200) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const ctx = context(next.headers);
    const id = ctx.awsRequestId;
    try {
      const event = next.body.length ? JSON.parse(next.body.toString("utf8")) : null;
      const result = await run(handler, event, ctx);
      const body = JSON.stringify(result === undefined ? null : result);
      await request("POST", `/invocation/${id}/response`, body, { "Content-Type": "application/json" });
    } catch (e) {
      console.error(e && e.stack ? e.stack : String(e));
      await postError(`/invocation/${id}/error`, e);
    }
  }
}

main();
