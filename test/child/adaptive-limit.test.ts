import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveLimit, BASELINE_REFRESH_MS, medianOf } from '../../src/child/adaptive-limit.js';

/**
 * The controller against a simulated endpoint on a simulated clock: each request's latency is set
 * when it arrives, from how many are in flight then (fine up to the knee, +50 ms per request past it).
 * The real endpoint and gearmand are in adaptive-concurrency.test.ts; this one pins the arithmetic.
 */
class Simulation {
  now = 0;
  readonly limit: AdaptiveLimit;
  knee: number;
  baseMs: number;
  readonly #inFlight: Array<{ start: number; end: number }> = [];
  readonly trace: Array<{ at: number; limit: number }> = [];

  constructor(floor: number, ceiling: number, knee: number, baseMs = 100) {
    this.limit = new AdaptiveLimit(floor, ceiling, () => this.now);
    this.knee = knee;
    this.baseMs = baseMs;
  }

  /** Runs a full queue until `untilMs`: every slot the limit allows holds a request. */
  run(untilMs: number): void {
    this.#fill();
    while (this.now < untilMs) {
      const done = this.#inFlight.shift() as { start: number; end: number };
      this.now = done.end;
      this.limit.attemptEnded(done.start, true);
      this.trace.push({ at: this.now, limit: this.limit.limit });
      this.#fill();
    }
  }

  /** The limits seen from `fromMs` on. */
  since(fromMs: number): number[] {
    return this.trace.filter((p) => p.at >= fromMs).map((p) => p.limit);
  }

  #fill(): void {
    while (this.#inFlight.length < this.limit.limit) {
      const concurrent = this.#inFlight.length + 1;
      // A little jitter, as on a real network: arrivals and answers never line up exactly.
      const latency = this.baseMs + 50 * Math.max(0, concurrent - this.knee) + ((this.#inFlight.length * 7919) % 3);
      this.#inFlight.push({ start: this.now, end: this.now + latency });
      this.limit.inUse(this.#inFlight.length);
      this.limit.attemptStarted(this.now);
    }
    this.#inFlight.sort((a, b) => a.end - b.end);
  }
}

const share = (values: number[], predicate: (n: number) => boolean): number => values.filter(predicate).length / values.length;

test('AdaptiveLimit should settle just below a steep knee and stay there', () => {
  const sim = new Simulation(2, 200, 20);
  sim.run(40_000);
  const late = sim.since(15_000);
  assert.ok(share(late, (n) => n === 20) > 0.8, `at the knee most of the time: ${late.slice(0, 50).join(',')}`);
  assert.ok(late.every((n) => n >= 17 && n <= 21), `never far from it: ${Math.min(...late)}..${Math.max(...late)}`);
  assert.ok(Math.abs((sim.limit.baselineMs ?? 0) - 101) < 3, `baseline ${sim.limit.baselineMs}`);
});

test('AdaptiveLimit should fall when the knee drops and rise again when it comes back, never below the floor', () => {
  const sim = new Simulation(3, 60, 20);
  sim.run(20_000);
  sim.knee = 6;
  sim.run(40_000);
  const low = sim.since(30_000);
  assert.ok(low.every((n) => n <= 7), `down to the new knee: ${Math.max(...low)}`);
  sim.knee = 20;
  sim.run(60_000);
  assert.ok(sim.since(55_000).every((n) => n >= 17), `back up: ${sim.since(55_000).slice(0, 40).join(',')}`);
  sim.knee = 0;
  sim.run(80_000);
  assert.equal(Math.min(...sim.trace.map((p) => p.limit)), 3, 'the floor holds even when every request is slow');
});

test('AdaptiveLimit should grow to the ceiling when latency does not depend on concurrency', () => {
  const sim = new Simulation(2, 50, 1000);
  sim.run(20_000);
  assert.equal(sim.limit.limit, 50);
});

test('AdaptiveLimit should take a slower endpoint as its new baseline after a while at the floor', () => {
  const sim = new Simulation(2, 40, 20);
  sim.run(15_000);
  sim.baseMs = 400;
  sim.run(90_000);
  assert.ok((sim.limit.baselineMs ?? 0) > 390, `baseline ${sim.limit.baselineMs}`);
  // 50 ms per request past the knee is only 12.5 % of 400 ms: two past it are within TOLERANCE.
  const late = sim.since(80_000);
  assert.ok(late.every((n) => n >= 17 && n <= 24), `the knee found again at the new latency: ${late.slice(0, 40).join(',')}`);
});

test('AdaptiveLimit should measure its baseline again at half the limit, then go back', () => {
  const sim = new Simulation(2, 40, 20);
  sim.run(BASELINE_REFRESH_MS + 20_000);
  const dips = sim.since(BASELINE_REFRESH_MS - 5_000).filter((n) => n <= 10);
  assert.ok(dips.length > 0, 'one measurement window at half the limit');
  assert.equal(sim.limit.limit, 20);
});

test('AdaptiveLimit should treat a window of transient outcomes as overload, and ignore attempts started before a change', () => {
  let now = 0;
  const limit = new AdaptiveLimit(2, 100, () => now);
  // The baseline window (40 attempts at the floor), then growth.
  for (let i = 0; i < 40; i++) {
    now += 10;
    limit.attemptEnded(now - 5, true);
  }
  limit.inUse(2);
  assert.equal(limit.limit, 3);
  assert.equal(limit.baselineMs, 5);
  const oldStart = now - 1;
  for (let i = 0; i < 100; i++) limit.attemptEnded(oldStart, false);
  assert.equal(limit.limit, 3, 'attempts that started before the change say nothing about it');
  limit.inUse(3);
  for (let i = 0; i < 20; i++) {
    now += 10;
    limit.attemptEnded(now - 5, i % 5 !== 0);
  }
  assert.equal(limit.limit, 2, '20 % transient outcomes cut the limit');
});

test('AdaptiveLimit.setBounds should keep the limit within a new floor and ceiling', () => {
  const limit = new AdaptiveLimit(2, 10, () => 0);
  limit.setBounds(4, 10);
  assert.equal(limit.limit, 4);
  limit.setBounds(1, 3);
  assert.equal(limit.limit, 3);
  assert.equal(new AdaptiveLimit(50, 8, () => 0).limit, 8, 'the floor is at most the ceiling');
});

test('medianOf should find the middle value of the first n', () => {
  const values = new Float64Array([9, 1, 8, 2, 7, 3, 6, 4, 5, 100, 100]);
  assert.equal(medianOf(values, 9), 5);
  assert.equal(medianOf(new Float64Array([3, 3, 3, 1]), 4), 3);
  assert.equal(medianOf(new Float64Array([2, 1]), 2), 2);
  assert.equal(medianOf(new Float64Array([7]), 1), 7);
});
