"""Order book structures: price levels as FIFO linked lists, a side as sorted levels, stop books.

A side keeps ``keys``, its level prices as sort keys in ascending order with the best level
last (the key is the price for bids and minus the price for asks), so the best level is
``keys[-1]`` and removing it is a pop from the end. Adding a new level is a ``bisect.insort``;
books hold tens to a few thousand levels, where the memmove is cheaper than any tree in Python.
"""

from __future__ import annotations

from bisect import insort

from engine.order import Order


class Level:
    """Orders at one price in time priority; ``qty`` is the visible quantity (what L2 shows)."""

    __slots__ = ("count", "head", "price", "qty", "tail")

    def __init__(self, price: int) -> None:
        self.price = price
        self.head: Order | None = None
        self.tail: Order | None = None
        self.qty = 0
        self.count = 0

    def append(self, order: Order) -> None:
        tail = self.tail
        order.prev = tail
        order.next = None
        if tail is None:
            self.head = order
        else:
            tail.next = order
        self.tail = order
        self.qty += order.visible
        self.count += 1

    def unlink(self, order: Order) -> None:
        """Take the order out of the list; the caller adjusts ``qty`` for what it had visible."""
        prev = order.prev
        nxt = order.next
        if prev is None:
            self.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            self.tail = prev
        else:
            nxt.prev = prev
        order.prev = None
        order.next = None
        self.count -= 1

    def orders(self) -> list[Order]:
        out: list[Order] = []
        node = self.head
        while node is not None:
            out.append(node)
            node = node.next
        return out


class BookSide:
    """One side of a book. ``sign`` is +1 for bids and -1 for asks (see the module docstring)."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def best(self) -> Level | None:
        keys = self.keys
        if not keys:
            return None
        return self.levels[keys[-1] * self.sign]

    def add(self, order: Order) -> None:
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = Level(price)
            self.levels[price] = level
            insort(self.keys, price * self.sign)
        level.append(order)

    def remove(self, order: Order) -> None:
        """Remove a resting order (any position) and drop its level if it empties."""
        level = self.levels[order.price]
        level.unlink(order)
        level.qty -= order.visible
        if level.count == 0:
            self.drop_level(level)

    def drop_level(self, level: Level) -> None:
        del self.levels[level.price]
        key = level.price * self.sign
        keys = self.keys
        if keys[-1] == key:
            keys.pop()
        else:
            keys.remove(key)

    def depth(self, n: int) -> list[tuple[int, int, int]]:
        """The best ``n`` levels as (price, visible qty, order count), best first."""
        out: list[tuple[int, int, int]] = []
        levels = self.levels
        sign = self.sign
        for key in reversed(self.keys[-n:] if n > 0 else self.keys):
            level = levels[key * sign]
            out.append((level.price, level.qty, level.count))
        return out

    def orders(self) -> list[Order]:
        """Every resting order, best price first, time priority within a price."""
        out: list[Order] = []
        for key in reversed(self.keys):
            out.extend(self.levels[key * self.sign].orders())
        return out


class StopBook:
    """Stop orders waiting for the last trade price, in trigger order.

    ``up`` holds orders that trigger when the last price rises to their stop price or above
    (buy stop-loss, sell take-profit); ``down`` those that trigger when it falls to it or below.
    Within a stop price, orders keep their time of acceptance.
    """

    __slots__ = ("down", "down_keys", "up", "up_keys")

    def __init__(self) -> None:
        self.up: dict[int, list[Order]] = {}
        self.up_keys: list[int] = []  # ascending stop prices; the next to trigger is first
        self.down: dict[int, list[Order]] = {}
        self.down_keys: list[int] = []  # ascending stop prices; the next to trigger is last

    def add(self, order: Order, rising: bool) -> None:
        table = self.up if rising else self.down
        keys = self.up_keys if rising else self.down_keys
        bucket = table.get(order.stop_price)
        if bucket is None:
            table[order.stop_price] = [order]
            insort(keys, order.stop_price)
        else:
            bucket.append(order)

    def remove(self, order: Order, rising: bool) -> None:
        table = self.up if rising else self.down
        keys = self.up_keys if rising else self.down_keys
        bucket = table[order.stop_price]
        bucket.remove(order)
        if not bucket:
            del table[order.stop_price]
            keys.remove(order.stop_price)

    def pop_triggered(self, last: int, out: list[Order]) -> None:
        """Move every order whose condition ``last`` meets to ``out``, nearest stop price first."""
        up_keys = self.up_keys
        while up_keys and up_keys[0] <= last:
            out.extend(self.up.pop(up_keys.pop(0)))
        down_keys = self.down_keys
        while down_keys and down_keys[-1] >= last:
            out.extend(self.down.pop(down_keys.pop()))

    def orders(self) -> list[Order]:
        out: list[Order] = []
        for key in self.up_keys:
            out.extend(self.up[key])
        for key in reversed(self.down_keys):
            out.extend(self.down[key])
        return out

    def __len__(self) -> int:
        return sum(len(b) for b in self.up.values()) + sum(len(b) for b in self.down.values())
