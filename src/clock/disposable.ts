/**
 * `Symbol.asyncDispose` for the published declarations. `TrueClock` and the etcd
 * election are `AsyncDisposable` (`await using clock = new TrueClock(…)`); their
 * declarations name `Symbol.asyncDispose`, which TypeScript knows only with the
 * `esnext.disposable` lib or `@types/node`. Declaring it here, as `@types/node`
 * does, lets a browser project with `lib: ["ES2022", "DOM"]` type-check the
 * package (TS2550 otherwise); it merges with either of those where present.
 * Runtimes: Node ≥ 20.5 (18.18) and current browsers define the symbol.
 *
 * @module
 */

declare global {
  interface SymbolConstructor {
    /** The method `await using` calls when the scope ends (TC39 explicit resource management). */
    readonly asyncDispose: unique symbol;
  }
}

export {};
