// The proof-of-work solver for joining a waiting room that asks for it: the reference
// solver of the JavaScript package, and the code the waiting-room page runs in its Web
// Worker (origin-queue serves this very file inside the page).
//
// A challenge comes in a `403 POW_REQUIRED` answer to a join, as `error.pow`:
// `{ challenge, difficulty, algorithm: 'sha256-leading-zero-bits', expires_at, header }`.
// A solution is `<challenge>:<nonce>` (nonce in decimal) whose SHA-256 starts with at
// least `difficulty` zero bits; send it with the join again in `header` (`x-wr-pow`).
// About 2^difficulty hashes find one.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const W = new Uint32Array(64);

// One SHA-256 compression of the 64 bytes of `bytes` at `at` into `h` (8 words).
function compress(h, bytes, at) {
  for (let i = 0; i < 16; i++) {
    const j = at + i * 4;
    W[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const a = W[i - 15], b = W[i - 2];
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let [a, b, c, d, e, f, g, k] = h;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
}

function ascii(text) {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e || c < 0x20) throw new Error('wr-pow: a challenge is printable ASCII');
    bytes[i] = c;
  }
  return bytes;
}

function leadingZeroBits(h) {
  let bits = 0;
  for (let i = 0; i < 8; i++) {
    if (h[i] !== 0) return bits + Math.clz32(h[i]);
    bits += 32;
  }
  return bits;
}

/** SHA-256 of `text` (printable ASCII) as 8 big-endian 32-bit words. */
export function sha256Words(text) {
  const bytes = ascii(text);
  const blocks = Math.ceil((bytes.length + 9) / 64);
  const padded = new Uint8Array(blocks * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const bits = bytes.length * 8;
  padded[padded.length - 4] = bits >>> 24; padded[padded.length - 3] = bits >>> 16;
  padded[padded.length - 2] = bits >>> 8; padded[padded.length - 1] = bits;
  const h = IV.slice();
  for (let at = 0; at < padded.length; at += 64) compress(h, padded, at);
  return h.map((w) => w >>> 0);
}

/** The leading zero bits of the SHA-256 of `solution`: the work it shows. */
export function workOf(solution) {
  return leadingZeroBits(sha256Words(solution));
}

/** Finds the first nonce, counting from 0, whose solution `<challenge>:<nonce>` has at
 * least `difficulty` leading zero bits, and returns that solution (the value of the
 * `x-wr-pow` header). `onProgress(hashesTried)` is called every 16,384 hashes; it may
 * return `false` to give up (the solver then returns `null`). */
export function solveChallenge(challenge, difficulty, onProgress = () => true) {
  if (!Number.isInteger(difficulty) || difficulty < 1 || difficulty > 28) {
    throw new Error('wr-pow: difficulty is a whole number from 1 to 28');
  }
  const prefix = ascii(challenge + ':');
  // The blocks made only of the challenge are hashed once (the midstate); each nonce
  // costs the one or two blocks of the tail.
  const full = Math.floor(prefix.length / 64) * 64;
  const mid = IV.slice();
  for (let at = 0; at < full; at += 64) compress(mid, prefix, at);
  const tail = new Uint8Array(128);
  const rest = prefix.length - full;
  tail.set(prefix.subarray(full));
  const h = new Array(8);
  for (let nonce = 0; nonce < Number.MAX_SAFE_INTEGER; nonce++) {
    const digits = String(nonce);
    let n = rest;
    for (let i = 0; i < digits.length; i++) tail[n++] = digits.charCodeAt(i);
    const blocks = n + 9 <= 64 ? 1 : 2;
    tail.fill(0, n, blocks * 64);
    tail[n] = 0x80;
    const bits = (prefix.length + digits.length) * 8;
    const end = blocks * 64;
    tail[end - 4] = bits >>> 24; tail[end - 3] = bits >>> 16; tail[end - 2] = bits >>> 8; tail[end - 1] = bits;
    for (let i = 0; i < 8; i++) h[i] = mid[i];
    compress(h, tail, 0);
    if (blocks === 2) compress(h, tail, 64);
    if (leadingZeroBits(h) >= difficulty) return challenge + ':' + digits;
    if ((nonce & 0x3fff) === 0x3fff && onProgress(nonce + 1) === false) return null;
  }
  return null;
}
