/**
 * An indexed binary min-heap of deadlines: O(log n) insert, update and remove of any entry, O(1)
 * peek at the earliest deadline. The watchdog keeps one entry per supervised target, so a heartbeat
 * costs one sift, whatever the number of targets.
 *
 * @module
 */

/** An entry the heap can hold: it stores its own position for O(log n) updates. */
export interface HeapEntry {
  /** Absolute monotonic deadline in ms. */
  deadlineMs: number;
  /** Index in the heap array, or -1 when not in the heap. Owned by the heap. */
  heapIndex: number;
}

/** Min-heap ordered by {@linkcode HeapEntry.deadlineMs}. */
export class DeadlineHeap<T extends HeapEntry> {
  #items: T[] = [];

  /** Number of entries. */
  get size(): number {
    return this.#items.length;
  }

  /** The entry with the earliest deadline, or `undefined` when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** True when `entry` is in this heap. */
  has(entry: T): boolean {
    return entry.heapIndex >= 0 && this.#items[entry.heapIndex] === entry;
  }

  /** Inserts `entry` with deadline `deadlineMs`, or moves it there when already present. */
  set(entry: T, deadlineMs: number): void {
    if (!this.has(entry)) {
      entry.deadlineMs = deadlineMs;
      entry.heapIndex = this.#items.length;
      this.#items.push(entry);
      this.#up(entry.heapIndex);
      return;
    }
    const before = entry.deadlineMs;
    entry.deadlineMs = deadlineMs;
    if (deadlineMs < before) this.#up(entry.heapIndex);
    else if (deadlineMs > before) this.#down(entry.heapIndex);
  }

  /** Removes `entry` if present. */
  delete(entry: T): void {
    if (!this.has(entry)) return;
    const index = entry.heapIndex;
    const last = this.#items.pop()!;
    entry.heapIndex = -1;
    if (last === entry) return;
    this.#items[index] = last;
    last.heapIndex = index;
    this.#down(index);
    this.#up(last.heapIndex);
  }

  /** Removes and returns the earliest entry. */
  pop(): T | undefined {
    const top = this.#items[0];
    if (top) this.delete(top);
    return top;
  }

  #up(index: number): void {
    const items = this.#items;
    const entry = items[index];
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = items[parentIndex];
      if (parent.deadlineMs <= entry.deadlineMs) break;
      items[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    items[index] = entry;
    entry.heapIndex = index;
  }

  #down(index: number): void {
    const items = this.#items;
    const n = items.length;
    const entry = items[index];
    for (;;) {
      const left = 2 * index + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && items[right].deadlineMs < items[left].deadlineMs ? right : left;
      if (items[child].deadlineMs >= entry.deadlineMs) break;
      items[index] = items[child];
      items[index].heapIndex = index;
      index = child;
    }
    items[index] = entry;
    entry.heapIndex = index;
  }
}
