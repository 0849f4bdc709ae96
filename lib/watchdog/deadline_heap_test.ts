import assert from "node:assert/strict";
import { DeadlineHeap, type HeapEntry } from "./deadline_heap.ts";

interface E extends HeapEntry {
  id: number;
}
const entry = (id: number): E => ({ id, deadlineMs: 0, heapIndex: -1 });

Deno.test("DeadlineHeap pops in deadline order after random updates and deletes", () => {
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const heap = new DeadlineHeap<E>();
  const entries = Array.from({ length: 500 }, (_, i) => entry(i));
  const model = new Map<number, number>();
  for (let step = 0; step < 5000; step++) {
    const e = entries[Math.floor(random() * entries.length)];
    if (random() < 0.15) {
      heap.delete(e);
      model.delete(e.id);
    } else {
      const deadline = Math.floor(random() * 10_000);
      heap.set(e, deadline);
      model.set(e.id, deadline);
    }
    assert.equal(heap.size, model.size);
  }
  const expected = [...model.values()].sort((a, b) => a - b);
  const popped: number[] = [];
  for (let e = heap.pop(); e; e = heap.pop()) {
    popped.push(e.deadlineMs);
    assert.equal(e.heapIndex, -1);
  }
  assert.deepEqual(popped, expected);
});

Deno.test("DeadlineHeap peek follows a moved entry", () => {
  const heap = new DeadlineHeap<E>();
  const a = entry(1), b = entry(2);
  heap.set(a, 10);
  heap.set(b, 20);
  assert.equal(heap.peek(), a);
  heap.set(a, 30);
  assert.equal(heap.peek(), b);
  heap.set(a, 5);
  assert.equal(heap.peek(), a);
  assert.ok(heap.has(b));
  heap.delete(b);
  assert.ok(!heap.has(b));
  assert.equal(heap.size, 1);
});
