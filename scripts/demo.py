"""hearth demo: a simulated home, a real broker, the real daemon.

Started by scripts/demo.sh (which installs and builds first). Uses the
process helpers of tests/integration/harness.py, so every process it starts
is stopped by PID, also on Ctrl-C.
"""

import hashlib
import hmac
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("HEARTHD", os.path.join(ROOT, "build", "bin", "hearthd"))
os.environ.setdefault("HEARTHCTL", os.path.join(ROOT, "build", "bin", "hearthctl"))
os.environ.setdefault("HEARTH_SIM", os.path.join(ROOT, "build", "bin", "hearth-sim"))
import harness  # noqa: E402

P = "hearth/home"
BOLD, DIM, GREEN, RED, CYAN, OFF = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[36m",
                                    "\033[0m") if sys.stdout.isatty() else ("",) * 6


def say(text=""):
    print(text, flush=True)


def args_text(args):
    parts = []
    for k, v in args.items():
        if isinstance(v, bool):
            parts.append(k if v else f"not {k}")
        else:
            parts.append(f"{k} {v}")
    return ", ".join(parts)


class Demo:
    def __init__(self):
        self.broker = harness.Broker().start()
        self.phone = harness.Client(self.broker)
        self.phone.subscribe(f"{P}/#")
        self.hub = harness.Hub(self.broker).start()
        self.hub.wait_online(self.phone)
        self.sim = harness.Sim(self.broker, "demo.json").start().wait_ready()
        self.phone.wait_for(topic=f"{P}/device/kitchen-1/state", what="the home's devices")
        self.names = {}
        for m in self.phone.messages(f"{P}/device/+/meta"):
            self.names[m.topic.split("/")[3]] = m.json.get("name", m.topic.split("/")[3])

    def close(self):
        for p in (self.phone, self.sim, self.hub, self.broker):
            try:
                p.close() if p is self.phone else p.stop()
            except Exception:  # noqa: BLE001 - stop the rest anyway
                pass

    def intent(self, title, body, follow=True):
        say(f"\n{BOLD}▶ {title}{OFF}")
        say(f"  {DIM}publish {P}/intent {json.dumps(body)}{OFF}")
        mark = self.phone.mark()
        t0 = time.monotonic()
        self.phone.publish(f"{P}/intent", body)
        iid = body["id"]
        reply = self.phone.wait_for(topic=f"{P}/intent/{iid}/result", since=mark)
        r = reply.json
        if "error" in r:
            say(f"  {RED}✗ refused: {r['error']}{OFF} — {r['detail']}")
            err = self.phone.wait_for(topic=f"{P}/error", since=mark)
            say(f"  {DIM}(also on {P}/error: {err.text}){OFF}")
            return r
        say(f"  hearth understood: {CYAN}{r['intent']}{OFF} {r['slots']}")
        say(f"  plan {r['plan_id']}: {BOLD}{r['state']}{OFF}")
        say(f"  rationale: {r['rationale']}")
        if not follow or r["state"] in ("previewed", "completed", "awaiting_approval"):
            for s in r["steps"]:
                say(f"    · {self.names.get(s['device'], s['device'])}: "
                    f"{args_text(s['args'])} [{s['state']}]")
            return r
        plan_topic = f"{P}/plan/{r['plan_id']}"
        final = self.phone.wait_for(
            lambda m: m.json["state"] in ("completed", "compensated", "failed"),
            topic=plan_topic, since=mark, timeout=30)
        # Tell the story in the order it happened on the bus.
        for m in self.phone.messages("#", since=mark):
            dt = (m.received - t0) * 1000
            parts = m.topic.split("/")
            if m.topic.endswith("/set"):
                args = {k: v for k, v in m.json.items() if k not in ("plan_id", "intent_id", "step")}
                say(f"  {dt:7.1f} ms  → {self.names.get(parts[3], parts[3])}: {args_text(args)}")
            elif m.topic.endswith("/state") and parts[2] == "device":
                say(f"  {dt:7.1f} ms  ← {self.names.get(parts[3], parts[3])} reports "
                    f"{args_text(m.json)}")
            if m is final or m.topic == plan_topic and m.json is final.json:
                break
        color = GREEN if final.json["state"] == "completed" else RED
        say(f"  {(final.received - t0) * 1000:7.1f} ms  {color}plan {final.json['state']}{OFF}"
            + (f" — {final.json['reason']}" if final.json.get("reason") else ""))
        return r

    def ctl(self, *args):
        r = harness.run_ctl(self.hub.data_dir, *args)
        for line in (r.stdout or r.stderr).rstrip().splitlines():
            say(f"  {line}")


def main():
    say(f"{BOLD}hearth demo{OFF}: a private mosquitto on 127.0.0.1, hearthd, and a simulated home")
    demo = Demo()
    try:
        say(f"  broker 127.0.0.1:{demo.broker.port}, data dir {demo.hub.data_dir}")
        say(f"\n{BOLD}The home, as hearth sees it{OFF} (hearthctl devices):")
        demo.ctl("devices")

        demo.intent("Movie night in the living room",
                    {"id": "demo-1", "intent": "scene.movie_night", "slots": {"room": "living"},
                     "source": "remote-1", "user": "alice"})
        demo.intent("Movie night in the living room again: everything already holds",
                    {"id": "demo-2", "intent": "scene.movie_night", "slots": {"room": "Living"}})
        demo.intent("Preview movie night in the bedroom (nothing is sent)",
                    {"id": "demo-3", "intent": "scene.movie_night", "slots": {"room": "bedroom"},
                     "preview": True})
        say(f"\n{BOLD}▶ The bedroom TV loses power{OFF}")
        demo.phone.publish(f"hearth-sim/home/bedtv-1/availability", "offline")
        demo.phone.wait_for(lambda m: m.text == "offline", topic=f"{P}/device/bedtv-1/availability")
        say("  bedtv-1 is offline")
        demo.intent("Movie night in the bedroom: the TV is left out",
                    {"id": "demo-4", "intent": "scene.movie_night", "slots": {"room": "bedroom"}})
        demo.intent("Movie night in the garage (there is no garage)",
                    {"id": "demo-5", "intent": "scene.movie_night", "slots": {"room": "garage"}})
        say(f"\n{BOLD}▶ hearthctl plan \"reading light in the living room\"{OFF}: every light "
            "is a candidate, scored and ranked")
        demo.ctl("plan", "reading light in the living room")

        say(f"\n{BOLD}▶ Pair the owner's phone{OFF} (hearthctl pair phone-1)")
        r = harness.run_ctl(demo.hub.data_dir, "pair", "phone-1", "--json")
        key = json.loads(r.stdout)["key"]
        say(f"  phone-1 holds a 256-bit key; hearthd keeps it in its 0600 store")
        mark = demo.phone.mark()
        r = demo.intent("Unlock the front door (high risk: it waits for the owner)",
                        {"id": "demo-6", "intent": "door.unlock", "slots": {"room": "hallway"}})
        req = demo.phone.wait_for(topic=f"{P}/approval/{r['plan_id']}/request", since=mark).json
        say(f"  {DIM}{P}/approval/{r['plan_id']}/request: risk {req['risk']}, "
            f"nonce {req['nonce'][:8]}…{OFF}")
        forged = {"decision": "approve", "approver": "phone-1", "nonce": req["nonce"],
                  "ts": int(time.time() * 1000), "mac": "0" * 64}
        mark = demo.phone.mark()
        demo.phone.publish(f"{P}/approval/{r['plan_id']}/response", forged)
        err = demo.phone.wait_for(topic=f"{P}/error", since=mark)
        say(f"  a forged answer: {RED}{err.json['error']}{OFF} — {err.json['detail']}")
        ts = int(time.time() * 1000)
        msg = f"{r['plan_id']}|approve|{req['nonce']}|{ts}".encode()
        tap = dict(forged, ts=ts, mac=hmac.new(bytes.fromhex(key), msg, hashlib.sha256).hexdigest())
        mark = demo.phone.mark()
        demo.phone.publish(f"{P}/approval/{r['plan_id']}/response", tap)
        cmd = demo.phone.wait_for(topic=f"{P}/device/door-1/set", since=mark)
        say(f"  the owner taps approve: {GREEN}→ Front door: {args_text({'locked': cmd.json['locked']})}"
            f"{OFF}")
        demo.phone.wait_for(lambda m: m.json["state"] == "completed",
                            topic=f"{P}/plan/{r['plan_id']}", since=mark, timeout=15)
        say(f"  plan {r['plan_id']}: {GREEN}completed{OFF}")

        say(f"\n{BOLD}▶ Garbage on the intent topic{OFF}")
        mark = demo.phone.mark()
        demo.phone.publish(f"{P}/intent", b"{movie night!")
        err = demo.phone.wait_for(topic=f"{P}/error", since=mark)
        say(f"  {RED}{err.json['error']}{OFF}: {err.json['detail']} — hearthd keeps running")

        say(f"\n{BOLD}What hearth remembers{OFF} (hearthctl episodes):")
        demo.ctl("episodes")
        say(f"\n{BOLD}hearthctl status{OFF}:")
        demo.ctl("status")
    finally:
        demo.close()
    say(f"\n{GREEN}demo done{OFF}: everything it started is stopped. "
        "Try it yourself: see README.md.")


if __name__ == "__main__":
    main()
