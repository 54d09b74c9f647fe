// `npm run lint` (part of `npm test`): typescript-eslint's type-checked rules (strictTypeChecked) over every
// TypeScript and JavaScript file of the repository, plus the project's own standards where a rule exists.
// Each rule turned off or loosened below says why; the type checker itself runs as `npm run typecheck`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', '.node/', 'bench/results/', 'test-artifacts/', 'tmp/', 'coverage/'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // TypeScript files come from tsconfig.json; the few JavaScript files outside it (scripts, the example
        // endpoint, the bin shim, this config) get a default project so the type-aware rules reach them too.
        projectService: {
          allowDefaultProject: ['scripts/*.mjs', 'examples/*.mjs', 'bin/*.js', 'eslint.config.js'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // The project's standards: `as const` objects instead of enums, #private fields and methods instead of
      // TypeScript's `private` (a private constructor has no # form, so it stays allowed).
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'No `enum`: use an `as const` object and a union of its values.' },
        {
          selector:
            ':matches(PropertyDefinition, TSParameterProperty, TSAbstractPropertyDefinition)[accessibility="private"], MethodDefinition[accessibility="private"][kind!="constructor"]',
          message: 'Use a #private member instead of the `private` keyword.',
        },
      ],
      // A promise nobody awaits loses its rejection; `void promise` marks the few that are meant to run on
      // their own. node:test's test()/describe() return promises the runner itself tracks.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'only', 'skip', 'todo'] },
          ],
        },
      ],
      // Numbers, booleans, null/undefined and regular expressions print as meant in messages (an exit's
      // "code null, signal SIGTERM" is deliberate); objects, arrays and `any` still need String() or
      // JSON.stringify, so "[object Object]" cannot slip into a log line.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowRegExp: true, allowAny: false, allowNever: false },
      ],
      // The `_name` convention marks a binding kept on purpose (a rest sibling's excluded key, an unused
      // parameter an interface requires); tsc's noUnused* checks enforce the rest.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Without tsconfig's noUncheckedIndexedAccess, `array[i]` and `record[key]` are typed as always present,
      // so these two rules call the code's real runtime checks (`=== undefined`, `?.`, `?? fallback`) and its
      // `array[i] as T` reads unnecessary: following them would remove needed guards.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-unnecessary-boolean-literal-compare': 'off',
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Style only: `() => clearTimeout(timer)` and `return log.warn(...)` in a void function are idiomatic
      // and hide no value (about 200 hits, none a defect).
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // Catch callbacks name the error shape Node's API rejects with (NodeJS.ErrnoException); `unknown`
      // followed by a cast is no safer.
      '@typescript-eslint/use-unknown-in-catch-callback-variable': 'off',
      // A helper that passes a rejection on (a deadline wrapper) forwards whatever reason it got.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // Config checks and log-safe escaping match control characters on purpose.
      'no-control-regex': 'off',
      // Flags `let x = initial` whose value a loop or every branch overwrites before reading; the explicit
      // initial value is clearer than leaning on definite-assignment analysis (4 hits, none a defect).
      'no-useless-assignment': 'off',
      // The logger's overloads mirror bunyan's call shapes (fields, error, message); one union parameter
      // would read worse at every call site.
      '@typescript-eslint/unified-signatures': 'off',
      // The only dynamic deletes are on Node's own key-value objects (process.env, require.cache), where
      // delete is the API.
      '@typescript-eslint/no-dynamic-delete': 'off',
      // String() around a value the types call a string is there for what the types miss at run time:
      // JSON.stringify(undefined) and the message of a thrown non-Error.
      '@typescript-eslint/no-unnecessary-type-conversion': 'off',
    },
  },
  {
    // Bench and test code asserts what its own setup guarantees (a piped child's stdin, a queue's head after
    // a length check); a wrong guess fails that run at once. src/ keeps the rule.
    files: ['bench/**', 'test/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // Plain JavaScript has no annotations, so every value from JSON, a callback or an untyped module is
    // `any`: the no-unsafe-* rules would flag each use, not a defect.
    files: ['**/*.js', '**/*.mjs'],
    rules: {
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowRegExp: true, allowAny: true, allowNever: false },
      ],
      '@typescript-eslint/restrict-plus-operands': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
