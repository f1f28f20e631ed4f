// A minimal event emitter that works the same in browsers and Node (no dependency). A
// listener that throws does not stop the others: the error is reported on the console.

export class Emitter {
  #listeners = new Map();

  /**
   * Calls `listener` for every `name` event; returns a function that removes it.
   * @param {string} name
   * @param {(...args: any[]) => void} listener
   */
  on(name, listener) {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => this.off(name, listener);
  }

  /** Calls `listener` for the next `name` event only. */
  once(name, listener) {
    const off = this.on(name, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  off(name, listener) {
    this.#listeners.get(name)?.delete(listener);
  }

  /** Whether anyone listens for `name`. */
  listens(name) {
    return (this.#listeners.get(name)?.size ?? 0) > 0;
  }

  emit(name, ...args) {
    for (const listener of [...(this.#listeners.get(name) ?? [])]) {
      try {
        listener(...args);
      } catch (e) {
        console.error(`presence-gateway-client: a '${name}' listener threw`, e);
      }
    }
  }
}
