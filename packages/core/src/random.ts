/**
 * A small seeded PRNG (xoshiro128**) whose whole state is four uint32s, so training can
 * checkpoint it and resume bit-identically. Math.random and tfjs's own seeds are not
 * used anywhere in training: one `seed` param determines init, dropout and shuffling.
 */
export type RngState = [number, number, number, number];

/**
 * The largest seed: Rng reads a seed as a uint32 (`seed >>> 0`), so 2^32 would give seed
 * 0's stream under another artifact key. Seed params are bounded by it.
 */
export const MAX_SEED = 0xffff_ffff;

export class Rng {
  private s: Uint32Array;
  /** Cached second value of the Box-Muller pair; part of the state. */
  private spareNormal: number | null = null;

  constructor(seed: number) {
    // splitmix32 expands the seed so nearby seeds give unrelated streams.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = new Uint32Array([next(), next(), next(), next()]);
  }

  static fromState(state: { s: RngState; spareNormal: number | null }): Rng {
    const rng = new Rng(0);
    rng.s = Uint32Array.from(state.s);
    rng.spareNormal = state.spareNormal;
    return rng;
  }

  getState(): { s: RngState; spareNormal: number | null } {
    return { s: [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!], spareNormal: this.spareNormal };
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** Standard normal (Box-Muller). */
  nextNormal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Normal(0, stddev) truncated at ±2 stddev by resampling, like tf.truncated_normal. */
  nextTruncatedNormal(stddev: number): number {
    for (;;) {
      const z = this.nextNormal();
      if (z > -2 && z < 2) return z * stddev;
    }
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
