/*
 * Adam's elementwise update as a tiny WebAssembly SIMD function working directly on the
 * tfjs wasm backend's memory (imported, so no copies). Plain JavaScript needs ~25 ms for
 * the network's 2.16M parameters (three divisions and a square root per element); four
 * lanes at a time it is bounded by memory bandwidth instead.
 *
 * WebAssembly has no text assembler in this repository's dependencies, so the module is
 * encoded here by hand. f32x4 arithmetic is IEEE float32 with round-to-nearest in every
 * lane, exactly like the scalar float32 kernels tfjs runs op by op.
 */

/**
 * out[i] = (m'[i] / c1) / (sqrt(v'[i] / c2) + eps) * nlr + w[i], with
 * m'[i] = m[i]*b1 + g'[i]*omb1 and v'[i] = v[i]*b2 + g'[i]*g'[i]*omb2 written back to m and v,
 * where g'[i] = g[i] + decay*w[i] (the gradient of decay/2 * Σw²), or g[i] when decay is 0.
 * Pointers are byte addresses in the imported memory; `bytes` is a multiple of 16.
 */
export type AdamSimd = (
  out: number,
  w: number,
  g: number,
  m: number,
  v: number,
  bytes: number,
  b1: number,
  omb1: number,
  b2: number,
  omb2: number,
  c1: number,
  c2: number,
  eps: number,
  nlr: number,
  decay: number,
) => void;

/** Σ x[i]² in double precision over `bytes` (a multiple of 16) from byte address `x`. */
export type SumSquaresSimd = (x: number, bytes: number) => number;

const I32 = 0x7f;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const name = (s: string) => [...leb(s.length), ...Buffer.from(s, 'utf8')];
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];

// Instructions.
const get = (i: number) => [0x20, ...leb(i)];
const set = (i: number) => [0x21, ...leb(i)];
const tee = (i: number) => [0x22, ...leb(i)];
const simd = (op: number) => [0xfd, ...leb(op)];
const load = [...simd(0x00), 0x00, 0x00]; // v128.load align=1 offset=0 (any alignment)
const store = [...simd(0x0b), 0x00, 0x00];
const splat = simd(0x13);
const sqrt = simd(0xe3);
const add = simd(0xe4);
const mul = simd(0xe6);
const div = simd(0xe7);
const i32Add = [0x6a];

// Parameters 0-5: out, w, g, m, v, bytes (i32); 6-14: b1, omb1, b2, omb2, c1, c2, eps, nlr, decay (f32).
const [OUT, W, G, M, V, BYTES] = [0, 1, 2, 3, 4, 5];
const I = 15; // i32 byte index
const SPLAT = 16; // 16..24: the nine scalars splatted, in parameter order
const [B1, OMB1, B2, OMB2, C1, C2, EPS, NLR, DECAY] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((k) => SPLAT + k) as [number, number, number, number, number, number, number, number, number];
const [GV, MV, VV] = [25, 26, 27];
const at = (base: number) => [...get(base), ...get(I), ...i32Add];

function adamBody(decay: boolean): number[] {
  const code: number[] = [];
  for (let k = 0; k < 9; k++) code.push(...get(6 + k), ...splat, ...set(SPLAT + k));
  code.push(0x02, 0x40); // block
  code.push(...get(BYTES), 0x45, 0x0d, 0x00); // i32.eqz; br_if 0
  code.push(0x03, 0x40); // loop
  code.push(...at(G), ...load);
  // g + decay*w, in that order (tfjs: add(grad, mul(w, decay)))
  if (decay) code.push(...at(W), ...load, ...get(DECAY), ...mul, ...add);
  code.push(...set(GV));
  // m' = m*b1 + g*omb1
  code.push(...at(M), ...load, ...get(B1), ...mul, ...get(GV), ...get(OMB1), ...mul, ...add, ...set(MV));
  // v' = v*b2 + (g*g)*omb2
  code.push(...at(V), ...load, ...get(B2), ...mul, ...get(GV), ...get(GV), ...mul, ...get(OMB2), ...mul, ...add, ...set(VV));
  code.push(...at(M), ...get(MV), ...store);
  code.push(...at(V), ...get(VV), ...store);
  // out = ((m'/c1) / (sqrt(v'/c2) + eps)) * nlr + w
  code.push(...at(OUT));
  code.push(...get(MV), ...get(C1), ...div);
  code.push(...get(VV), ...get(C2), ...div, ...sqrt, ...get(EPS), ...add);
  code.push(...div, ...get(NLR), ...mul, ...at(W), ...load, ...add, ...store);
  // i += 16; loop while i < bytes
  code.push(...get(I), 0x41, ...leb(16), ...i32Add, ...tee(I), ...get(BYTES), 0x49, 0x0d, 0x00);
  code.push(0x0b, 0x0b); // end loop, end block
  return func([[...leb(1), I32], [...leb(12), V128]], code);
}

function func(locals: number[][], code: number[]): number[] {
  const fn = [...vec(locals), ...code, 0x0b];
  return [...leb(fn.length), ...fn];
}

/** Σx² with two f64x2 accumulators (the four float lanes widened), lanes added at the end. */
function sumSquaresBody(): number[] {
  const [X, N, J, LO, HI, XV] = [0, 1, 2, 3, 4, 5];
  const promoteLow = simd(0x5f);
  const f64Add = simd(0xf0);
  const f64Mul = simd(0xf2);
  // i8x16.shuffle moving float lanes 2,3 to 0,1
  const high = [...simd(0x0d), 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  const sq = [...promoteLow, 0x22, ...leb(6), ...get(6), ...f64Mul]; // tee tmp; tmp*tmp
  const code: number[] = [];
  code.push(0x02, 0x40, ...get(N), 0x45, 0x0d, 0x00, 0x03, 0x40);
  code.push(...get(X), ...get(J), ...i32Add, ...load, ...set(XV));
  code.push(...get(LO), ...get(XV), ...sq, ...f64Add, ...set(LO));
  code.push(...get(HI), ...get(XV), ...get(XV), ...high, ...sq, ...f64Add, ...set(HI));
  code.push(...get(J), 0x41, ...leb(16), ...i32Add, ...tee(J), ...get(N), 0x49, 0x0d, 0x00, 0x0b, 0x0b);
  code.push(...get(LO), ...get(HI), ...f64Add, ...tee(LO), ...simd(0x21), 0x00, ...get(LO), ...simd(0x21), 0x01, 0xa0); // lane0 + lane1 (f64.add)
  return func([[...leb(1), I32], [...leb(4), V128]], code);
}

function moduleBytes(): Uint8Array {
  const adamParams = [...Array<number>(6).fill(I32), ...Array<number>(9).fill(F32)];
  const types = [
    [0x60, ...vec(adamParams.map((p) => [p])), ...vec([])],
    [0x60, ...vec([[I32], [I32]]), ...vec([[F64]])],
  ];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...leb(0)]])),
    ...section(3, vec([leb(0), leb(0), leb(1)])),
    ...section(
      7,
      vec([
        [...name('adam'), 0x00, ...leb(0)],
        [...name('adamDecay'), 0x00, ...leb(1)],
        [...name('sumSquares'), 0x00, ...leb(2)],
      ]),
    ),
    ...section(10, vec([adamBody(false), adamBody(true), sumSquaresBody()])),
  ];
  return new Uint8Array(bytes);
}

/** The parts of the WebAssembly JS API used here (this project's TypeScript libs omit it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: abstract new (...args: never[]) => object;
}

export const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

export interface AdamSimdKernels {
  adam: AdamSimd;
  sumSquares: SumSquaresSimd;
}

/** The SIMD functions bound to `memory` (a WebAssembly.Memory), or null where the runtime has no wasm SIMD. */
export function adamSimd(memory: object): AdamSimdKernels | null {
  try {
    const module = new webAssembly.Module(moduleBytes());
    const { exports } = new webAssembly.Instance(module, { env: { memory } });
    const plain = exports['adam'] as AdamSimd;
    const decayed = exports['adamDecay'] as AdamSimd;
    return {
      // Without decay, g stays g exactly (g + 0*w could flip a zero's sign or meet inf*0).
      adam: (...args) => (args[14] === 0 ? plain : decayed)(...args),
      sumSquares: exports['sumSquares'] as SumSquaresSimd,
    };
  } catch {
    return null;
  }
}
