// The classes pkg/index.d.ts declares by hand against the ones wasm-bindgen generates
// (pkg/wasm_tls.d.ts, written by `cargo xtask build-pkg`): the same members, each method
// with as many parameters, and every argument the declaration allows accepted by the
// binding. Only compiled (tsc --noEmit).

import type * as Generated from '../../pkg/wasm_tls.js';
import type * as Declared from 'wasm-tls';

type Equal<T, U> = (<V>() => V extends T ? 1 : 2) extends <V>() => V extends U ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

/** The members, without the disposer that wasm-bindgen adds (an alias of free()). */
type Members<T> = Exclude<keyof T, typeof Symbol.dispose>;

/** The names of the methods whose parameters disagree: a different count, or a type the binding does not take. */
type BadParameters<D, G> = {
  [K in Members<D> & Members<G>]: D[K] extends (...args: infer A) => unknown
    ? G[K] extends (...args: infer B) => unknown
      ? Equal<A['length'], B['length']> extends true
        ? A extends B
          ? never
          : K
        : K
      : K
    : never;
}[Members<D> & Members<G>];

type SameClass<D, G> = Equal<Members<D>, Members<G>> extends true ? Equal<BadParameters<D, G>, never> : false;

type SameConstructor<D extends abstract new (...args: never[]) => unknown, G extends abstract new (...args: never[]) => unknown> = Equal<
  ConstructorParameters<D>['length'],
  ConstructorParameters<G>['length']
>;

export type Checks = [
  Expect<SameClass<Declared.TlsConfig, Generated.TlsConfig>>,
  Expect<SameClass<Declared.TlsConnection, Generated.TlsConnection>>,
  Expect<SameClass<Declared.TlsPipe, Generated.TlsPipe>>,
  Expect<SameConstructor<typeof Declared.TlsConfig, typeof Generated.TlsConfig>>,
  Expect<SameConstructor<typeof Declared.TlsConnection, typeof Generated.TlsConnection>>,
  Expect<SameConstructor<typeof Declared.TlsPipe, typeof Generated.TlsPipe>>,
];
