/**
 * A map holding its `max` most recently set entries, for what a process remembers of an unbounded
 * stream of keys (flows, expressions): setting a key again makes it the most recent, and setting
 * one past the bound drops the least recent. Memory stays bounded whatever comes in.
 */
export class RecentMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > this.max) super.delete(this.keys().next().value as K);
    return this;
  }
}

/** A set holding its `max` most recently added keys (see RecentMap). */
export class RecentSet<K> extends Set<K> {
  constructor(readonly max: number) {
    super();
  }

  override add(key: K): this {
    super.delete(key);
    super.add(key);
    if (this.size > this.max) super.delete(this.values().next().value as K);
    return this;
  }
}
