/**
 * Watchers is the set of functions a PostgreSQL-backed component calls when
 * something changed (ActionStore.watch with what changed, EventQueue.watch
 * with nothing).
 */
export interface Watchers<T = void> {
  /** add registers `listener` and returns the function that removes it again. */
  add(listener: (value: T) => void): () => void;
  /**
   * notify calls every listener registered now, once each, with `value`; a
   * listener that throws does not keep the others from being called.
   */
  notify(value: T): void;
  /** clear removes every listener. */
  clear(): void;
}

/**
 * createWatchers returns an empty Watchers set.
 */
export function createWatchers<T = void>(): Watchers<T> {
  const listeners = new Set<(value: T) => void>();
  return {
    add(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    notify(value) {
      for (const listener of [...listeners]) {
        try {
          listener(value);
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
