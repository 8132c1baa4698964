#!/usr/bin/python3
"""flood_bench.py - does a flood from one source cost another source its latency?
(issue 7: rate limits; README.md beside this file.)

One private mosquitto on a free loopback port and one hearthd (fresh data
dir each run), three devices announced in `living` (retained meta). A steady
source (`phone-1`) sends a preview intent every 50 ms (20/s) and measures,
for each, the time from its publish to its reply (on a response topic of
its own). After
2 s a flooding source (`flood-1`) sends FLOOD (10,000) preview intents as
fast as mosquitto_pub -l can, at QoS 0; the steady source goes on until the
hub has taken the whole flood in (a marker intent sent after it, from a
third source, is answered) and 1 s more. Three scenarios, each REPEAT (5)
times on a fresh hub and broker, the steady samples merged:

  quiet     no flood (the baseline)
  limited   the flood, rate limits at their defaults (20/s, burst 40)
  unlimited the flood, limits.intent_rate 0 (what the limits buy)

Each run prints the steady source's latency (p50, p99, max, in ms, and how
many replies were rate_limited or missing) over the flood window (from the
flood's start until the hub has taken it all in; 5 s for quiet), and what
hearthd did with the flood (per run). Everything is bounded: each run stops after
RUN_S (60) seconds at most, and only processes started here are stopped, by
PID.

    /usr/bin/python3 tests/bench/flood_bench.py            # build/bin/hearthd
    HEARTHD=build-release/bin/hearthd FLOOD=10000 REPEAT=20 \
            /usr/bin/python3 tests/bench/flood_bench.py
"""

import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

P = "hearth/home"
FLOOD = int(os.environ.get("FLOOD", "10000"))
STEADY_HZ = 20  # within the default intent_rate: the steady source is never limited
RUN_S = 60
REPEAT = int(os.environ.get("REPEAT", "5"))
DEVICES = {
    "lamp-1": {"room": "living", "kind": "light", "capabilities": ["light.on_off", "light.brightness"]},
    "blind-1": {"room": "living", "kind": "cover", "capabilities": ["cover.position"]},
    "tv-1": {"room": "living", "kind": "media", "capabilities": ["media.power"]},
}


def preview(iid, source):
    return {"id": iid, "intent": "scene.movie_night", "slots": {"room": "living"},
            "source": source, "preview": True}


def pct(xs, q):
    """Nearest-rank percentile of a sorted list."""
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(round(q / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def status(hub):
    r = harness.run_ctl(hub.data_dir, "status", "--json")
    return json.loads(r.stdout) if r.returncode == 0 else {}


def one_run(name, flood, limits):
    broker = harness.Broker().start()
    cfg = os.path.join(harness.workdir("cfg"), "hearth.json")
    with open(cfg, "w") as f:
        json.dump({"limits": limits, "log": {"level": "warn"}}, f)
    hub = harness.Hub(broker, config=cfg).start()
    clients = []
    proc = None
    try:
        setup = harness.Client(broker)
        clients.append(setup)
        for dev, meta in DEVICES.items():
            setup.publish(f"{P}/device/{dev}/meta", meta, retain=True)
        hub.wait_online(setup)
        steady = harness.Client(broker)
        clients.append(steady)
        # Its replies come on a response topic of its own (MQTT v5), so the
        # flood's replies do not land in this client.
        rt = f"{P}/reply/phone-1"
        steady.subscribe(rt)
        # Warm up (and check a preview is answered) before measuring.
        steady.publish(f"{P}/intent", preview("warm", "phone-1"), response_topic=rt)
        steady.wait_for(topic=rt, timeout=15)
        before = status(hub)

        marker = harness.Client(broker)
        clients.append(marker)
        mt = f"{P}/reply/marker"
        marker.subscribe(mt)

        sent = {}  # id -> monotonic send time
        lines = "".join(json.dumps(preview(f"fl-{i}", "flood-1")) + "\n" for i in range(flood))
        t0 = time.monotonic()
        deadline = t0 + RUN_S
        flood_start = None
        flood_end = []  # set by the watcher thread
        seq = 0
        next_send = t0

        def watch():
            # Once the flood is out, an intent from a third source queues
            # behind it: its reply says the hub has taken the whole flood in.
            proc.wait(timeout=RUN_S)
            marker.publish(f"{P}/intent", preview("mark", "marker"), response_topic=mt)
            marker.wait_for(topic=mt, timeout=RUN_S)
            flood_end.append(time.monotonic())

        watcher = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_send:
                iid = f"st-{seq}"
                seq += 1
                sent[iid] = time.monotonic()
                steady.publish(f"{P}/intent", preview(iid, "phone-1"), qos=0,
                               response_topic=rt)
                next_send += 1.0 / STEADY_HZ
            if flood and proc is None and now - t0 >= 2.0:
                flood_start = time.monotonic()
                proc = subprocess.Popen(
                    ["mosquitto_pub", "-h", harness.LOCALHOST, "-p", str(broker.port), "-q", "0",
                     "-i", "flood-1", "-t", f"{P}/intent", "-l"],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    text=True)
                proc.stdin.write(lines)
                proc.stdin.close()
                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
            if (not flood and now - t0 > 5) or (flood_end and now - flood_end[0] > 1.0):
                break
            time.sleep(max(0, min(next_send - time.monotonic(), 0.01)))
        flood_end = flood_end[0] if flood_end else None
        time.sleep(1.0)  # late replies
        after = status(hub)
        if proc is not None:
            proc.wait(timeout=30)
        lat, limited, lost = [], 0, 0
        w0 = flood_start if flood else t0
        w1 = flood_end if flood_end else time.monotonic()
        replies = {m.json["id"]: m for m in steady.messages(rt)
                   if m.json and str(m.json.get("id", "")).startswith("st-")}
        steady_accepted = sum(1 for iid in sent if iid in replies
                              and replies[iid].json.get("error") != "rate_limited")
        steady_refused = sum(1 for iid in sent if iid in replies
                             and replies[iid].json.get("error") == "rate_limited")
        steady_accepted += 1 if flood else 0  # the marker
        for iid, ts in sent.items():
            if not (w0 <= ts <= w1):
                continue
            m = replies.get(iid)
            if m is None:
                lost += 1
            elif m.json.get("error") == "rate_limited":
                limited += 1
            else:
                lat.append((m.received - ts) * 1000.0)
        lat.sort()
        return {
            "run": name, "flood": flood, "window_s": round(w1 - w0, 2),
            "steady_n": len(lat), "steady_limited": limited, "steady_lost": lost,
            "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
            "max_ms": round(lat[-1], 2) if lat else None,
            "flood_answered_s": round(flood_end - flood_start, 2) if flood_end else None,
            "flood_planned": (after.get("intents", 0) - before.get("intents", 0)
                              - steady_accepted),
            "flood_rate_limited": (after.get("rate_limited", 0) - before.get("rate_limited", 0)
                                   - steady_refused),
            "hub_alive": hub.alive(),
            "lat": lat,
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()  # mosquitto_pub, ours, by PID
            proc.wait()
        for c in clients:
            c.close()
        hub.stop()
        broker.stop()


def scenario(name, flood, limits):
    """REPEAT runs, their steady samples merged."""
    runs = [one_run(name, flood, limits) for _ in range(REPEAT)]
    lat = sorted(x for r in runs for x in r["lat"])
    out = {"run": name, "flood": flood, "runs": REPEAT, "steady_n": len(lat),
           "steady_limited": sum(r["steady_limited"] for r in runs),
           "steady_lost": sum(r["steady_lost"] for r in runs),
           "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
           "max_ms": round(lat[-1], 2) if lat else None,
           "flood_answered_s": max((r["flood_answered_s"] or 0) for r in runs) or None,
           "flood_planned": sum(r["flood_planned"] for r in runs) // REPEAT,
           "flood_rate_limited": sum(r["flood_rate_limited"] for r in runs) // REPEAT,
           "per_run_p99_ms": [r["p99_ms"] for r in runs],
           "hub_alive": all(r["hub_alive"] for r in runs)}
    print(json.dumps(out), flush=True)
    return out


def main():
    harness.program("HEARTHD", "hearthd")
    results = [
        scenario("quiet", 0, {}),
        scenario("limited", FLOOD, {}),
        scenario("unlimited", FLOOD, {"intent_rate": 0}),
    ]
    cols = ["run", "flood", "runs", "steady_n", "steady_limited", "steady_lost", "p50_ms",
            "p99_ms", "max_ms", "flood_answered_s", "flood_planned", "flood_rate_limited"]
    print(" ".join(f"{c:>10.10}" for c in cols))
    for r in results:
        print(" ".join(f"{str(r[c]):>10}" for c in cols))
    return 0 if all(r["hub_alive"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
