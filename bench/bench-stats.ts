// The statistics and number formats the benches print.

/** median returns the middle value of `xs` (the upper one of an even count), NaN when there is none. */
export const median = (xs: number[]): number => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);

/** fmt writes a number with `digits` decimals, "-" when it is not finite. */
export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "-");

/** summary writes "median [min .. max]" of `xs`, `unit` after the median. */
export const summary = (xs: number[], digits = 2, unit = ""): string =>
  `${fmt(median(xs), digits)}${unit} [${fmt(Math.min(...xs), digits)} .. ${fmt(Math.max(...xs), digits)}]`;
