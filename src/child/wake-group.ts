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
 * because nobody else does; or in JOB_ASSIGN → a parked one is woken to take over).
 * - NO_JOB: sleep if nobody in the group sleeps, else park.
 * - A sleeper leaves SLEEPING (NOOP, lost socket, close): if it is not grabbing right away and nobody
 *   else sleeps, wake a parked one, which grabs and so takes over.
 * - JOB_ASSIGN: wake one parked connection. Work may be queued behind this job, and the assigned
 *   connection no longer listens; the woken one grabs, so bursts ramp up one slot per assignment
 *   (doubling, since every new assignment wakes another) and a lone job costs one extra GRAB/NO_JOB.
 * gearmand answers PRE_SLEEP with an immediate NOOP when work is already queued, so a job queued
 * between a NO_JOB and the PRE_SLEEP that follows it is not missed either.
 *
 * All slots of a generation register the same functions, so any of them can stand in for the others;
 * slots of a replaced generation (other functions) keep their own groups.
 */
/** What the group needs from a connection (GearmanConnection implements it). */
export interface WakeMember {
  /** Whether the connection's slot would grab on it right now if it were READY. */
  readonly slotCanGrab: boolean;
  /** PARKED → READY, and tell the slot (which grabs if it can). */
  unpark(): void;
}

export class WakeGroup {
  /** The connection that sent PRE_SLEEP (admit lets only one sleep; a Set keeps leave() simple). */
  readonly #sleepers = new Set<WakeMember>();
  /** Parked connections, most recently parked last: waking from the top keeps the same few connections warm. */
  readonly #parked: WakeMember[] = [];
  /** How many times a parked connection was woken (tests and the bench read it). */
  #wakes = 0;

  /** NO_JOB on `member`: true → it sends PRE_SLEEP and sleeps; false → it parks. */
  admit(member: WakeMember): boolean {
    if (this.#sleepers.size === 0) {
      this.#sleepers.add(member);
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
    if (this.#sleepers.delete(member)) {
      if (!listening && this.#sleepers.size === 0) this.#wakeOne();
      return;
    }
    const index = this.#parked.lastIndexOf(member);
    if (index !== -1) this.#parked.splice(index, 1);
  }

  /** JOB_ASSIGN on a member: someone else should look for the next job. */
  assigned(): void {
    if (this.#parked.length > 0) this.#wakeOne();
  }

  get sleeping(): number {
    return this.#sleepers.size;
  }

  get parked(): number {
    return this.#parked.length;
  }

  get wakes(): number {
    return this.#wakes;
  }

  /**
   * Unparks the most recently parked connection whose slot can grab now. If no parked slot can (with
   * several servers a slot may be busy with another server's job), all of them become READY instead:
   * each grabs as soon as its slot is free, which is what an unparked world would do.
   */
  #wakeOne(): void {
    const parked = this.#parked;
    for (let i = parked.length - 1; i >= 0; i--) {
      const member = parked[i] as WakeMember;
      if (!member.slotCanGrab) continue;
      parked.splice(i, 1);
      this.#wakes++;
      member.unpark();
      return;
    }
    const all = parked.splice(0, parked.length);
    this.#wakes += all.length;
    for (const member of all) member.unpark();
  }
}
