/**
 * How guessable an `encryptionKey` is: a conservative entropy estimate, so passphrases, repeats and
 * keyboard runs are refused at startup.
 */

/** Bits a secret must be estimated to hold to be accepted as `encryptionKey` (256 bits of HKDF input key). */
export const MIN_KEY_BITS = 128;

const KEYBOARD_ROWS = [
  'qwertyuiop',
  'asdfghjkl',
  'zxcvbnm',
  '1234567890',
  '!@#$%^&*()',
  'qwertzuiop',
  'azertyuiop',
  'yxcvbnm',
  // Column walks.
  '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/',
  '!qaz@wsx#edc$rfv%tgb^yhn&ujm*ik<(ol>)p:?',
];
const KEYBOARD = [...KEYBOARD_ROWS, ...KEYBOARD_ROWS.map((r) => [...r].reverse().join(''))];

/** Size of the alphabet the characters of `s` appear to come from (hex keys count as 16). */
function alphabetSize(s: string): number {
  if (/^[0-9a-f]+$/.test(s) || /^[0-9A-F]+$/.test(s)) return 16;
  let pool = 0;
  if (/[a-z]/.test(s)) pool += 26;
  if (/[A-Z]/.test(s)) pool += 26;
  if (/[0-9]/.test(s)) pool += 10;
  if (/[\x20-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(s)) pool += 33;
  if (/[^\x20-\x7e]/.test(s)) pool += 100;
  return Math.max(pool, 2);
}

/**
 * Bits of `s` when it is read as literal characters, runs and repeats, left to right: at each position
 * the longest of a repeat of earlier text, an alphabet or digit run (`abcd`, `9876`) or a keyboard run
 * (`qwerty`) of 3 or more characters costs a few bits for its position and length; any other character
 * costs log2 of the alphabet.
 */
function patternBits(s: string, pool: number): number {
  const perChar = Math.log2(pool);
  let bits = 0;
  let i = 0;
  while (i < s.length) {
    let best = 0;
    let cost = perChar;
    // A repeat of text seen before (overlapping allowed: "aaaa", "abcabcabc").
    let len = 0;
    while (i + len < s.length && s.indexOf(s.slice(i, i + len + 1)) < i) len++;
    if (len >= 3) [best, cost] = [len, 1 + Math.log2(i + 1) + Math.log2(len)];
    // A run with a constant step of +1 or -1 (alphabet, digits).
    const step = s.charCodeAt(i + 1) - s.charCodeAt(i);
    if (step === 1 || step === -1) {
      let run = 2;
      while (i + run < s.length && s.charCodeAt(i + run) - s.charCodeAt(i + run - 1) === step) run++;
      if (run >= 3 && run > best) [best, cost] = [run, perChar + 1 + Math.log2(run)];
    }
    // A run along a keyboard row, either way.
    let kb = 0;
    while (i + kb < s.length && KEYBOARD.some((row) => row.includes(s.slice(i, i + kb + 1).toLowerCase()))) kb++;
    if (kb >= 3 && kb > best) [best, cost] = [kb, 7 + Math.log2(kb)];
    bits += cost;
    i += Math.max(best, 1);
  }
  return bits;
}

/** Letters that read like a word of a language (enough vowels), e.g. `horse`, `encryptionkey`. */
const wordLike = (t: string) => t.length >= 3 && /^[a-z]+$/.test(t) && (t.match(/[aeiou]/g)?.length ?? 0) / t.length >= 0.25;

/**
 * Bits of `s` read as words: split at separators, digits and case changes; a token that reads like
 * words costs about 2.3 bits a letter (some 11 bits a word of a passphrase list), a token seen before a
 * few bits, separators 2 bits, anything else its {@link patternBits}.
 */
function wordBits(s: string, pool: number): number {
  const tokens = s.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[^A-Za-z0-9]/g) ?? [];
  const seen = new Set<string>();
  let bits = 0;
  for (const token of tokens) {
    const lower = token.toLowerCase();
    if (seen.has(lower)) bits += 1 + Math.log2(seen.size + 1);
    else if (/^[\s\-_.,:;|~]$/.test(token)) bits += 2;
    else bits += Math.min(patternBits(token, pool), wordLike(lower) ? 2.3 * lower.length : Infinity);
    seen.add(lower);
  }
  return bits;
}

/**
 * A conservative estimate of the entropy of a secret, in bits: the least of a character-class estimate
 * (length × log2 of the alphabet), a pattern estimate (repeats, alphabet, digit and keyboard runs) and a
 * word estimate (passphrases). Base64, base64url or hex of 32 random bytes estimate far above
 * {@link MIN_KEY_BITS}; passphrases of words and repeated patterns far below.
 */
export function estimateKeyBits(key: string): number {
  const pool = alphabetSize(key);
  return Math.min(key.length * Math.log2(pool), patternBits(key, pool), wordBits(key, pool));
}
