/**
 * The master's signal table (docs/operations.md, Signals and reload), in the manner of close-with-grace: the first TERM/INT/USR1
 * starts a graceful stop, a second TERM/INT (or QUIT at any time) a hard one. Handlers are installed
 * while the master runs and removed after, so a test process can host several masters in turn.
 *
 * USR1 is Node's "start the inspector" signal; installing a listener replaces that behaviour, which is
 * what an operator who sends USR1 to the original (graceful stop) expects.
 */

export const SIGNAL_ACTIONS = {
  SIGHUP: 'reload',
  SIGTERM: 'stop',
  SIGINT: 'stop',
  SIGUSR1: 'stop',
  SIGQUIT: 'hard-stop',
  SIGUSR2: 'reopen-logs',
} as const satisfies Partial<Record<NodeJS.Signals, string>>;

export type SignalAction = (typeof SIGNAL_ACTIONS)[keyof typeof SIGNAL_ACTIONS];
type HandledSignal = keyof typeof SIGNAL_ACTIONS;

export interface SignalHandlers {
  reload(signal: NodeJS.Signals): void;
  gracefulStop(signal: NodeJS.Signals): void;
  hardStop(signal: NodeJS.Signals): void;
  reopenLogs(signal: NodeJS.Signals): void;
}

/** Anything with process's on/off for signals: `process` itself, or an EventEmitter in tests. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export class SignalRouter {
  readonly #handlers: SignalHandlers;
  readonly #source: SignalSource;
  readonly #listener: (signal: NodeJS.Signals) => void;
  #stopRequested = false;
  #installed = false;

  constructor(handlers: SignalHandlers, source: SignalSource = process) {
    this.#handlers = handlers;
    this.#source = source;
    this.#listener = (signal) => this.dispatch(signal);
  }

  install(): void {
    if (this.#installed) return;
    this.#installed = true;
    for (const signal of Object.keys(SIGNAL_ACTIONS) as HandledSignal[]) this.#source.on(signal, this.#listener);
  }

  uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    for (const signal of Object.keys(SIGNAL_ACTIONS) as HandledSignal[]) this.#source.off(signal, this.#listener);
  }

  /** Routes one signal; public so the master's own stop paths can share the "second stop is hard" rule. */
  dispatch(signal: NodeJS.Signals): void {
    const action = (SIGNAL_ACTIONS as Partial<Record<NodeJS.Signals, SignalAction>>)[signal];
    switch (action) {
      case 'reload':
        this.#handlers.reload(signal);
        return;
      case 'reopen-logs':
        this.#handlers.reopenLogs(signal);
        return;
      case 'hard-stop':
        this.#stopRequested = true;
        this.#handlers.hardStop(signal);
        return;
      case 'stop':
        if (this.#stopRequested && signal !== 'SIGUSR1') {
          this.#handlers.hardStop(signal);
        } else if (!this.#stopRequested) {
          this.#stopRequested = true;
          this.#handlers.gracefulStop(signal);
        }
        return;
      default:
        return;
    }
  }
}
