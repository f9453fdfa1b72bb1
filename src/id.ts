import { randomInt } from "node:crypto";

let lastMillis = 0;
let counter = 0;

/**
 * newId returns a new ID in the style of ZITADEL's: a decimal string of about
 * 18 digits that sorts by creation time within one process (milliseconds,
 * then a 12-bit counter, then 10 random bits against collisions between
 * processes).
 */
export function newId(): string {
  const now = Date.now();
  if (now <= lastMillis) {
    counter++;
    if (counter > 0xfff) {
      lastMillis++;
      counter = 0;
    }
  } else {
    lastMillis = now;
    counter = 0;
  }
  const id = (BigInt(lastMillis) << 22n) | (BigInt(counter) << 10n) | BigInt(randomInt(1024));
  return id.toString();
}
