/** The proof-of-work challenge of a `403 POW_REQUIRED` join answer (`error.pow`). */
export interface PowChallenge {
  challenge: string;
  /** Leading zero bits of SHA-256 the solution must have (1–28). */
  difficulty: number;
  algorithm: 'sha256-leading-zero-bits';
  /** Unix seconds after which a solution is refused. */
  expires_at: number;
  /** The request header to send the solution in (`x-wr-pow`). */
  header: string;
}

/** Finds `<challenge>:<nonce>` with at least `difficulty` leading zero bits (about
 * 2^difficulty hashes). `onProgress(hashesTried)` every 16,384 hashes; returning
 * `false` gives up (then `null`). */
export function solveChallenge(
  challenge: string,
  difficulty: number,
  onProgress?: (hashesTried: number) => boolean | void,
): string | null;

/** The leading zero bits of the SHA-256 of `solution`. */
export function workOf(solution: string): number;

/** SHA-256 of printable ASCII `text`, as 8 big-endian 32-bit words. */
export function sha256Words(text: string): number[];
