/**
 * Exact decimal arithmetic for prices. Published prices are decimals
 * ("$0.075 per million", "2.5e-07 per token"); binary floats cannot hold
 * most of them, and multiplying a float by 1e15 drifts (1.1e-6 * 1e6 is
 * 1.0999999999999999). Here a decimal is read from its text into a bigint
 * mantissa and a power-of-ten exponent, and scaled with integer arithmetic.
 *
 * A JavaScript number is read through String(n), which is the shortest
 * text that round-trips to the same double: for a literal with at most 15
 * significant digits (every price ever published) that text is the literal
 * itself, so JSON.parse followed by this module loses nothing.
 */

/** Decimal is mantissa × 10^exponent, exactly. */
export interface Decimal {
  mantissa: bigint;
  exponent: number;
}

const decimalPattern = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** parseDecimal reads a decimal from its text or a number; undefined when it is not a finite decimal. */
export function parseDecimal(value: string | number): Decimal | undefined {
  if (typeof value === "number" && !Number.isFinite(value)) return undefined;
  const text = typeof value === "number" ? String(value) : value.trim();
  const m = decimalPattern.exec(text);
  if (m === null) return undefined;
  const [, sign, whole = "", frac = "", exp = "0"] = m;
  if (whole === "" && frac === "") return undefined;
  const digits = `${whole}${frac}`.replace(/^0+(?=\d)/, "");
  const mantissa = BigInt(digits === "" ? "0" : digits);
  return { mantissa: sign === "-" ? -mantissa : mantissa, exponent: Number(exp) - frac.length };
}

/** ScaledValue is a decimal scaled to an integer, and whether that was exact. */
export interface ScaledValue {
  value: bigint;
  /** exact is false when digits below the unit were rounded away (half up). */
  exact: boolean;
}

/** scaleDecimal returns round(d × 10^digits) as a bigint, rounding half away from zero. */
export function scaleDecimal(d: Decimal, digits: number): ScaledValue {
  const e = d.exponent + digits;
  if (e >= 0) return { value: d.mantissa * 10n ** BigInt(e), exact: true };
  const divisor = 10n ** BigInt(-e);
  const negative = d.mantissa < 0n;
  const abs = negative ? -d.mantissa : d.mantissa;
  const q = (abs + divisor / 2n) / divisor;
  const exact = abs % divisor === 0n;
  return { value: negative ? -q : q, exact };
}

/**
 * decimalToScaled parses value and scales it by 10^digits; it throws a
 * RangeError naming the value when it is not a decimal number.
 */
export function decimalToScaled(value: string | number, digits: number): ScaledValue {
  const d = parseDecimal(value);
  if (d === undefined) throw new RangeError(`not a decimal number: ${JSON.stringify(value)}`);
  return scaleDecimal(d, digits);
}

/** formatScaled renders value / 10^digits as the shortest exact decimal text ("0.075", "3", "-1.5"). */
export function formatScaled(value: bigint, digits: number): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const unit = 10n ** BigInt(digits);
  const whole = abs / unit;
  const frac = digits === 0 ? "" : (abs % unit).toString().padStart(digits, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${frac === "" ? "" : `.${frac}`}`;
}
