/**
 * The W3C Trace Context pieces: id generation, traceparent parsing, the workload field, and the
 * percent-encoding of the job identity headers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValue } from '../../src/child/http/request-builder.js';
import { newJobTrace, newSpanId, newTraceId, parseTraceparent, traceFromWorkload, traceparentFor } from '../../src/child/trace-context.js';

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/;

test('newTraceId and newSpanId should be lower-case hex of the W3C lengths, distinct across many calls', () => {
  const traces = new Set<string>();
  const spans = new Set<string>();
  // More than one 4 KiB refill of the random pool.
  for (let i = 0; i < 1000; i++) {
    const trace = newTraceId();
    const span = newSpanId();
    assert.match(trace, /^[0-9a-f]{32}$/);
    assert.match(span, /^[0-9a-f]{16}$/);
    traces.add(trace);
    spans.add(span);
  }
  assert.equal(traces.size, 1000);
  assert.equal(spans.size, 1000);
});

test('trace ids should look random in their low bytes (what ratio samplers compare), not count up', () => {
  // A prefix-plus-counter scheme would put ~all low 8-byte values below a 10 % threshold or none.
  let below = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) if (Number.parseInt(newTraceId().slice(16, 24), 16) < 0x19999999) below++;
  assert.ok(below > n * 0.05 && below < n * 0.15, `${below} of ${n} trace ids below the 10 % threshold`);
});

test('traceparentFor should keep the trace id and draw a new span id each time', () => {
  const trace = newJobTrace();
  const first = traceparentFor(trace);
  const second = traceparentFor(trace);
  assert.match(first, TRACEPARENT);
  assert.match(second, TRACEPARENT);
  assert.equal(first.slice(3, 35), trace.traceId);
  assert.equal(second.slice(3, 35), trace.traceId);
  assert.notEqual(first.slice(36, 52), second.slice(36, 52));
});

test('parseTraceparent should accept valid values and keep the upstream flags', () => {
  assert.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '01' });
  assert.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '00' });
  // A future version may append fields; only its sampled flag is kept.
  assert.deepEqual(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-extra'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '01' });
});

test('parseTraceparent should refuse what the spec calls invalid', () => {
  for (const bad of [
    '',
    'garbage',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // all-zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // all-zero parent id
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x', // version 00 with more
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', // short trace id
    '0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x', // future version, no dash after flags
  ]) {
    assert.equal(parseTraceparent(bad), null, bad);
  }
});

test('traceFromWorkload should read the named string member of a JSON object workload, else null', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  assert.deepEqual(traceFromWorkload(Buffer.from(` {"a":1,"tp":"${tp}"}`), 'tp'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '01' });
  assert.equal(traceFromWorkload(Buffer.from(`{"other":"${tp}"}`), 'tp'), null);
  assert.equal(traceFromWorkload(Buffer.from(`{"tp":"not a traceparent"}`), 'tp'), null);
  assert.equal(traceFromWorkload(Buffer.from(`{"tp":5}`), 'tp'), null);
  assert.equal(traceFromWorkload(Buffer.from(`["${tp}"]`), 'tp'), null);
  assert.equal(traceFromWorkload(Buffer.from(`{"tp":"${tp}"`), 'tp'), null, 'truncated JSON');
  assert.equal(traceFromWorkload(Buffer.from([0x7b, 0xff, 0xfe]), 'tp'), null);
  assert.equal(traceFromWorkload(Buffer.from('{"__proto__":"x"}'), '__proto__'), null);
});

test('headerValue should pass printable ASCII through and percent-encode every other byte', () => {
  assert.equal(headerValue(Buffer.from('57a7b604-659a-11e5-9442-04013e647701')), '57a7b604-659a-11e5-9442-04013e647701');
  assert.equal(headerValue(Buffer.from('H:host:42')), 'H:host:42');
  assert.equal(headerValue(Buffer.from('a b%c\r\nd')), 'a%20b%25c%0D%0Ad');
  assert.equal(headerValue(Buffer.from('é☃', 'utf8')), '%C3%A9%E2%98%83');
  assert.equal(headerValue(Buffer.from([0xff, 0x41, 0x00])), '%FFA%00');
  assert.equal(headerValue(Buffer.alloc(0)), '');
  // Lossless: a standard percent-decoder gets the UTF-8 text back.
  assert.equal(decodeURIComponent(headerValue(Buffer.from('ünique id/1?x=%', 'utf8'))), 'ünique id/1?x=%');
});
