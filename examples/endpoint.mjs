#!/usr/bin/env node
// A small, real job endpoint for driveshaft, in plain Node (no dependencies). It answers the contract
// in docs/http-contract.md: driveshaft POSTs one job, the endpoint answers
// {"gearman_ret": 0, "response_string": "..."} for success, any other gearman_ret for failure.
//
//   node examples/endpoint.mjs                 listens on 127.0.0.1:8080, path /job
//   PORT=9000 HOST=0.0.0.0 node examples/endpoint.mjs
//
// Functions (the seed's Sum family plus a few to show the other outcomes):
//   Sum        workload a JSON array of numbers   → their sum          ("[1,2]" → "3")
//   Sum2       workload a JSON array of numbers   → sum of squares     ("[1,2]" → "5")
//   Sum3       workload a JSON array of numbers   → sum of cubes       ("[1,2]" → "9")
//   ShopStats  workload a shop id                 → a JSON string of made-up stats
//   Newsfeed   workload a user name               → "newsfeed for <user>: 3 new items"
//   Sleep      workload seconds (≤ 60)            → waits, then "slept <n> s" (to watch `threads`)
//   Fail       anything                           → gearman_ret 1: the job fails on purpose
// Anything else (unknown function, bad workload) fails with gearman_ret 1 and a reason.
//
// It reads both request formats: JSON (driveshaft's default) and multipart/form-data (pools with
// "request_format": "multipart", i.e. endpoints written for the original C++ Driveshaft).
//
// Signed requests (docs/security.md): with SIGNING_SECRETS set to the pool's whsec_ secrets
// (separated by spaces), every POST must carry a valid Standard Webhooks signature made within the
// last 5 minutes, or it is answered 401 (driveshaft fails the job: the endpoint answered).
//   SIGNING_SECRETS="$(cat /etc/driveshaft/regular.whsec)" node examples/endpoint.mjs
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 8080);
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_SLEEP_SECONDS = 60;
/** Signatures older or newer than this are refused: a captured request cannot be replayed later. */
const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;
const SIGNING_KEYS = (process.env.SIGNING_SECRETS ?? '')
  .split(/\s+/)
  .filter((secret) => secret !== '')
  .map((secret) => Buffer.from(secret.replace(/^whsec_/, ''), 'base64'));

/**
 * Why the request's signature is not valid, or null when it is (or when no secret is configured).
 * The HMAC covers `<webhook-id>.<webhook-timestamp>.<body>`, over the body's raw bytes: parse the
 * JSON only after this, never re-serialise it first.
 */
function signatureProblem(headers, body) {
  if (SIGNING_KEYS.length === 0) return null;
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures) return 'the request is not signed';
  if (!/^[0-9]+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) {
    return 'webhook-timestamp is not within 5 minutes of this host\'s clock';
  }
  // One "v1,<base64>" per secret driveshaft signs with (two while a secret is being rotated).
  const given = signatures
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  for (const key of SIGNING_KEYS) {
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
    if (given.some((signature) => signature.length === expected.length && timingSafeEqual(signature, expected))) return null;
  }
  return 'no signature matches the configured secrets';
}

/** A job failure the caller should see as gearman_ret 1 with this message. */
class JobError extends Error {}

function numbers(workload) {
  let value;
  try {
    value = JSON.parse(workload);
  } catch {
    throw new JobError(`workload is not JSON: ${JSON.stringify(workload.slice(0, 80))}`);
  }
  if (!Array.isArray(value) || !value.every((n) => typeof n === 'number' && Number.isFinite(n))) {
    throw new JobError('workload must be a JSON array of numbers, e.g. [1,2]');
  }
  return value;
}

const sumOfPowers = (power) => (workload) => String(numbers(workload).reduce((sum, n) => sum + n ** power, 0));

/** A stable made-up number, so the same shop always gets the same stats. */
function hash(text) {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.codePointAt(0), 16777619) >>> 0;
  return h;
}

const FUNCTIONS = {
  Sum: sumOfPowers(1),
  Sum2: sumOfPowers(2),
  Sum3: sumOfPowers(3),
  ShopStats: (workload) => {
    const shop = workload.trim() || 'unknown';
    return JSON.stringify({ shop, orders: hash(shop) % 1000, visits: hash(`${shop}/visits`) % 100000 });
  },
  Newsfeed: (workload) => `newsfeed for ${workload.trim() || 'nobody'}: ${hash(workload) % 10} new items`,
  Sleep: async (workload) => {
    const seconds = Number(workload);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SLEEP_SECONDS) {
      throw new JobError(`workload must be a number of seconds from 0 to ${MAX_SLEEP_SECONDS}`);
    }
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    return `slept ${seconds} s`;
  },
  Fail: () => {
    throw new JobError('failed on purpose');
  },
};

/**
 * The job fields from either request format; `workload` as a string (this demo's jobs are text), `unique`
 * as its exact bytes (a Buffer: the idempotency key; compare bytes, e.g. unique.toString('hex') as a key).
 */
async function readJob(req, body) {
  const type = req.headers['content-type'] ?? '';
  if (/^multipart\/form-data/i.test(type)) {
    // Node's fetch Response parses multipart/form-data, so no dependency is needed for the old format.
    // It decodes fields as UTF-8: a unique that is not UTF-8 loses bytes here (JSON keeps them).
    const form = await new Response(body, { headers: { 'content-type': type } }).formData();
    const field = (name) => {
      const value = form.get(name);
      return value === null ? '' : typeof value === 'string' ? value : '';
    };
    return { function_name: field('function_name'), job_handle: field('job_handle'), unique: Buffer.from(field('unique')), workload: field('workload') };
  }
  const job = JSON.parse(body.toString('utf8'));
  // A field whose bytes are not valid UTF-8 (workload, unique, function_name) arrives base64-encoded,
  // with "<field>_encoding": "base64" (docs/http-contract.md#exact-bytes).
  const bytes = (field) => Buffer.from(String(job[field] ?? ''), job[`${field}_encoding`] === 'base64' ? 'base64' : 'utf8');
  return { function_name: bytes('function_name').toString(), job_handle: job.job_handle, unique: bytes('unique'), workload: bytes('workload').toString() };
}

function answer(res, gearmanRet, responseString) {
  const body = JSON.stringify({ gearman_ret: gearmanRet, response_string: responseString });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function handle(req, res) {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' });
    res.end('POST a job here\n');
    return;
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      res.writeHead(413, { connection: 'close' });
      res.end();
      return;
    }
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  const unsigned = signatureProblem(req.headers, body);
  if (unsigned !== null) {
    res.writeHead(401, { 'content-type': 'text/plain' });
    res.end(`${unsigned}\n`);
    console.log(`${new Date().toISOString()} refused a request: ${unsigned}`);
    return;
  }
  let job;
  try {
    job = await readJob(req, body);
  } catch (error) {
    // A non-200 answer makes driveshaft fail the job and log this status.
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`cannot read the job: ${error.message}\n`);
    return;
  }
  const run = FUNCTIONS[job.function_name];
  const started = Date.now();
  let gearmanRet = 0;
  let result;
  try {
    if (run === undefined) throw new JobError(`unknown function ${JSON.stringify(job.function_name)}`);
    result = await run(String(job.workload ?? ''));
  } catch (error) {
    if (!(error instanceof JobError)) console.error(error);
    gearmanRet = 1;
    result = error.message;
  }
  console.log(
    `${new Date().toISOString()} ${job.function_name} ${job.job_handle} ${JSON.stringify(String(job.workload).slice(0, 60))}` +
      ` → gearman_ret ${gearmanRet} ${JSON.stringify(result)} (${Date.now() - started} ms)`,
  );
  answer(res, gearmanRet, result);
}

const server = createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
// driveshaft keeps connections alive between jobs; keep them open longer than Node's 5 s default so an
// idle pool does not reconnect after every pause.
server.keepAliveTimeout = 60_000;
server.listen(PORT, HOST, () => {
  const { address, port } = server.address();
  const host = address.includes(':') ? `[${address}]` : address;
  const signing = SIGNING_KEYS.length === 0 ? 'unsigned requests accepted' : `signatures required (${SIGNING_KEYS.length} secret${SIGNING_KEYS.length === 1 ? '' : 's'})`;
  console.log(`job endpoint listening on http://${host}:${port}/job (functions: ${Object.keys(FUNCTIONS).join(', ')}; ${signing})`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
  });
}
