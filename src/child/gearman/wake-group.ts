/**
 * The idle connections of one generation of slots to one gearmand: at most one of them sleeps at
 * gearmand (PRE_SLEEP), the others park here, unknown to gearmand's wake-up list.
 *
 * Why: gearmand NOOPs *every* sleeping worker of a function for each job it queues (unless the
 * operator set --worker-wakeup); each woken worker sends GRAB_JOB_UNIQ, one wins, the rest get NO_JOB
 * and PRE_SLEEP again. With S idle slots a lone job costs S wake-ups in gearmand and here — measured
 * with bare echo workers at 1,000 connections, 23.7 ms per foreground job instead of ~0.1 ms. A
 * worker that is registered (CAN_DO) but neither grabbing nor sleeping is never NOOPed, so one
 * sleeping "sentinel" per server is enough to hear about new work, and this group hands the news on.
 *
 * The rule that keeps every job heard (the invariant): while any connection of the group is parked,
 * another one is asleep at gearmand or has a GRAB outstanding (a GRAB ends in NO_JOB → it sleeps,
 * because nobody else does; or in JOB_ASSIGN → a parked one takes over).
 * - NO_JOB: sleep if nobody in the group sleeps, else park.
 * - A sleeper leaves SLEEPING (NOOP, lost socket, close): if it is not grabbing right away and nobody
 *   else sleeps, a parked one is promoted: it sends PRE_SLEEP and becomes the sleeper.
 * - JOB_ASSIGN with nobody asleep (the sleeper was woken for this job): promote a parked one. One
 *   PRE_SLEEP, and gearmand NOOPs it at once if more work is queued, so a lone job costs exactly the
 *   packets a single worker would exchange.
 * - JOB_ASSIGN while another connection sleeps: this connection grabbed right after finishing a job
 *   and found more, so work is backed up: unpark one to GRAB as well. Bursts ramp up by doubling,
 *   since every assignment brings in one more slot.
 * - JOB_ASSIGN on the connection promoted last, with no NO_JOB since: gearmand NOOPed its PRE_SLEEP at
 *   once, so a backlog is waiting. Until the next NO_JOB each assignment unparks one to GRAB, and
 *   nobody needs to sleep: the GRAB outstanding hears of the work. Behind a slow endpoint no slot
 *   finishes a job during a burst, so the rule above never fires and the burst reaches one slot after
 *   another: each costs a GRAB → JOB_ASSIGN round trip this way, not PRE_SLEEP → NOOP → GRAB →
 *   JOB_ASSIGN (bench/e2e slow5000: the 5,000th first request out after 0.53 s instead of 0.70–0.88).
 *   One after another on purpose: the slots' first jobs stay spread in time, and so do their answers.
 *   Doubling here sent 5,000 in 0.39 s, but they came back as one wave the child answered late every
 *   second of the run (0.809 of the ideal rate against 0.869; docs/performance.md, "The burst behind
 *   a slow endpoint"). A lone job on a quiet queue costs what it did: the slot that ran the one before
 *   it ended with a NO_JOB, which ends the backlog.
 * - A GRAB that ends without an answer (its socket lost, or dropped because a late assignment found
 *   its slot busy) with nobody asleep: promote a parked one, as for a sleeper that left.
 * gearmand answers PRE_SLEEP with an immediate NOOP when work is already queued, so a job queued
 * between a NO_JOB (or a promotion) and the PRE_SLEEP that follows it is not missed either.
 *
 * All slots of a generation register the same functions, so any of them can stand in for the others;
 * slots of a replaced generation (other functions) keep their own groups. A connection whose
 * functions were changed apart from the others' (GearmanConnection.setAbilities, `grouped` false)
 * leaves the group: it never parks and always sleeps at gearmand itself; if it was the sleeper, it
 * leaves as a sleeper does and a parked one is promoted.
 */
/** What the group needs from a connection (GearmanConnection implements it). */
export interface WakeMember {
  /** Whether the connection's slot would grab on it right now if it were READY. */
  readonly slotCanGrab: boolean;
  /** PARKED → READY, and tell the slot (which grabs if it can). */
  unpark(): void;
  /** PARKED → SLEEPING: send PRE_SLEEP. False if the connection was not parked. */
  sleep(): boolean;
}

export class WakeGroup {
  /** The one connection that sent PRE_SLEEP, if any. */
  #sleeper: WakeMember | null = null;
  /** Parked connections, most recently parked last: waking from the top keeps the same few connections warm. */
  readonly #parked: WakeMember[] = [];
  /** How many times a parked connection was unparked or promoted (tests read it). */
  #wakes = 0;
  /** The member being unparked or promoted right now: already off the list, so its leave() need not look for it. */
  #waking: WakeMember | null = null;
  /** The member promoted to sleeper last, until the next NO_JOB: its assignment means work is queued behind it. */
  #lastPromoted: WakeMember | null = null;
  /** A backlog is being drained (set by that assignment, cleared by the next NO_JOB): assignments unpark, none sleeps. */
  #backlog = false;

  /** NO_JOB on `member`: true → it sends PRE_SLEEP and sleeps; false → it parks. */
  admit(member: WakeMember): boolean {
    this.#lastPromoted = null;
    this.#backlog = false;
    if (this.#sleeper === null) {
      this.#sleeper = member;
      return true;
    }
    this.#parked.push(member);
    return false;
  }

  /**
   * `member` left SLEEPING or PARKED (woken, re-grabbing, lost, closing). `listening`: it has a GRAB
   * outstanding now, so it will hear of queued work itself.
   */
  leave(member: WakeMember, listening: boolean): void {
    if (member === this.#sleeper) {
      this.#sleeper = null;
      if (!listening) this.#promote();
      return;
    }
    // A search of thousands of parked connections otherwise, for one the group took off the list itself.
    if (member === this.#waking) return;
    const index = this.#parked.lastIndexOf(member);
    if (index !== -1) this.#parked.splice(index, 1);
  }

  /** A member's outstanding GRAB ended unanswered (lost or dropped socket): if nobody sleeps, a parked one must. */
  listenerLost(): void {
    if (this.#sleeper === null && this.#parked.length > 0) this.#promote();
  }

  /** JOB_ASSIGN on `member`: someone else should listen for (or look for) the next job. */
  assigned(member: WakeMember): void {
    if (member === this.#lastPromoted) this.#backlog = true;
    if (this.#parked.length === 0) return;
    if (this.#sleeper === null && !this.#backlog) this.#promote();
    else this.#wakeOne();
  }

  /** Whether a backlog is being drained (assignments unpark rather than promote); tests read it. */
  get backlog(): boolean {
    return this.#backlog;
  }

  get sleeping(): number {
    return this.#sleeper === null ? 0 : 1;
  }

  get parked(): number {
    return this.#parked.length;
  }

  get wakes(): number {
    return this.#wakes;
  }

  /**
   * Unparks the most recently parked connection whose slot can grab now, to GRAB. If no parked slot can (with
   * several servers a slot may be busy with another server's job), all of them become READY instead:
   * each grabs as soon as its slot is free, which is what an unparked world would do.
   */
  #wakeOne(): void {
    const member = this.#takeGrabCapable();
    if (member === null) return this.#unparkAll();
    this.#wakes++;
    this.#wake(member, () => member.unpark());
  }

  /** Makes a parked connection whose slot can grab the sleeper (PRE_SLEEP); see #wakeOne for the fallback. */
  #promote(): void {
    const member = this.#takeGrabCapable();
    if (member === null) return this.#unparkAll();
    this.#wakes++;
    // Set only after sleep(): its transition out of PARKED reports a leave() that must not find it.
    if (this.#wake(member, () => member.sleep())) this.#sleeper = this.#lastPromoted = member;
  }

  /** Runs `change` (an unpark or a sleep) on a member already taken off the parked list. */
  #wake<T>(member: WakeMember, change: () => T): T {
    this.#waking = member;
    try {
      return change();
    } finally {
      this.#waking = null;
    }
  }

  /** The most recently parked connection whose slot can grab now, taken off the list; null if none. */
  #takeGrabCapable(): WakeMember | null {
    const parked = this.#parked;
    for (let i = parked.length - 1; i >= 0; i--) {
      const member = parked[i] as WakeMember;
      if (member.slotCanGrab) {
        parked.splice(i, 1);
        return member;
      }
    }
    return null;
  }

  #unparkAll(): void {
    const all = this.#parked.splice(0, this.#parked.length);
    this.#wakes += all.length;
    for (const member of all) this.#wake(member, () => member.unpark());
  }
}
