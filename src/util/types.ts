// Small type helpers shared across layers.

/** A readonly record as the code that builds it sees it. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
