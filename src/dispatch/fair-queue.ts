/**
 * FairQueueOptions configures createFairQueue.
 */
export interface FairQueueOptions<T> {
  /** Items running at once, in all groups together. */
  readonly maxRunning: number;
  /** Items running at once in one group; default maxRunning (no per-group limit). */
  readonly maxRunningPerGroup?: number;
  /** Items running at once in one lane; default maxRunning (no per-lane limit). */
  readonly maxRunningPerLane?: number;
  /** Items waiting, in all groups together; offer refuses more. */
  readonly maxWaiting: number;
  /** Items waiting in one group; default maxWaiting (no per-group limit). */
  readonly maxWaitingPerGroup?: number;
  /** The group of an item, for example the instance (tenant) of the target it calls; default one group for all. */
  readonly groupOf?: (item: T) => string;
  /** The lane of an item within its group, for example the ID of the target it calls. */
  readonly laneOf: (item: T) => string;
  /** Runs an item. Must not reject. */
  readonly run: (item: T) => Promise<void>;
  /** Called each time an item has finished and the queue has started what it could. Default nothing. */
  readonly onSettled?: () => void;
}

/**
 * OfferResult is what FairQueue.offer did: "queued", or why it refused the
 * item: "full" (maxWaiting items wait) or "group-full" (maxWaitingPerGroup
 * items of its group wait).
 */
export type OfferResult = "queued" | "full" | "group-full";

/**
 * FairQueue runs items with bounded concurrency, taking turns first between
 * groups, then between the lanes of a group: the items of a lane start in the
 * order they were offered, free slots go round the groups that have items
 * waiting, and within a group round its lanes. A group whose items hang
 * holds at most maxRunningPerGroup slots and a lane at most
 * maxRunningPerLane, so the other groups, and the other lanes of the same
 * group, keep moving; a group may fill at most maxWaitingPerGroup of the
 * waiting room.
 */
export interface FairQueue<T> {
  /** offer adds an item to its lane, unless the waiting room (or its group's share of it) is full. */
  offer(item: T): OfferResult;
  /** pump starts waiting items while there are free slots they may take. */
  pump(): void;
  /** Items running now. */
  readonly running: number;
  /** Items waiting now. */
  readonly waiting: number;
}

interface Lane<T> {
  readonly name: string;
  readonly group: Group<T>;
  items: (T | undefined)[];
  head: number;
  running: number;
}

interface Group<T> {
  readonly name: string;
  readonly lanes: Map<string, Lane<T>>;
  /** The lanes with items waiting, taking turns from `turn` on. */
  readonly ready: Lane<T>[];
  turn: number;
  running: number;
  waiting: number;
}

/**
 * createFairQueue returns an empty FairQueue. Items start only in pump(): the
 * caller decides when (after the current I/O callbacks, for example); a
 * finished item's slot is refilled at once.
 */
export function createFairQueue<T>(options: FairQueueOptions<T>): FairQueue<T> {
  const perGroup = options.maxRunningPerGroup ?? options.maxRunning;
  const perLane = options.maxRunningPerLane ?? options.maxRunning;
  const waitingPerGroup = options.maxWaitingPerGroup ?? options.maxWaiting;
  const groupOf = options.groupOf ?? (() => "");
  const groups = new Map<string, Group<T>>();
  // The groups with items waiting, taking turns from `turn` on.
  const ready: Group<T>[] = [];
  let turn = 0;
  let running = 0;
  let waiting = 0;

  /** forget drops a lane, and its group, that neither run nor wait: idle names hold no memory. */
  const forget = (lane: Lane<T>) => {
    const { group } = lane;
    if (lane.running === 0 && lane.head >= lane.items.length) group.lanes.delete(lane.name);
    if (group.running === 0 && group.waiting === 0 && group.lanes.size === 0) groups.delete(group.name);
  };

  const finish = (lane: Lane<T>) => {
    running--;
    lane.running--;
    lane.group.running--;
    forget(lane);
    pump();
    options.onSettled?.();
  };

  /** nextLane returns the group's next ready lane with a free slot, from its turn on, or undefined. */
  const nextLane = (group: Group<T>): Lane<T> | undefined => {
    for (let tried = 0; tried < group.ready.length; tried++) {
      if (group.turn >= group.ready.length) group.turn = 0;
      const lane = group.ready[group.turn]!;
      if (lane.running < perLane) return lane;
      group.turn++;
    }
    return undefined;
  };

  function pump(): void {
    // Stops when every slot is taken, or a whole round of the ready groups started nothing.
    let passed = 0;
    while (running < options.maxRunning && ready.length > 0 && passed < ready.length) {
      if (turn >= ready.length) turn = 0;
      const group = ready[turn]!;
      const lane = group.running < perGroup ? nextLane(group) : undefined;
      if (lane === undefined) {
        turn++;
        passed++;
        continue;
      }
      passed = 0;
      const item = lane.items[lane.head]!;
      lane.items[lane.head++] = undefined;
      waiting--;
      group.waiting--;
      if (lane.head >= lane.items.length) {
        lane.items = [];
        lane.head = 0;
        group.ready.splice(group.turn, 1); // the group's next lane moves into this turn
      } else {
        if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
          lane.items.splice(0, lane.head);
          lane.head = 0;
        }
        group.turn++;
      }
      if (group.ready.length === 0) {
        ready.splice(turn, 1); // the next group moves into this turn
      } else {
        turn++;
      }
      running++;
      group.running++;
      lane.running++;
      void options.run(item).finally(() => finish(lane));
    }
  }

  return {
    offer(item) {
      if (waiting >= options.maxWaiting) return "full";
      const groupName = groupOf(item);
      let group = groups.get(groupName);
      if (group !== undefined && group.waiting >= waitingPerGroup) return "group-full";
      if (group === undefined) {
        group = { name: groupName, lanes: new Map(), ready: [], turn: 0, running: 0, waiting: 0 };
        groups.set(groupName, group);
      }
      const laneName = options.laneOf(item);
      let lane = group.lanes.get(laneName);
      if (lane === undefined) {
        lane = { name: laneName, group, items: [], head: 0, running: 0 };
        group.lanes.set(laneName, lane);
      }
      if (lane.head >= lane.items.length) {
        group.ready.push(lane);
        if (group.ready.length === 1) ready.push(group);
      }
      lane.items.push(item);
      waiting++;
      group.waiting++;
      return "queued";
    },
    pump,
    get running() {
      return running;
    },
    get waiting() {
      return waiting;
    },
  };
}
