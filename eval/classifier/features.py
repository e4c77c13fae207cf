"""The classifier's features, exactly as `src/stages/classifier.rs` computes them.

The input is a text as `tollgate normalize` prints it (bytes of UTF-8). Each feature is a bucket
of a table of 2**BITS weights:
- every 4-byte window of the text with one space added at each end: its bytes read as a
  little-endian u32, times 0x9E3779B1 (mod 2**32), the top BITS bits;
- every word (a maximal run of ASCII letters and digits and bytes >= 0x80): FNV-1a (32 bits)
  of its bytes; every pair of adjacent words: (first rotated left by 16) xor second xor
  PAIR_BASIS, times the FNV prime; then the same multiply and top bits.
A text is cut into blocks of BLOCK bytes; a feature belongs to the block where it starts; a
window is two adjacent blocks (one block for a short text). The window's score is
bias + scale * sum(weights) / sqrt(number of features), and the text's score is the highest
window score, as a probability (the logistic function of it).
"""

import math
import re

import numpy as np

BITS = 18
BLOCK = 512
GOLDEN = 0x9E3779B1
FNV_PRIME = 0x01000193
WORD_BASIS = 0x811C9DC5
PAIR_BASIS = 0x050C5D1F
WORD = re.compile(rb"[a-z0-9\x80-\xff]+")


def bucket(h):
    return ((h * GOLDEN) & 0xFFFFFFFF) >> (32 - BITS)


def fnv(data, basis):
    h = basis
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFF
    return h


def pair(first, second):
    rotated = ((first << 16) | (first >> 16)) & 0xFFFFFFFF
    return ((rotated ^ second ^ PAIR_BASIS) * FNV_PRIME) & 0xFFFFFFFF


def features(text):
    """(bucket, start offset in the text) of every feature of `text` (bytes, normalised)."""
    padded = b" " + text + b" "
    out = []
    if len(padded) >= 4:
        a = np.frombuffer(padded, dtype=np.uint8).astype(np.uint64)
        grams = a[:-3] | (a[1:-2] << 8) | (a[2:-1] << 16) | (a[3:] << 24)
        buckets = ((grams * GOLDEN) & 0xFFFFFFFF) >> (32 - BITS)
        # Gram i starts at padded[i], which is text[i - 1]: the first belongs to offset 0.
        starts = np.maximum(np.arange(len(grams)) - 1, 0)
        out = list(zip(buckets.tolist(), starts.tolist()))
    previous = None
    for m in WORD.finditer(text):
        word = fnv(m.group(), WORD_BASIS)
        out.append((bucket(word), m.start()))
        if previous is not None:
            out.append((bucket(pair(previous[0], word)), previous[1]))
        previous = (word, m.start())
    return out


def windows(text):
    """Per window (two adjacent blocks), the feature buckets it holds."""
    feats = features(text)
    blocks = max(1, math.ceil(len(text) / BLOCK))
    per_block = [[] for _ in range(blocks)]
    for b, start in feats:
        per_block[min(start // BLOCK, blocks - 1)].append(b)
    if blocks == 1:
        return [per_block[0]]
    return [per_block[i] + per_block[i + 1] for i in range(blocks - 1)]


def score(weights, bias, scale, text):
    """The text's probability of being an attack under a quantised model."""
    best = -math.inf
    for window in windows(text):
        if not window:
            continue
        s = bias + scale * float(sum(int(weights[b]) for b in window)) / math.sqrt(len(window))
        best = max(best, s)
    if best == -math.inf:
        best = bias
    return 1.0 / (1.0 + math.exp(-best))
