/**
 * Request/reply over one child's IPC channel (docs/architecture.md, IPC): every request gets a `seq`, its reply
 * carries the same number as `ack`, and every request has a timeout, so a stuck child shows up as a
 * rejected promise instead of a caller waiting forever. Messages without an `ack` (log records) go to
 * the unsolicited handler. The channel knows nothing about what the messages mean.
 */
import { IpcError } from '../errors.js';
import { NOTICE_TYPE_SET, REPLY_TYPES } from '../ipc/messages.js';
import type { ChildNotice, ChildReply, ChildToMaster, MasterRequest, MasterToChild } from '../ipc/messages.js';

/** What the channel needs from a cluster Worker (or a child_process.ChildProcess, in tests). */
export interface IpcEndpoint {
  send(message: unknown, callback?: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

interface Pending {
  type: string;
  resolve(reply: ChildReply): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Shape check only: a child is our own code, but a bug there must not throw in the master. */
export function isChildMessage(message: unknown): message is ChildToMaster {
  if (typeof message !== 'object' || message === null) return false;
  const { type, ack, record } = message as { type?: unknown; ack?: unknown; record?: unknown };
  if (type === 'log') return typeof record === 'object' && record !== null;
  if (typeof type !== 'string') return false;
  if (NOTICE_TYPE_SET.has(type)) return true;
  return REPLY_TYPES.has(type) && Number.isSafeInteger(ack);
}

/** By type, not by the presence of `ack`: a notice that happens to carry one answers nothing. */
function isChildReply(message: ChildToMaster): message is ChildReply {
  return REPLY_TYPES.has(message.type);
}

export class IpcChannel {
  readonly #endpoint: IpcEndpoint;
  readonly #label: string;
  readonly #pending = new Map<number, Pending>();
  readonly #listener: (message: unknown) => void;
  #onNotice: (notice: ChildNotice) => void = () => {};
  #onInvalid: (message: unknown) => void = () => {};
  #seq = 0;
  #closedReason: string | null = null;

  /** `label` names the peer in errors ("child Regular (pid 123)"). */
  constructor(endpoint: IpcEndpoint, label: string) {
    this.#endpoint = endpoint;
    this.#label = label;
    this.#listener = (message) => this.#receive(message);
    endpoint.on('message', this.#listener);
  }

  get closed(): boolean {
    return this.#closedReason !== null;
  }

  /** Requests still waiting for their reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  onNotice(handler: (notice: ChildNotice) => void): void {
    this.#onNotice = handler;
  }

  /** Called with anything the peer sent that is not a protocol message (logged by the owner). */
  onInvalid(handler: (message: unknown) => void): void {
    this.#onInvalid = handler;
  }

  /**
   * Sends `request` and resolves with the reply that acks it, whatever its type (the caller decides
   * whether `init-failed` is an error). Rejects with IpcError on timeout, a failed send or close().
   */
  request(request: MasterRequest, timeoutMs: number): Promise<ChildReply> {
    if (this.#closedReason !== null) {
      return Promise.reject(new IpcError(`${this.#label}: cannot send ${request.type}: ${this.#closedReason}`));
    }
    // Wraps well before 2^53; seq only has to be unique among requests in flight.
    this.#seq = this.#seq >= Number.MAX_SAFE_INTEGER ? 1 : this.#seq + 1;
    const seq = this.#seq;
    return new Promise<ChildReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(new IpcError(`${this.#label}: no reply to ${request.type} (seq ${seq}) within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(seq, { type: request.type, resolve, reject, timer });
      const message = { ...request, seq } as MasterToChild;
      try {
        this.#endpoint.send(message, (error) => {
          if (error !== null && error !== undefined) this.#fail(seq, `cannot send ${request.type}: ${error.message}`);
        });
      } catch (error) {
        // send() throws synchronously when the channel is already closed (ERR_IPC_CHANNEL_CLOSED).
        this.#fail(seq, `cannot send ${request.type}: ${(error as Error).message}`);
      }
    });
  }

  /** Rejects every pending request and ignores anything that arrives later. Idempotent. */
  close(reason: string): void {
    if (this.#closedReason !== null) return;
    this.#closedReason = reason;
    this.#endpoint.off('message', this.#listener);
    for (const [seq, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(seq);
      pending.reject(new IpcError(`${this.#label}: ${pending.type} (seq ${seq}) abandoned: ${reason}`));
    }
  }

  #fail(seq: number, message: string): void {
    const pending = this.#pending.get(seq);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#pending.delete(seq);
    pending.reject(new IpcError(`${this.#label}: ${message}`));
  }

  #receive(message: unknown): void {
    if (!isChildMessage(message)) {
      this.#onInvalid(message);
      return;
    }
    if (!isChildReply(message)) {
      this.#onNotice(message);
      return;
    }
    const pending = this.#pending.get(message.ack);
    // A reply that arrives after its timeout is dropped: the caller has already moved on.
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#pending.delete(message.ack);
    pending.resolve(message);
  }
}
