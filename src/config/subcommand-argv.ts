/**
 * Argument reading shared by the subcommands that take `--name value` options (replay, pause, resume,
 * drain): their own small parsers, not convict's, because each option there is a one-shot argument,
 * not a daemon setting with an environment variable.
 */
import { OptionsError } from '../errors.js';

/**
 * The value of the option at `argv[index]`, given as `--name=value` (`equals` is the index of its `=`)
 * or as `--name value`; `last` is the index of the last argument it used. A missing or empty value is
 * an OptionsError naming the option.
 */
export function readOptionValue(argv: readonly string[], index: number, name: string, equals: number): { value: string; last: number } {
  let value: string;
  let last = index;
  if (equals !== -1) {
    value = (argv[index] as string).slice(equals + 1);
  } else {
    const next = argv[index + 1];
    if (next === undefined || next.startsWith('--')) throw new OptionsError(`--${name}: expected a value`);
    value = next;
    last = index + 1;
  }
  if (value === '') throw new OptionsError(`--${name}: expected a value`);
  return { value, last };
}
