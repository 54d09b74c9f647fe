/**
 * The Prometheus text exposition format, version 0.0.4, written by hand: the format is small and fully
 * specified (https://prometheus.io/docs/instrumenting/exposition_formats/), and prom-client would bring
 * a registry, default metrics and a dependency for what is a few string joins over data the master
 * already holds. What matters and is tested:
 *
 *   # HELP <name> <help, with \ and newline escaped>
 *   # TYPE <name> counter|gauge|histogram
 *   <name>{<label>="<value, with \ " and newline escaped>",…} <value>
 *
 * - Every family gets its HELP and TYPE lines even without samples, so a dashboard can tell "no jobs
 *   yet" from "not exported".
 * - Histograms: `_bucket{le="…"}` lines are cumulative and end with le="+Inf", which equals `_count`;
 *   then `_sum` and `_count`. Buckets are given to the formatter non-cumulative (as children count
 *   them) and summed here.
 * - Values: integers as integers, floats in JavaScript's shortest round-trip form (which Prometheus'
 *   ParseFloat reads), and +Inf, -Inf, NaN spelled the way the format wants.
 * - Names are constants of ours: an invalid one is a programming error and throws.
 */
import { InternalError } from '../errors.js';

/** The Content-Type a scraper expects for this format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export const MetricType = {
  COUNTER: 'counter',
  GAUGE: 'gauge',
  HISTOGRAM: 'histogram',
} as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface HistogramSample {
  labels: Labels;
  /** Upper bounds, increasing, without +Inf. */
  bounds: readonly number[];
  /** Observations per bucket, NOT cumulative; length bounds.length + 1 (the last is above every bound). */
  counts: readonly number[];
  sum: number;
}

export type MetricFamily =
  | { name: string; help: string; type: typeof MetricType.COUNTER | typeof MetricType.GAUGE; samples: readonly Sample[] }
  | { name: string; help: string; type: typeof MetricType.HISTOGRAM; samples: readonly HistogramSample[] };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value between double quotes: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

/** HELP text: backslash and line feed are escaped (double quotes are not, per the format). */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'));
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function labelText(labels: Labels, extra?: readonly [string, string]): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new InternalError(`invalid Prometheus label name ${JSON.stringify(name)}`);
    parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function histogramLines(name: string, sample: HistogramSample, out: string[]): void {
  if ('le' in sample.labels) throw new InternalError(`histogram ${name}: "le" is reserved for buckets`);
  if (sample.counts.length !== sample.bounds.length + 1) {
    throw new InternalError(`histogram ${name}: ${sample.counts.length} counts for ${sample.bounds.length} bounds (expected bounds + 1)`);
  }
  let cumulative = 0;
  for (let i = 0; i < sample.bounds.length; i++) {
    cumulative += sample.counts[i] as number;
    out.push(`${name}_bucket${labelText(sample.labels, ['le', formatValue(sample.bounds[i] as number)])} ${formatValue(cumulative)}`);
  }
  cumulative += sample.counts[sample.bounds.length] as number;
  out.push(`${name}_bucket${labelText(sample.labels, ['le', '+Inf'])} ${formatValue(cumulative)}`);
  const labels = labelText(sample.labels);
  out.push(`${name}_sum${labels} ${formatValue(sample.sum)}`);
  out.push(`${name}_count${labels} ${formatValue(cumulative)}`);
}

/** The whole exposition: families in the order given, one trailing line feed. */
export function formatExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new InternalError(`invalid Prometheus metric name ${JSON.stringify(family.name)}`);
    if (seen.has(family.name)) throw new InternalError(`metric family ${family.name} given twice`);
    seen.add(family.name);
    out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if (family.type === MetricType.HISTOGRAM) {
      for (const sample of family.samples) histogramLines(family.name, sample, out);
    } else {
      for (const sample of family.samples) out.push(`${family.name}${labelText(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
