import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BASELINE_PARSER_MAX_SLOTS, BASELINE_WASM_FLAGS, wasmTieringFlags } from '../../src/child/wasm-tiering.js';

test('a small pool should keep the HTTP parser on the baseline compiler, a large one V8\'s default', () => {
  assert.deepEqual(wasmTieringFlags(2, [], ''), BASELINE_WASM_FLAGS);
  assert.deepEqual(wasmTieringFlags(BASELINE_PARSER_MAX_SLOTS, [], ''), BASELINE_WASM_FLAGS);
  assert.deepEqual(wasmTieringFlags(BASELINE_PARSER_MAX_SLOTS + 1, [], ''), []);
  assert.deepEqual(wasmTieringFlags(0, [], ''), BASELINE_WASM_FLAGS, 'a pool with no slots runs no jobs either');
});

test("the operator's own wasm tiering flags should win, on the command line or in NODE_OPTIONS", () => {
  assert.deepEqual(wasmTieringFlags(2, ['--wasm-dynamic-tiering'], ''), []);
  assert.deepEqual(wasmTieringFlags(2, ['--no-wasm_tier_up'], ''), [], 'V8 spells flags with _ or -, and --no- is the same flag');
  assert.deepEqual(wasmTieringFlags(2, [], '--max-old-space-size=64  --wasm-tiering-budget=1000'), [], 'NODE_OPTIONS');
  assert.deepEqual(wasmTieringFlags(2, ['--cpu-prof'], '--max-old-space-size=64'), BASELINE_WASM_FLAGS, 'other flags do not count');
});
