// A set of records kept as a doubly linked list through the records
// themselves: a record costs its two link fields (16 bytes) instead of a Set
// entry (30-40 bytes with the hash table's slack), which is what one
// subscriber of a channel costs (issue 21). Each record is in at most one
// list at a time. The Set subset fan-out uses: add, delete, has, size,
// iteration in insertion order (deleting the record just yielded is safe;
// deleting others while iterating is not: copy first).

export interface Linked<T> {
  prevLink: T | null;
  nextLink: T | null;
}

export class LinkList<T extends Linked<T>> implements Iterable<T> {
  private head: T | null = null;
  private tail: T | null = null;
  size = 0;

  has(x: T): boolean {
    return x.prevLink !== null || this.head === x;
  }

  add(x: T): this {
    if (this.has(x)) return this;
    x.prevLink = this.tail;
    x.nextLink = null;
    if (this.tail) this.tail.nextLink = x;
    else this.head = x;
    this.tail = x;
    this.size++;
    return this;
  }

  delete(x: T): boolean {
    if (!this.has(x)) return false;
    const { prevLink: p, nextLink: n } = x;
    if (p) p.nextLink = n;
    else this.head = n;
    if (n) n.prevLink = p;
    else this.tail = p;
    x.prevLink = x.nextLink = null;
    this.size--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let x = this.head; x !== null; ) {
      const next: T | null = x.nextLink;
      yield x;
      x = next;
    }
  }

  values(): IterableIterator<T> {
    return this[Symbol.iterator]();
  }
}
