// A log-linear latency histogram in the manner of HdrHistogram: every power
// of two is split into SUB_BUCKETS linear buckets, so any recorded value is
// known to within 1/SUB_BUCKETS (0.8 %) whatever its size, in a fixed
// 5,000-slot array. Values are integers in microseconds (1 µs .. ~2^38 µs).
// Hand-written (60 lines) instead of depending on hdr-histogram-js: the
// benches need record, merge and quantiles, nothing else.

const SUB_BITS = 7;
const SUB_BUCKETS = 1 << SUB_BITS;
const OCTAVES = 38;

export class Histogram {
  readonly counts = new Float64Array((OCTAVES + 1) * SUB_BUCKETS);
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  /** Record one value (µs); values below 1 count as 1. */
  record(valueUs: number, times = 1): void {
    const v = Math.max(1, Math.round(valueUs));
    this.counts[indexOf(v)] = (this.counts[indexOf(v)] ?? 0) + times;
    this.count += times;
    this.sum += v * times;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  merge(other: Histogram): this {
    for (let i = 0; i < other.counts.length; i++) this.counts[i] = (this.counts[i] ?? 0) + (other.counts[i] ?? 0);
    this.count += other.count;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
    return this;
  }

  /** The value at quantile q (0..1), µs: the middle of its bucket, clamped to the exact min and max. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, middleOf(i)));
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? Number.NaN : this.sum / this.count;
  }
}

function indexOf(v: number): number {
  if (v < SUB_BUCKETS) return v; // octave 0 is exact
  const octave = Math.min(OCTAVES, Math.floor(Math.log2(v)) - SUB_BITS + 1);
  const sub = Math.floor(v / 2 ** (octave - 1)) - SUB_BUCKETS;
  return octave * SUB_BUCKETS + Math.min(SUB_BUCKETS - 1, Math.max(0, sub));
}

function middleOf(i: number): number {
  const octave = Math.floor(i / SUB_BUCKETS);
  const sub = i % SUB_BUCKETS;
  if (octave === 0) return sub;
  const width = 2 ** (octave - 1);
  return (SUB_BUCKETS + sub) * width + width / 2;
}
