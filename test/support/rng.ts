// Seeded PRNG for deterministic fixtures: mulberry32 for uniforms, Box–Muller for normals.
// Not cryptographic; chosen because it is tiny, fast and stable across platforms.

export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal sample (mean 0, std 1). */
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Float32Array of `count` normals with the given std. */
  normals(count: number, std: number): Float32Array;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  let spareNormal: number | undefined;

  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  const normal = (): number => {
    if (spareNormal !== undefined) {
      const value = spareNormal;
      spareNormal = undefined;
      return value;
    }
    const u1 = 1 - uniform(); // (0, 1]: log() stays finite
    const u2 = uniform();
    const radius = Math.sqrt(-2 * Math.log(u1));
    spareNormal = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  };

  return {
    uniform,
    normal,
    int: (n) => Math.floor(uniform() * n),
    normals: (count, std) => {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = normal() * std;
      return out;
    },
  };
}
