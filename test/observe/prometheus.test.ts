import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeHelp, escapeLabelValue, formatExposition, formatValue, MetricType } from '../../src/observe/prometheus.js';

test('formatExposition should write HELP, TYPE and one line per sample in the 0.0.4 text format', () => {
  const text = formatExposition([
    {
      name: 'driveshaft_jobs_total',
      help: 'Jobs finished.',
      type: MetricType.COUNTER,
      samples: [
        { labels: { pool: 'Regular', function: 'Sum', outcome: 'completed' }, value: 3 },
        { labels: { pool: 'Regular', function: 'Sum', outcome: 'failed' }, value: 1 },
      ],
    },
    { name: 'driveshaft_up', help: 'Up.', type: MetricType.GAUGE, samples: [{ labels: {}, value: 1 }] },
  ]);
  assert.equal(
    text,
    [
      '# HELP driveshaft_jobs_total Jobs finished.',
      '# TYPE driveshaft_jobs_total counter',
      'driveshaft_jobs_total{pool="Regular",function="Sum",outcome="completed"} 3',
      'driveshaft_jobs_total{pool="Regular",function="Sum",outcome="failed"} 1',
      '# HELP driveshaft_up Up.',
      '# TYPE driveshaft_up gauge',
      'driveshaft_up 1',
      '',
    ].join('\n'),
  );
});

test('escapeLabelValue should escape backslash, double quote and line feed, and nothing else', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeLabelValue('tab\there, {braces}, =, 日本'), 'tab\there, {braces}, =, 日本');
  const text = formatExposition([{ name: 'x', help: 'h', type: MetricType.GAUGE, samples: [{ labels: { function: 'We"ird\\fn\nname' }, value: 2 }] }]);
  assert.match(text, /^x\{function="We\\"ird\\\\fn\\nname"\} 2$/m);
  // One sample stays one line whatever the value holds.
  assert.equal(text.split('\n').filter((line) => line.startsWith('x{')).length, 1);
});

test('escapeHelp should escape backslash and line feed but keep double quotes', () => {
  assert.equal(escapeHelp('say "hi"\\now\nplease'), 'say "hi"\\\\now\\nplease');
  const text = formatExposition([{ name: 'x', help: 'two\nlines', type: MetricType.COUNTER, samples: [] }]);
  assert.equal(text, '# HELP x two\\nlines\n# TYPE x counter\n');
});

test('formatExposition should write a histogram with cumulative buckets, +Inf equal to _count, then _sum and _count', () => {
  const text = formatExposition([
    {
      name: 'driveshaft_job_duration_seconds',
      help: 'Durations.',
      type: MetricType.HISTOGRAM,
      samples: [{ labels: { pool: 'P', function: 'F' }, bounds: [0.1, 1, 10], counts: [2, 0, 3, 1], sum: 17.25 }],
    },
  ]);
  assert.equal(
    text,
    [
      '# HELP driveshaft_job_duration_seconds Durations.',
      '# TYPE driveshaft_job_duration_seconds histogram',
      'driveshaft_job_duration_seconds_bucket{pool="P",function="F",le="0.1"} 2',
      'driveshaft_job_duration_seconds_bucket{pool="P",function="F",le="1"} 2',
      'driveshaft_job_duration_seconds_bucket{pool="P",function="F",le="10"} 5',
      'driveshaft_job_duration_seconds_bucket{pool="P",function="F",le="+Inf"} 6',
      'driveshaft_job_duration_seconds_sum{pool="P",function="F"} 17.25',
      'driveshaft_job_duration_seconds_count{pool="P",function="F"} 6',
      '',
    ].join('\n'),
  );
});

test('formatExposition should write an empty histogram as zero buckets with _sum 0 and _count 0', () => {
  const text = formatExposition([{ name: 'h', help: 'h', type: MetricType.HISTOGRAM, samples: [{ labels: {}, bounds: [1], counts: [0, 0], sum: 0 }] }]);
  assert.equal(text, '# HELP h h\n# TYPE h histogram\nh_bucket{le="1"} 0\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n');
});

test('formatExposition should keep HELP and TYPE for a family without samples', () => {
  assert.equal(formatExposition([{ name: 'none_yet_total', help: 'Nothing.', type: MetricType.COUNTER, samples: [] }]), '# HELP none_yet_total Nothing.\n# TYPE none_yet_total counter\n');
  assert.equal(formatExposition([]), '');
});

test('formatValue should spell infinities and NaN as the format wants and keep floats round-trip exact', () => {
  assert.equal(formatValue(Infinity), '+Inf');
  assert.equal(formatValue(-Infinity), '-Inf');
  assert.equal(formatValue(Number.NaN), 'NaN');
  assert.equal(formatValue(0), '0');
  assert.equal(formatValue(0.005), '0.005');
  assert.equal(formatValue(2 ** 53), '9007199254740992');
  assert.equal(Number(formatValue(0.1 + 0.2)), 0.1 + 0.2);
});

test('formatExposition should refuse invalid metric and label names, a reserved le label and duplicate families', () => {
  assert.throws(() => formatExposition([{ name: '1bad', help: '', type: MetricType.GAUGE, samples: [] }]), /invalid Prometheus metric name/);
  assert.throws(() => formatExposition([{ name: 'ok', help: '', type: MetricType.GAUGE, samples: [{ labels: { 'bad-name': 'x' }, value: 1 }] }]), /invalid Prometheus label name/);
  assert.throws(() => formatExposition([{ name: 'ok', help: '', type: MetricType.GAUGE, samples: [{ labels: { __reserved: 'x' }, value: 1 }] }]), /invalid Prometheus label name/);
  assert.throws(() => formatExposition([{ name: 'h', help: '', type: MetricType.HISTOGRAM, samples: [{ labels: { le: '1' }, bounds: [1], counts: [0, 0], sum: 0 }] }]), /"le" is reserved/);
  assert.throws(() => formatExposition([{ name: 'h', help: '', type: MetricType.HISTOGRAM, samples: [{ labels: {}, bounds: [1, 2], counts: [0, 0], sum: 0 }] }]), /expected bounds \+ 1/);
  const family = { name: 'twice', help: '', type: MetricType.GAUGE, samples: [] } as const;
  assert.throws(() => formatExposition([family, family]), /given twice/);
});
