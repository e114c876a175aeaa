// Owns: the clock credentials are checked against — wall-clock time that never runs backwards
// (security case 7.09). Token, session and nonce expiry compare stored wall-clock instants with
// "now"; if the system clock is set back (a bad NTP step, an operator, a VM restored from a
// snapshot) an expired token would be accepted again. This clock follows Date.now() while it moves
// forward and, after a step back, carries on from where it was at the monotonic clock's pace until
// the wall clock catches up. A step forward is followed (credentials then expire early: closed,
// not open). PURE apart from the two clocks it is given.

export type Clock = () => number;

export function createExpiryClock(wall: Clock = Date.now, monotonic: Clock = () => performance.now()): Clock {
  let baseWall = wall();
  let baseMono = monotonic();
  return () => {
    const w = wall();
    const m = monotonic();
    const carried = baseWall + (m - baseMono);
    if (w >= carried) {
      baseWall = w;
      baseMono = m;
      return w;
    }
    return Math.floor(carried);
  };
}

/** The process's expiry clock: the default "now" of every credential check. */
export const expiryNow: Clock = createExpiryClock();
