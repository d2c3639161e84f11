"""A script written for compressed-image 1.0.1's in-memory API, kept unchanged.

It uses the patterns of the reference's clients and examples: a channel walked chunk by
chunk through one reused buffer, a lazy `zeros` mask of which some chunks are set, and an
Image with channel names and metadata. It prints its results as JSON on the last line;
test_compat.py runs it in a fresh interpreter and checks them.
"""

import json

import numpy as np

import compressed_image

results = {}

# --- 1. a channel from data, walked chunk by chunk with one reused buffer ----------------
width, height = 1024, 500
yy, xx = np.mgrid[0:height, 0:width]
data = (np.sin(xx / 50.0) * np.cos(yy / 30.0) * 100.0).astype(np.float32)

channel = compressed_image.Channel(
    data,
    width,
    height,
    compression_codec=compressed_image.Codec.lz4,
    compression_level=9,
    block_size=32768,
    chunk_size=256 * 1024,
)
results["num_chunks"] = channel.num_chunks()
results["chunk_size"] = channel.chunk_size()
results["chunk_elems"] = channel.chunk_elems()
results["last_chunk_elems"] = channel.chunk_elems(channel.num_chunks() - 1)
results["shape"] = list(channel.shape)
results["dtype"] = str(channel.dtype)
results["uncompressed_size"] = channel.uncompressed_size()
results["compression"] = channel.compression().name
results["compression_level"] = channel.compression_level()

buffer = np.empty(channel.chunk_elems(), dtype=np.float32)
doubled = np.empty(width * height, dtype=np.float32)
offset = 0
for chunk_index in range(channel.num_chunks()):
    n = channel.chunk_elems(chunk_index)
    view = buffer[:n]
    channel.get_chunk(chunk_index, view)
    view *= 2.0
    channel.set_chunk(chunk_index, view)
    doubled[offset : offset + n] = view
    offset += n
results["walked_elems"] = offset
results["doubled_ok"] = bool(np.array_equal(doubled, data.ravel() * 2.0))
results["decompressed_ok"] = bool(np.array_equal(channel.get_decompressed(), data * 2.0))
results["new_chunk_ok"] = bool(np.array_equal(channel.get_chunk(1), (data.ravel() * 2.0)[65536 : 2 * 65536]))

# --- 2. a lazy mask: zeros, then some chunks set (the cryptomatte pattern) ---------------
mask = compressed_image.Channel.zeros(np.float32, width, height, chunk_size=64 * 1024, block_size=512)
results["mask_lazy_bytes"] = mask.compressed_bytes()
results["mask_num_chunks"] = mask.num_chunks()
for chunk_index in range(0, mask.num_chunks(), 3):
    values = np.full(mask.chunk_elems(chunk_index), chunk_index + 1, dtype=np.float32)
    values[::7] = 0.5
    mask.set_chunk(chunk_index, values)
expected = np.zeros(width * height, dtype=np.float32)
step = mask.chunk_elems()
for chunk_index in range(0, mask.num_chunks(), 3):
    part = expected[chunk_index * step : chunk_index * step + mask.chunk_elems(chunk_index)]
    part[:] = chunk_index + 1
    part[::7] = 0.5
results["mask_ok"] = bool(np.array_equal(mask.get_decompressed().ravel(), expected))
results["mask_untouched_is_zero"] = bool((mask.get_chunk(1) == 0).all())
results["mask_smaller_than_raw"] = mask.compressed_bytes() < width * height * 4
like = compressed_image.Channel.full_like(mask, 3.0)
results["full_like_ok"] = bool((like.get_decompressed() == 3.0).all()) and like.shape == mask.shape

# --- 3. an Image with channel names and metadata -----------------------------------------
r = (xx % 256).astype(np.uint16)
g = (yy % 256).astype(np.uint16)
b = ((xx + yy) % 512).astype(np.uint16)
image = compressed_image.Image(np.uint16, [r, g, b], width, height, channel_names=["R", "G", "B"])
image.set_metadata({"colorspace": "ACEScg", "frame": 1001, "tags": ["beauty", "main"]})
alpha = np.full((height, width), 65535, dtype=np.uint16)
image.add_channel(alpha, width, height, "A")
results["names"] = image.get_channel_names()
results["image_shape"] = list(image.shape)
results["num_channels"] = image.num_channels
results["len"] = len(image)
results["index_of_A"] = image.get_channel_index("A")
results["metadata"] = image.get_metadata()
results["g_ok"] = bool(np.array_equal(image["G"].get_decompressed(), g))
results["by_index_ok"] = bool(np.array_equal(image[2].get_decompressed(), b))
planes = image.get_decompressed()
results["planes_ok"] = all(np.array_equal(p, q) for p, q in zip(planes, [r, g, b, alpha]))
image.remove_channel("B")
results["names_after_remove"] = image.get_channel_names()
results["a_after_remove_ok"] = bool(np.array_equal(image["A"].get_decompressed(), alpha))
results["ratio_is_float"] = isinstance(image.compression_ratio(), float)
results["image_chunk_size"] = image.chunk_size()

print(json.dumps(results))
