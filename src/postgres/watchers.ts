/**
 * Watchers is the set of functions a PostgreSQL-backed component calls when
 * something changed (ActionStore.watch, EventQueue.watch).
 */
export interface Watchers {
  /** add registers `listener` and returns the function that removes it again. */
  add(listener: () => void): () => void;
  /**
   * notify calls every listener registered now, once each; a listener that
   * throws does not keep the others from being called.
   */
  notify(): void;
  /** clear removes every listener. */
  clear(): void;
}

/**
 * createWatchers returns an empty Watchers set.
 */
export function createWatchers(): Watchers {
  const listeners = new Set<() => void>();
  return {
    add(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    notify() {
      for (const listener of [...listeners]) {
        try {
          listener();
        } catch {
          // A watcher's failure is its own; what it was told of has happened.
        }
      }
    },
    clear() {
      listeners.clear();
    },
  };
}
