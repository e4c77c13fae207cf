#!/usr/bin/env python3
"""The delay the answer rules' hold-back adds to a stream, measured by a client.

    python3 loadtest/holdback.py ON_ADDR OFF_ADDR KEY [EVENTS] [ROUNDS]

ON_ADDR is a gateway with rules on answers, OFF_ADDR the same gateway without them, both in front
of one `tollgate mock`. Each stream has EVENTS (2,000) events of one word `w<i> `, 1 ms apart;
the "match" case puts an SSN split over three events in the middle. The mock stamps each event
with when it wrote it (`x-mock-stamp`, wall clock, same machine); a word's delay is when it
reached the client minus when the mock wrote the event that carried it. Reported per gateway
(p50 / p99 / max, ms, over all words of ROUNDS (3) interleaved streams): ON minus OFF is what the
hold-back adds. Loopback only; every stream is bounded by its events.
"""
import http.client
import json
import re
import statistics
import sys
import time

WORD = re.compile(r"w(\d+) ")


def pieces(events, match):
    words = [f"w{i} " for i in range(events)]
    if match:
        mid = events // 2
        words[mid:mid + 3] = ["SSN 123-4", "5-67", "89 "]
    return words


def stream(addr, key, words):
    """Milliseconds from the mock's write of each word's event to its arrival, by word number."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps({"model": "gpt-4", "stream": True, "max_tokens": len(words) + 10,
                       "messages": [{"role": "user", "content": "stream"}]})
    headers = {"X-API-Key": key, "Content-Type": "application/json",
               "x-mock-answer": "|".join(words), "x-mock-chunk-delay-ms": "1",
               "x-mock-stamp": "1"}
    conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
    resp = conn.getresponse()
    # The text as the mock sent it, and the stamp of the event carrying each character; then
    # the text as delivered, with each word's arrival.
    text, seen, at = "", {}, 0
    sent_text, sent_at = "", []
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        now = time.time_ns()
        event = json.loads(line[6:])
        stamp = event.get("sent_ns")
        for choice in event.get("choices", []):
            text += (choice.get("delta") or {}).get("content") or ""
        for m in WORD.finditer(text, at):
            seen.setdefault(int(m.group(1)), now)
            at = m.end()
        if stamp is not None:
            sent_at.append(stamp)
    conn.close()
    # Event k (after the role event) carried word k - 1.
    return {i: (t - sent_at[i + 1]) / 1e6 for i, t in seen.items() if i + 1 < len(sent_at)}


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    on, off, key = sys.argv[1:4]
    events = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    print("| case | rules on answers | words | delay p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for case in ("clean", "match"):
        words = pieces(events, case == "match")
        delays = {on: [], off: []}
        for r in range(rounds):
            order = (on, off) if r % 2 == 0 else (off, on)
            for addr in order:
                delays[addr].extend(stream(addr, key, words).values())
        for addr, name in ((off, "off"), (on, "on")):
            d = delays[addr]
            print(f"| {case} | {name} | {len(d)} | {statistics.median(d):.3f} | "
                  f"{quantile(d, 0.99):.3f} | {max(d):.3f} |")


if __name__ == "__main__":
    main()
