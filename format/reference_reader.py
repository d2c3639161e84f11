#!/usr/bin/env python3
"""Independent reader of compressed-image v1 files (`.cimg`), written from format/SPEC.md only.

It shares no code with the Rust library: it is a cross-check of the specification. It picks
the newest slot that verifies (SPEC §3, §9), validates the catalog, tables and metadata
(§4–§7), decodes every chunk (§8) with python-blosc2, and prints a summary. Section numbers
in comments refer to SPEC.md.

    python format/reference_reader.py FILE [--dump-dir DIR] [--json]

With --dump-dir, writes DIR/<index>.bin per channel (the whole channel, row-major,
little-endian raw element bytes) and DIR/summary.json. Exit status 0 on success, 1 with a
message "error: <Kind>: <reason>" on stderr when the file is refused (Kind is one of the
SPEC's error names: NotACompressedImage, UnsupportedVersion, Corrupted, ChecksumMismatch,
Codec).
"""

import argparse
import json
import os
import struct
import sys
import zlib

# §2
MAGIC = b"\x89CIM\r\n\x1a\n"
MAJOR = 1
# §1, §3
SLOT_PAGE = 4096
SLOT_LEN = 256
REGION_START = 8192
# §4
RECORD_MAGIC = b"CIR1"
RECORD_HEADER_LEN = 32
BLOB, TABLE, META, CATALOG = 1, 2, 3, 4
KIND_NAMES = {BLOB: "BLOB", TABLE: "TABLE", META: "META", CATALOG: "CATALOG"}
# §5
CATALOG_FIXED_LEN = 64
DESCRIPTOR_LEN = 64
MAX_BLOCK_SIZE = 536_866_816
# §5.2
MAX_CHUNK_BYTES = 2**31 - 1 - 32
MAX_CHUNKS = 134_217_727
ADDRESS_MAX = sys.maxsize  # "the reader's address-size integer"
# §5.3: code -> (name, typesize)
DTYPES = {
    1: ("u8", 1),
    2: ("u16", 2),
    3: ("u32", 4),
    4: ("i8", 1),
    5: ("i16", 2),
    6: ("i32", 4),
    7: ("f16", 2),
    8: ("f32", 4),
    9: ("f64", 8),
}
# §5.4: file code -> (name, codec bits in the blosc2 chunk header)
CODECS = {0: ("blosclz", 0), 1: ("lz4", 1), 2: ("lz4hc", 1), 3: ("zstd", 4), 4: ("zlib", 3)}
# §6
TABLE_ENTRY_LEN = 32
ENTRY_DEFAULT, ENTRY_BLOB, ENTRY_FILL = 0, 1, 2


class FormatError(Exception):
    """A file the SPEC says to refuse; `kind` is the SPEC's error name."""

    def __init__(self, kind, reason):
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


def corrupted(reason):
    return FormatError("Corrupted", reason)


def crc32(data):
    """CRC-32/IEEE (§2): zlib's crc32."""
    return zlib.crc32(data) & 0xFFFFFFFF


def u8(b, o):
    return b[o]


def u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def align64(n):
    return (n + 63) // 64 * 64


# ---------------------------------------------------------------------------------------
# §3 Commit slots


def decode_slot(data, page):
    """Decode slot page `page` (0 = A, 1 = B) of the file bytes `data`; raise FormatError."""
    start = page * SLOT_PAGE
    file_len = len(data)
    # 1. inside the file
    if start + SLOT_LEN > file_len:
        raise corrupted(f"slot {'AB'[page]}: file of {file_len} bytes ends inside the slot")
    s = data[start : start + SLOT_LEN]
    # 2. magic
    if s[0:8] != MAGIC:
        raise FormatError("NotACompressedImage", f"slot {'AB'[page]}: wrong magic")
    # 3. CRC
    if crc32(s[0:252]) != u32(s, 252):
        raise corrupted(f"slot {'AB'[page]}: slot CRC mismatch")
    major, minor = u16(s, 8), u16(s, 10)
    # 4. version (only on a slot whose CRC holds)
    if major != MAJOR:
        raise FormatError("UnsupportedVersion", f"slot {'AB'[page]}: major {major}, minor {minor}")
    slot = {
        "page": page,
        "major": major,
        "minor": minor,
        "slot_len": u32(s, 12),
        "generation": u64(s, 16),
        "file_id": u64(s, 24),
        "committed_end": u64(s, 32),
        "durable_end": u64(s, 40),
        "catalog_offset": u64(s, 48),
        "catalog_len": u32(s, 56),
        "catalog_crc": u32(s, 60),
    }
    # 5.
    if slot["slot_len"] != SLOT_LEN:
        raise corrupted(f"slot {'AB'[page]}: slot_len {slot['slot_len']}")
    if slot["generation"] < 1:
        raise corrupted(f"slot {'AB'[page]}: generation 0")
    # 6.
    ce, de = slot["committed_end"], slot["durable_end"]
    if not REGION_START <= ce <= file_len:
        raise corrupted(f"slot {'AB'[page]}: committed_end {ce} outside [8192, {file_len}]")
    if not REGION_START <= de <= ce:
        raise corrupted(f"slot {'AB'[page]}: durable_end {de} outside [8192, {ce}]")
    return slot


# ---------------------------------------------------------------------------------------
# §4 Records


def read_record(data, slot, offset, length, crc, kind, channel_id, aux, what):
    """The payload of a record read through a reference (§4). `aux=None`: not checked here
    (the CATALOG's expected aux is its own channel count, checked by the caller).
    Returns (payload, header aux)."""
    ce = slot["committed_end"]
    # 1. bounds
    if offset % 64 != 0:
        raise corrupted(f"{what}: offset {offset} not 64-aligned")
    if offset < REGION_START:
        raise corrupted(f"{what}: offset {offset} below 8192")
    if offset + RECORD_HEADER_LEN + length > ce:
        raise corrupted(f"{what}: record [{offset}, +{32 + length}) past committed_end {ce}")
    if ce > len(data):
        raise corrupted(f"{what}: committed_end {ce} past the mapped length {len(data)}")
    h = data[offset : offset + RECORD_HEADER_LEN]
    # 2. header
    if h[0:4] != RECORD_MAGIC:
        raise corrupted(f"{what}: no record magic at {offset}")
    if h[4] not in KIND_NAMES:
        raise corrupted(f"{what}: unknown record kind {h[4]}")
    if h[4] != kind:
        raise corrupted(f"{what}: record kind {KIND_NAMES[h[4]]}, expected {KIND_NAMES[kind]}")
    gen, hid, haux, hlen, hcrc = u64(h, 8), u32(h, 16), u32(h, 20), u32(h, 24), u32(h, 28)
    if hid != channel_id:
        raise corrupted(f"{what}: header channel_id {hid}, expected {channel_id}")
    if aux is not None and haux != aux:
        raise corrupted(f"{what}: header aux {haux}, expected {aux}")
    if hlen != length:
        raise corrupted(f"{what}: header payload_len {hlen}, reference {length}")
    if hcrc != crc:
        raise corrupted(f"{what}: header payload_crc {hcrc:#010x}, reference {crc:#010x}")
    if not 1 <= gen <= slot["generation"]:
        raise corrupted(f"{what}: header generation {gen} outside [1, {slot['generation']}]")
    payload = data[offset + RECORD_HEADER_LEN : offset + RECORD_HEADER_LEN + length]
    # 3. payload
    if crc32(payload) != crc:
        raise corrupted(f"{what}: payload CRC mismatch")
    return payload, haux


# ---------------------------------------------------------------------------------------
# §5 Catalog


def parse_catalog(payload, header_aux):
    if len(payload) < CATALOG_FIXED_LEN:
        raise corrupted(f"catalog of {len(payload)} bytes")
    cat = {
        "width": u64(payload, 0),
        "height": u64(payload, 8),
        "count": u32(payload, 16),
        "next_channel_id": u32(payload, 20),
        "flags": u32(payload, 24),
        "names_len": u32(payload, 28),
        "meta_offset": u64(payload, 32),
        "meta_len": u32(payload, 40),
        "meta_crc": u32(payload, 44),
    }
    n = cat["count"]
    if n != header_aux:
        raise corrupted(f"catalog count {n}, header aux {header_aux}")
    if cat["flags"] & ~1:
        raise corrupted(f"catalog flags {cat['flags']:#x} has unknown bits")
    cat["names_present"] = bool(cat["flags"] & 1)
    expected_len = CATALOG_FIXED_LEN + DESCRIPTOR_LEN * n + cat["names_len"]
    if len(payload) != expected_len:
        raise corrupted(f"catalog of {len(payload)} bytes, expected {expected_len}")
    w, h = cat["width"], cat["height"]
    if w > ADDRESS_MAX or h > ADDRESS_MAX:
        raise corrupted(f"size {w} x {h} does not fit the address size")
    if w < 1 or h < 1:
        raise corrupted(f"size {w} x {h}")
    names = payload[CATALOG_FIXED_LEN + DESCRIPTOR_LEN * n :]
    channels = []
    ids = set()
    for index in range(n):
        d = payload[CATALOG_FIXED_LEN + DESCRIPTOR_LEN * index :][:DESCRIPTOR_LEN]
        c = {
            "index": index,
            "channel_id": u32(d, 0),
            "dtype_code": d[4],
            "typesize": d[5],
            "codec_code": d[6],
            "level": d[7],
            "block_size": u32(d, 8),
            "rows_per_chunk": u32(d, 12),
            "n_chunks": u32(d, 16),
            "flags": u32(d, 20),
            "default_fill": u64(d, 24),
            "table_offset": u64(d, 32),
            "table_len": u32(d, 40),
            "table_crc": u32(d, 44),
            "name_offset": u32(d, 48),
            "name_len": u32(d, 52),
        }
        what = f"channel {index}"
        cid = c["channel_id"]
        if cid in ids:
            raise corrupted(f"{what}: duplicate channel id {cid}")
        ids.add(cid)
        if cid >= cat["next_channel_id"]:
            raise corrupted(f"{what}: id {cid} not below next_channel_id {cat['next_channel_id']}")
        if c["dtype_code"] not in DTYPES:
            raise corrupted(f"{what}: unknown dtype code {c['dtype_code']}")
        c["dtype"], size = DTYPES[c["dtype_code"]]
        if c["typesize"] != size:
            raise corrupted(f"{what}: typesize {c['typesize']} for {c['dtype']}")
        # SPEC §5.4 gives the valid codes; it does not say whether an unknown one is refused.
        if c["codec_code"] not in CODECS:
            raise corrupted(f"{what}: unknown codec code {c['codec_code']}")
        c["codec"] = CODECS[c["codec_code"]][0]
        if c["level"] > 9:
            raise corrupted(f"{what}: level {c['level']}")
        if c["block_size"] > MAX_BLOCK_SIZE:
            raise corrupted(f"{what}: block_size {c['block_size']}")
        if c["flags"] != 0:
            raise corrupted(f"{what}: flags {c['flags']:#x}")
        if size < 8 and c["default_fill"] >> (8 * size):
            raise corrupted(f"{what}: default_fill {c['default_fill']:#x} wider than {c['dtype']}")
        # §5.2 geometry
        r = c["rows_per_chunk"]
        if not 1 <= r <= h:
            raise corrupted(f"{what}: rows_per_chunk {r} outside [1, {h}]")
        if w * size * h > ADDRESS_MAX:
            raise corrupted(f"{what}: {w} x {h} x {size} bytes overflow")
        if r * w * size > MAX_CHUNK_BYTES:
            raise corrupted(f"{what}: nominal chunk of {r * w * size} bytes")
        n_chunks = -(-h // r)
        if n_chunks > MAX_CHUNKS or c["n_chunks"] != n_chunks:
            raise corrupted(f"{what}: n_chunks {c['n_chunks']}, geometry gives {n_chunks}")
        if c["table_offset"] != 0 and c["table_len"] != n_chunks * TABLE_ENTRY_LEN:
            raise corrupted(f"{what}: table_len {c['table_len']} for {n_chunks} chunks")
        # names area
        no, nl = c["name_offset"], c["name_len"]
        if no + nl > cat["names_len"]:
            raise corrupted(f"{what}: name [{no}, +{nl}) outside {cat['names_len']} bytes")
        try:
            c["name"] = names[no : no + nl].decode("utf-8")
        except UnicodeDecodeError as e:
            raise corrupted(f"{what}: name is not UTF-8 ({e})") from None
        channels.append(c)
    cat["channels"] = channels
    return cat


def raw_len(c, width, height, i):
    """§5.2: bytes of chunk i."""
    r = c["rows_per_chunk"]
    rows = min((i + 1) * r, height) - i * r
    return rows * width * c["typesize"]


# ---------------------------------------------------------------------------------------
# §6 Chunk tables


def parse_table(payload, c, width, height, slot):
    entries = []
    size = c["typesize"]
    for i in range(c["n_chunks"]):
        e = payload[i * TABLE_ENTRY_LEN : (i + 1) * TABLE_ENTRY_LEN]
        what = f"channel {c['index']} chunk {i}"
        kind, flags, reserved = e[0], e[1], u16(e, 2)
        crc, offset, plen, rlen, gen = u32(e, 4), u64(e, 8), u32(e, 16), u32(e, 20), u64(e, 24)
        expected_raw = raw_len(c, width, height, i)
        if kind == ENTRY_DEFAULT:
            if any(e):
                raise corrupted(f"{what}: DEFAULT entry with nonzero bytes")
            entries.append({"kind": "default"})
            continue
        if kind not in (ENTRY_BLOB, ENTRY_FILL):
            raise corrupted(f"{what}: unknown entry kind {kind}")
        if flags or reserved:
            raise corrupted(f"{what}: nonzero flags or reserved bytes")
        if rlen != expected_raw:
            raise corrupted(f"{what}: raw_len {rlen}, geometry gives {expected_raw}")
        if not 1 <= gen <= slot["generation"]:
            raise corrupted(f"{what}: generation {gen} outside [1, {slot['generation']}]")
        if kind == ENTRY_FILL:
            if crc or plen:
                raise corrupted(f"{what}: FILL entry with nonzero crc or payload_len")
            # Only the low typesize bytes are used; higher bits are ignored (§2 table).
            bits = offset & ((1 << (8 * size)) - 1)
            entries.append({"kind": "fill", "bits": bits, "raw_len": rlen, "generation": gen})
            continue
        # BLOB: bounds and length, checked at open (§9 step 3)
        if offset % 64 or offset < REGION_START:
            raise corrupted(f"{what}: blob offset {offset}")
        if offset + RECORD_HEADER_LEN + plen > slot["committed_end"]:
            raise corrupted(f"{what}: blob past committed_end")
        if not 32 <= plen <= rlen + 32:
            raise corrupted(f"{what}: blob payload_len {plen} for raw_len {rlen}")
        entries.append(
            {
                "kind": "blob",
                "offset": offset,
                "payload_len": plen,
                "crc": crc,
                "raw_len": rlen,
                "generation": gen,
            }
        )
    return entries


# ---------------------------------------------------------------------------------------
# §9 Opening


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def load_snapshot(data, slot):
    """Verify one candidate slot (§9 step 3); return the snapshot or raise FormatError."""
    payload, aux = read_record(
        data,
        slot,
        slot["catalog_offset"],
        slot["catalog_len"],
        slot["catalog_crc"],
        CATALOG,
        0,
        None,
        "catalog",
    )
    cat = parse_catalog(payload, aux)
    w, h = cat["width"], cat["height"]
    live = align64(RECORD_HEADER_LEN + slot["catalog_len"])  # §12
    # §7 metadata
    if cat["meta_offset"] == 0:
        meta_raw, metadata = None, None
    else:
        meta, _ = read_record(
            data, slot, cat["meta_offset"], cat["meta_len"], cat["meta_crc"], META, 0, 0, "META"
        )
        live += align64(RECORD_HEADER_LEN + cat["meta_len"])
        try:
            meta_raw = meta.decode("utf-8")
            metadata = json.loads(meta_raw, parse_constant=reject_constant)
        except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise corrupted(f"META is not UTF-8 JSON ({e})") from None
    # §6 tables
    for c in cat["channels"]:
        if c["table_offset"] == 0:
            c["table"] = [{"kind": "default"} for _ in range(c["n_chunks"])]
            continue
        payload, _ = read_record(
            data,
            slot,
            c["table_offset"],
            c["table_len"],
            c["table_crc"],
            TABLE,
            c["channel_id"],
            c["n_chunks"],
            f"channel {c['index']} TABLE",
        )
        live += align64(RECORD_HEADER_LEN + c["table_len"])
        c["table"] = parse_table(payload, c, w, h, slot)
        for i, e in enumerate(c["table"]):
            if e["kind"] != "blob":
                continue
            live += align64(RECORD_HEADER_LEN + e["payload_len"])
            # the unsynced part: blobs at or past durable_end are verified now
            if e["offset"] >= slot["durable_end"]:
                read_record(
                    data,
                    slot,
                    e["offset"],
                    e["payload_len"],
                    e["crc"],
                    BLOB,
                    c["channel_id"],
                    i,
                    f"channel {c['index']} chunk {i} (unsynced)",
                )
    return {
        "slot": slot,
        "catalog": cat,
        "metadata": metadata,
        "metadata_raw": meta_raw,
        "live_bytes": live,
        "dead_bytes": align64(slot["committed_end"]) - REGION_START - live,
    }


def open_file(data):
    """§9: the snapshot of the newest slot that verifies."""
    if data[0:8] != MAGIC and data[SLOT_PAGE : SLOT_PAGE + 8] != MAGIC:
        raise FormatError("NotACompressedImage", "neither slot page starts with the magic")
    slots, reasons, unsupported = [], [], None
    for page in (0, 1):
        try:
            slots.append(decode_slot(data, page))
        except FormatError as e:
            reasons.append(str(e))
            if e.kind == "UnsupportedVersion":
                unsupported = e
    # SPEC §9 does not say which slot wins when both carry the same generation; take page A.
    slots.sort(key=lambda s: (-s["generation"], s["page"]))
    for slot in slots:
        try:
            snap = load_snapshot(data, slot)
        except FormatError as e:
            reasons.append(f"slot {'AB'[slot['page']]} (generation {slot['generation']}): {e}")
            continue
        snap["slots"] = {}
        for page in (0, 1):
            try:
                s = decode_slot(data, page)
                snap["slots"]["AB"[page]] = {k: s[k] for k in ("generation", "committed_end", "durable_end")}
            except FormatError as e:
                snap["slots"]["AB"[page]] = {"error": str(e)}
        return snap
    if unsupported is not None:
        raise unsupported
    raise corrupted("no slot verifies: " + "; ".join(reasons))


# ---------------------------------------------------------------------------------------
# §8 Reading a chunk


def blosc_header(payload):
    """The documented fields of the blosc2 chunk header (§8 step 4), plus the codec bits and
    flags as c-blosc2 defines them (for the summary)."""
    return {
        "version": payload[0],
        "versionlz": payload[1],
        "flags": payload[2],
        "typesize": payload[3],
        "nbytes": u32(payload, 4),
        "blocksize": u32(payload, 8),
        "cbytes": u32(payload, 12),
        "codec_bits": payload[2] >> 5,
        "memcpyed": bool(payload[2] & 0x02),
        "filters": list(payload[16:22]),
    }


def read_chunk(data, snap, c, i):
    """Decode chunk i of channel c (§8): (raw bytes, summary entry)."""
    import blosc2  # python-blosc2: only needed for BLOB chunks

    slot = snap["slot"]
    e = c["table"][i]
    size = c["typesize"]
    rlen = raw_len(c, snap["catalog"]["width"], snap["catalog"]["height"], i)
    if e["kind"] == "default":
        return c["default_fill"].to_bytes(8, "little")[:size] * (rlen // size), dict(e)
    if e["kind"] == "fill":
        return e["bits"].to_bytes(8, "little")[:size] * (rlen // size), dict(e)
    what = f"channel {c['index']} chunk {i}"
    # 1.–2. bounds and record header; 3. CRC (a mismatch is ChecksumMismatch)
    try:
        payload, _ = read_record(
            data, slot, e["offset"], e["payload_len"], e["crc"], BLOB, c["channel_id"], i, what
        )
    except FormatError as err:
        if err.reason.endswith("payload CRC mismatch"):
            raise FormatError("ChecksumMismatch", what) from None
        raise
    # 4. blosc2 header
    if len(payload) < 32:
        raise corrupted(f"{what}: blosc2 chunk of {len(payload)} bytes")
    bh = blosc_header(payload)
    if not 3 <= bh["version"] <= 5:
        raise corrupted(f"{what}: blosc2 version {bh['version']}")
    if bh["flags"] & 0x05 != 0x05:
        raise corrupted(f"{what}: blosc2 flags {bh['flags']:#x} without the extended header")
    if bh["typesize"] != size:
        raise corrupted(f"{what}: blosc2 typesize {bh['typesize']}")
    if bh["nbytes"] != rlen:
        raise corrupted(f"{what}: blosc2 nbytes {bh['nbytes']}, raw_len {rlen}")
    if bh["cbytes"] != e["payload_len"] or bh["cbytes"] > rlen + 32:
        raise corrupted(f"{what}: blosc2 cbytes {bh['cbytes']}")
    if not 0 < bh["blocksize"] <= rlen:
        raise corrupted(f"{what}: blosc2 blocksize {bh['blocksize']}")
    # 5. decompress
    try:
        raw = blosc2.decompress(payload)
    except Exception as err:  # noqa: BLE001 - any decoder failure is a Codec error
        raise FormatError("Codec", f"{what}: {err}") from None
    if len(raw) != rlen:
        raise FormatError("Codec", f"{what}: decompressed {len(raw)} bytes, expected {rlen}")
    info = dict(e)
    info["blosc"] = bh
    return bytes(raw), info


def read_file(path):
    """Open and decode everything: (summary dict, list of channel bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    snap = open_file(data)
    cat = snap["catalog"]
    slot = snap["slot"]
    channels, channel_bytes = [], []
    for c in cat["channels"]:
        parts, chunks = [], []
        for i in range(c["n_chunks"]):
            raw, info = read_chunk(data, snap, c, i)
            parts.append(raw)
            chunks.append(info)
        channel_bytes.append(b"".join(parts))
        channels.append(
            {
                "index": c["index"],
                "channel_id": c["channel_id"],
                "name": c["name"],
                "dtype": c["dtype"],
                "dtype_code": c["dtype_code"],
                "typesize": c["typesize"],
                "codec": c["codec"],
                "codec_code": c["codec_code"],
                "level": c["level"],
                "block_size": c["block_size"],
                "rows_per_chunk": c["rows_per_chunk"],
                "n_chunks": c["n_chunks"],
                "default_fill": c["default_fill"],
                "has_table": c["table_offset"] != 0,
                "chunks": chunks,
            }
        )
    summary = {
        "file_len": len(data),
        "slot_page": "AB"[slot["page"]],
        "generation": slot["generation"],
        "minor": slot["minor"],
        "file_id": slot["file_id"],
        "committed_end": slot["committed_end"],
        "durable_end": slot["durable_end"],
        "slots": snap["slots"],
        "width": cat["width"],
        "height": cat["height"],
        "next_channel_id": cat["next_channel_id"],
        "names_present": cat["names_present"],
        "names": [c["name"] for c in cat["channels"]],
        "metadata": snap["metadata"],
        "metadata_raw": snap["metadata_raw"],
        "live_bytes": snap["live_bytes"],
        "dead_bytes": snap["dead_bytes"],
        "channels": channels,
    }
    return summary, channel_bytes


def describe(summary):
    s = summary
    lines = [
        f"{s['width']} x {s['height']}, {len(s['channels'])} channel(s), generation {s['generation']}"
        f" (slot {s['slot_page']}), committed_end {s['committed_end']}, durable_end"
        f" {s['durable_end']}, file {s['file_len']} bytes, live {s['live_bytes']}, dead"
        f" {s['dead_bytes']}",
        f"names: {s['names'] if s['names_present'] else '(none)'}",
        f"metadata: {s['metadata_raw'] if s['metadata_raw'] is not None else 'null'}",
    ]
    for c in s["channels"]:
        kinds = "".join({"blob": "B", "fill": "F", "default": "D"}[e["kind"]] for e in c["chunks"])
        lines.append(
            f"channel {c['index']} (id {c['channel_id']}, name {c['name']!r}): {c['dtype']},"
            f" {c['codec']} level {c['level']}, block {c['block_size']},"
            f" {c['rows_per_chunk']} rows/chunk, default {c['default_fill']:#x},"
            f" table {'yes' if c['has_table'] else 'no'}, chunks {kinds}"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file")
    p.add_argument("--dump-dir", help="write <index>.bin per channel and summary.json here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    try:
        summary, channel_bytes = read_file(args.file)
    except FormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: Io: {e}", file=sys.stderr)
        return 1
    if args.dump_dir:
        os.makedirs(args.dump_dir, exist_ok=True)
        for index, raw in enumerate(channel_bytes):
            with open(os.path.join(args.dump_dir, f"{index}.bin"), "wb") as f:
                f.write(raw)
        with open(os.path.join(args.dump_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1, ensure_ascii=False)
    print(json.dumps(summary, indent=1, ensure_ascii=False) if args.json else describe(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
