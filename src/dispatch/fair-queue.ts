/**
 * FairQueueOptions configures createFairQueue.
 */
export interface FairQueueOptions<T> {
  /** Items running at once, in all lanes together. */
  readonly maxRunning: number;
  /** Items running at once in one lane; default maxRunning (no per-lane limit). */
  readonly maxRunningPerLane?: number;
  /** Items waiting, in all lanes together; offer refuses more. */
  readonly maxWaiting: number;
  /** The lane of an item, for example the ID of the target it calls. */
  readonly laneOf: (item: T) => string;
  /** Runs an item. Must not reject. */
  readonly run: (item: T) => Promise<void>;
  /** Called each time an item has finished and the queue has started what it could. Default nothing. */
  readonly onSettled?: () => void;
}

/**
 * FairQueue runs items with bounded concurrency, taking turns between lanes:
 * the items of a lane start in the order they were offered, free slots go
 * round the lanes that have items waiting, and a lane whose items hang holds
 * at most maxRunningPerLane slots, so the other lanes keep moving.
 */
export interface FairQueue<T> {
  /** offer adds an item to its lane; false (and nothing added) when maxWaiting items already wait. */
  offer(item: T): boolean;
  /** pump starts waiting items while there are free slots they may take. */
  pump(): void;
  /** Items running now. */
  readonly running: number;
  /** Items waiting now. */
  readonly waiting: number;
}

interface Lane<T> {
  readonly name: string;
  items: (T | undefined)[];
  head: number;
  running: number;
}

/**
 * createFairQueue returns an empty FairQueue. Items start only in pump(): the
 * caller decides when (after the current I/O callbacks, for example); a
 * finished item's slot is refilled at once.
 */
export function createFairQueue<T>(options: FairQueueOptions<T>): FairQueue<T> {
  const perLane = options.maxRunningPerLane ?? options.maxRunning;
  const lanes = new Map<string, Lane<T>>();
  // The lanes with items waiting, taking turns from `turn` on.
  const ready: Lane<T>[] = [];
  let turn = 0;
  let running = 0;
  let waiting = 0;

  const finish = (lane: Lane<T>) => {
    running--;
    lane.running--;
    if (lane.running === 0 && lane.head >= lane.items.length) lanes.delete(lane.name);
    pump();
    options.onSettled?.();
  };

  function pump(): void {
    // Stops when every slot is taken, or a whole round of the ready lanes started nothing.
    let passed = 0;
    while (running < options.maxRunning && ready.length > 0 && passed < ready.length) {
      if (turn >= ready.length) turn = 0;
      const lane = ready[turn]!;
      if (lane.running >= perLane) {
        turn++;
        passed++;
        continue;
      }
      passed = 0;
      const item = lane.items[lane.head]!;
      lane.items[lane.head++] = undefined;
      waiting--;
      if (lane.head >= lane.items.length) {
        lane.items = [];
        lane.head = 0;
        ready.splice(turn, 1); // the next lane moves into this turn
      } else {
        if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
          lane.items.splice(0, lane.head);
          lane.head = 0;
        }
        turn++;
      }
      running++;
      lane.running++;
      void options.run(item).finally(() => finish(lane));
    }
  }

  return {
    offer(item) {
      if (waiting >= options.maxWaiting) return false;
      const name = options.laneOf(item);
      let lane = lanes.get(name);
      if (lane === undefined) {
        lane = { name, items: [], head: 0, running: 0 };
        lanes.set(name, lane);
      }
      if (lane.head >= lane.items.length) ready.push(lane);
      lane.items.push(item);
      waiting++;
      return true;
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
