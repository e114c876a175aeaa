// Owns: the clock credentials are checked against — wall-clock time that never runs backwards
// (security case 7.09). Token, session and nonce expiry compare stored wall-clock instants with
// "now"; if the system clock is set back (a bad NTP step, an operator, a VM restored from a
// snapshot) an expired token would be accepted again. This clock follows Date.now() while it moves
// forward and, after a step back, carries on from where it was at the monotonic clock's pace until
// the wall clock catches up. A step forward is followed (credentials then expire early: closed,
// not open). A step back larger than `maxCarryMs` (15 minutes) is followed too: that is a clock
// being corrected (a VM that booted a day ahead, then NTP), and carrying a day would refuse every
// credential issued meanwhile until a restart. PURE apart from the two clocks it is given.

export type Clock = () => number;

/** How far ahead of the wall clock the expiry clock may carry on after a step back. */
export const MAX_CARRY_MS = 15 * 60_000;

export function createExpiryClock(wall: Clock = Date.now, monotonic: Clock = () => performance.now(), maxCarryMs = MAX_CARRY_MS): Clock {
  let baseWall = wall();
  let baseMono = monotonic();
  return () => {
    const w = wall();
    const m = monotonic();
    const carried = baseWall + (m - baseMono);
    if (w >= carried || carried - w > maxCarryMs) {
      baseWall = w;
      baseMono = m;
      return w;
    }
    return Math.floor(carried);
  };
}

/** The process's expiry clock: the default "now" of every credential check. */
export const expiryNow: Clock = createExpiryClock();
