import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { HelperError, HelperErrorCode } from './helper-error.js';

export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. "/job". */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Date.now() when the whole body had arrived. */
  receivedAt: number;
  /** Distinct per TCP connection (1, 2, …), so tests can assert keep-alive reuse. */
  socketId: number;
  /** Subject CN of the client certificate an https endpoint verified, else null. */
  clientCertificate: string | null;
}

/** An https endpoint: its certificate, and for mutual TLS the CA its clients' certificates must chain to. */
export interface EndpointTls {
  key: string;
  cert: string;
  /** Set: clients must present a certificate signed by this CA (the handshake fails otherwise). */
  clientCa?: string;
}

export interface EndpointAnswer {
  /** Default 200. */
  status?: number;
  /** An object is sent as JSON (with Content-Type application/json unless `headers` sets one). */
  body?: string | Buffer | object;
  headers?: Record<string, string>;
  /** Wait this long before answering (the request is recorded at once). */
  delayMs?: number;
  /** Reset the connection (TCP RST) instead of answering. */
  destroy?: boolean;
  /**
   * Stream the body instead (chunked, Content-Type application/x-ndjson unless `headers` sets one): each
   * piece is written once its delay has passed and its `after` promise has settled. An object is written
   * as one JSON line; `reset` resets the connection at that point instead of finishing the body. A
   * generator streams as fast as the client reads: the next piece is asked for once the last one was
   * taken by the socket (backpressure is honoured, so the generator's pace shows the client's).
   */
  stream?: Iterable<StreamPiece>;
}

export type StreamPiece = { data: string | Buffer | object; delayMs?: number; after?: Promise<unknown> } | { reset: true; delayMs?: number; after?: Promise<unknown> };

export type EndpointHandler = (req: RecordedRequest) => EndpointAnswer | Promise<EndpointAnswer>;

export interface Endpoint {
  /** http://127.0.0.1:port/job (https:// with the `tls` option) */
  url: string;
  port: number;
  /** Every request in arrival order (recorded before the handler runs). */
  requests: RecordedRequest[];
  setHandler(handler: EndpointHandler): void;
  /** Total TCP connections accepted since start. */
  connections(): number;
  /** TLS handshakes that failed, with the server-side error code (https endpoints only). */
  tlsErrors: string[];
  /**
   * Stops listening, resets every open connection, cancels pending delayed answers. Idempotent. A
   * later startEndpoint(handler, { port }) brings the endpoint back on the same address.
   */
  close(): Promise<void>;
}

export interface MultipartPart {
  /** From Content-Disposition's name parameter. */
  name: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  data: Buffer;
}

/** The JSON body the HTTP contract describes (docs/http-contract.md), plus the workload bytes decoded. */
export interface JsonJob {
  function_name: string;
  job_handle: string;
  unique: string;
  workload: string;
  workload_encoding?: 'base64';
  /** Present when the unique's bytes are not UTF-8: `unique` is then their base64. */
  unique_encoding?: 'base64';
  /** Present when the function name's bytes are not UTF-8: `function_name` is then their base64. */
  function_name_encoding?: 'base64';
  /** `workload` as bytes: base64-decoded when workload_encoding says so, else its UTF-8 bytes. */
  workloadBytes: Buffer;
  /** `unique` as bytes, the same way. */
  uniqueBytes: Buffer;
  /** `function_name` as bytes, the same way. */
  functionNameBytes: Buffer;
}

/** What the daemon's endpoints answer when all is well. */
export const DEFAULT_ANSWER: EndpointAnswer = { body: { gearman_ret: 0, response_string: 'ok' } };

const defaultHandler: EndpointHandler = () => DEFAULT_ANSWER;

/**
 * A real HTTP server on 127.0.0.1 with a free port that records every request and answers as the
 * handler scripts. Always pair with `t.after(() => endpoint.close())`.
 */
export function startEndpoint(handler: EndpointHandler = defaultHandler, options: { port?: number; tls?: EndpointTls } = {}): Promise<Endpoint> {
  let current = handler;
  let accepted = 0;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const socketIds = new WeakMap<Socket, number>();
  const pendingAnswers = new Set<NodeJS.Timeout>();
  let closing: Promise<void> | undefined;

  const tlsErrors: string[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void onRequest(req, res);
  };
  const tls = options.tls;
  const server =
    tls === undefined
      ? createServer(listener)
      : createHttpsServer({ key: tls.key, cert: tls.cert, ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }) }, listener);
  server.on('tlsClientError', (error: NodeJS.ErrnoException) => tlsErrors.push(error.code ?? error.message));
  // Requests of an https endpoint arrive on the TLS socket wrapped around the counted TCP one.
  server.on('secureConnection', (socket: Socket) => socketIds.set(socket, accepted));
  server.on('connection', (socket: Socket) => {
    accepted++;
    socketIds.set(socket, accepted);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return; // The client went away mid-body: there is no one to answer.
    }
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks),
      receivedAt: Date.now(),
      socketId: socketIds.get(req.socket) ?? 0,
      clientCertificate: clientCertificateOf(req),
    };
    requests.push(recorded);

    let answer: EndpointAnswer;
    try {
      answer = await current(recorded);
    } catch (err) {
      // A throwing handler is a bug in the test; answer loudly rather than hang the daemon under test.
      answer = { status: 500, body: `endpoint handler threw: ${err instanceof Error ? err.stack : String(err)}` };
    }
    if (answer.delayMs !== undefined && answer.delayMs > 0) {
      const ms = answer.delayMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          pendingAnswers.delete(timer);
          resolve();
        }, ms);
        pendingAnswers.add(timer);
      });
    }
    if (closing !== undefined || req.socket.destroyed) return;
    if (answer.destroy === true) {
      req.socket.resetAndDestroy();
      return;
    }
    if (answer.stream !== undefined) {
      await sendStream(req, res, answer, answer.stream, pause);
      return;
    }
    send(res, answer);
  }

  /** Waits `ms`, cancelled (never resolving) by close(), like a delayed answer. */
  function pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        pendingAnswers.delete(timer);
        resolve();
      }, ms);
      pendingAnswers.add(timer);
    });
  }

  async function sendStream(req: IncomingMessage, res: ServerResponse, answer: EndpointAnswer, pieces: Iterable<StreamPiece>, wait: (ms: number) => Promise<void>): Promise<void> {
    const headers: Record<string, string> = { ...answer.headers };
    if (!Object.keys(headers).some((key) => key.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/x-ndjson';
    res.writeHead(answer.status ?? 200, headers);
    // Headers go out now, before the first piece: the client sees a response that is still running.
    res.flushHeaders();
    for (const piece of pieces) {
      if (piece.delayMs !== undefined && piece.delayMs > 0) await wait(piece.delayMs);
      if (piece.after !== undefined) await piece.after.catch(() => undefined);
      if (closing !== undefined || req.socket.destroyed) return;
      if ('reset' in piece) {
        req.socket.resetAndDestroy();
        return;
      }
      const data = piece.data;
      if (!res.write(typeof data === 'string' || Buffer.isBuffer(data) ? data : `${JSON.stringify(data)}\n`)) await drained(res);
    }
    if (closing !== undefined || req.socket.destroyed) return;
    res.end();
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // A given port restarts a stopped endpoint on the address the daemon already posts to.
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`startEndpoint: unexpected listen address ${String(address)}`));
        return;
      }
      const { port } = address;
      resolve({
        url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}/job`,
        port,
        requests,
        tlsErrors,
        setHandler(next: EndpointHandler): void {
          current = next;
        },
        connections: () => accepted,
        close(): Promise<void> {
          closing ??= new Promise<void>((done) => {
            for (const timer of pendingAnswers) clearTimeout(timer);
            pendingAnswers.clear();
            server.close(() => done());
            // server.close() waits for keep-alive connections to go idle; a test's teardown must not.
            for (const socket of sockets) socket.destroy();
          });
          return closing;
        },
      });
    });
  });
}

/** Resolves when `res` can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function clientCertificateOf(req: IncomingMessage): string | null {
  const socket = req.socket as Socket & { getPeerCertificate?: () => { subject?: { CN?: string } } | null; authorized?: boolean };
  if (socket.getPeerCertificate === undefined || socket.authorized !== true) return null;
  return socket.getPeerCertificate()?.subject?.CN ?? null;
}

function send(res: ServerResponse, answer: EndpointAnswer): void {
  const headers: Record<string, string> = { ...answer.headers };
  const hasHeader = (name: string): boolean => Object.keys(headers).some((key) => key.toLowerCase() === name);
  let body: Buffer;
  if (answer.body === undefined) {
    body = Buffer.alloc(0);
  } else if (typeof answer.body === 'string') {
    body = Buffer.from(answer.body, 'utf8');
    if (!hasHeader('content-type')) headers['Content-Type'] = 'text/plain; charset=utf-8';
  } else if (Buffer.isBuffer(answer.body)) {
    body = answer.body;
    if (!hasHeader('content-type')) headers['Content-Type'] = 'application/octet-stream';
  } else {
    body = Buffer.from(JSON.stringify(answer.body), 'utf8');
    if (!hasHeader('content-type')) headers['Content-Type'] = 'application/json';
  }
  if (!hasHeader('content-length')) headers['Content-Length'] = String(body.length);
  res.writeHead(answer.status ?? 200, headers);
  res.end(body);
}

/**
 * Splits a multipart/form-data body (RFC 7578 / RFC 2046 §5.1) into its parts, byte for byte: part data
 * is sliced from `body`, never decoded, so NUL bytes and invalid UTF-8 come back unchanged. Throws a
 * HelperError (code HELPER_MULTIPART) on any framing fault, since tests use it to check the daemon's format.
 */
export function parseMultipart(body: Buffer, contentType: string): MultipartPart[] {
  const fail = (why: string): never => {
    throw new HelperError(HelperErrorCode.MULTIPART, `parseMultipart: ${why}`);
  };
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType)) fail(`not multipart/form-data: ${contentType}`);
  const boundaryMatch = /;\s*boundary=(?:"([^"]+)"|([^\s;]+))/i.exec(contentType);
  const boundary = boundaryMatch?.[1] ?? boundaryMatch?.[2] ?? fail(`no boundary in ${contentType}`);

  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  const headerEnd = Buffer.from('\r\n\r\n', 'latin1');

  // The first boundary may open the body (no CRLF before it) or follow a preamble.
  let pos: number;
  if (body.subarray(0, dashBoundary.length).equals(dashBoundary)) {
    pos = dashBoundary.length;
  } else {
    const first = body.indexOf(delimiter);
    if (first === -1) fail('no opening boundary');
    pos = first + delimiter.length;
  }

  const parts: MultipartPart[] = [];
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // "--": the close delimiter
    // RFC 2046 allows linear whitespace after a boundary before its CRLF.
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) fail(`expected CRLF after boundary at offset ${pos}`);
    pos += 2;

    const headersEnd = body.indexOf(headerEnd, pos);
    if (headersEnd === -1) fail(`part ${parts.length} has no end of headers`);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(pos, headersEnd).toString('utf8').split('\r\n')) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      if (colon <= 0) fail(`part ${parts.length} has a malformed header line ${JSON.stringify(line)}`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const disposition = headers['content-disposition'] ?? fail(`part ${parts.length} has no Content-Disposition`);
    const nameMatch = /;\s*name=(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))/i.exec(disposition);
    const name =
      nameMatch?.[1]?.replace(/\\(.)/g, '$1') ?? nameMatch?.[2] ?? fail(`part ${parts.length} has no name: ${disposition}`);

    const dataStart = headersEnd + headerEnd.length;
    const dataEnd = body.indexOf(delimiter, dataStart);
    if (dataEnd === -1) fail(`part ${JSON.stringify(name)} is not closed by a boundary`);
    parts.push({ name, headers, data: body.subarray(dataStart, dataEnd) });
    pos = dataEnd + delimiter.length;
  }
}

const ENCODED_KEYS = ['function_name', 'unique', 'workload'] as const;
const JSON_JOB_KEYS = new Set(['function_name', 'job_handle', 'unique', 'workload', ...ENCODED_KEYS.map((key) => `${key}_encoding`)]);

/**
 * Parses and checks a JSON job body (docs/http-contract.md) strictly: the four string fields, an optional
 * `"<field>_encoding":"base64"` for function_name, unique and workload, nothing else. Throws a
 * HelperError (code HELPER_JSON_JOB) otherwise.
 */
export function parseJsonJob(body: Buffer | string): JsonJob {
  const fail = (why: string): never => {
    throw new HelperError(HelperErrorCode.JSON_JOB, `parseJsonJob: ${why}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    fail(`not JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('not a JSON object');
  const job = value as Record<string, unknown>;
  for (const key of Object.keys(job)) if (!JSON_JOB_KEYS.has(key)) fail(`unexpected key ${JSON.stringify(key)}`);
  const str = (key: string): string => {
    const field = job[key];
    return typeof field === 'string' ? field : fail(`${key} is ${JSON.stringify(field)}, expected a string`);
  };
  const parsed: JsonJob = {
    function_name: str('function_name'),
    job_handle: str('job_handle'),
    unique: str('unique'),
    workload: str('workload'),
    workloadBytes: Buffer.alloc(0),
    uniqueBytes: Buffer.alloc(0),
    functionNameBytes: Buffer.alloc(0),
  };
  const bytesOf = (key: (typeof ENCODED_KEYS)[number]): Buffer => {
    const encodingKey = `${key}_encoding` as const;
    if (!(encodingKey in job)) return Buffer.from(parsed[key], 'utf8');
    if (job[encodingKey] !== 'base64') fail(`${encodingKey} is ${JSON.stringify(job[encodingKey])}, expected "base64"`);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(parsed[key]) || parsed[key].length % 4 !== 0) fail(`${key} is not canonical base64`);
    parsed[encodingKey] = 'base64';
    return Buffer.from(parsed[key], 'base64');
  };
  parsed.workloadBytes = bytesOf('workload');
  parsed.uniqueBytes = bytesOf('unique');
  parsed.functionNameBytes = bytesOf('function_name');
  return parsed;
}
