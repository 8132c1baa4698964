"""Adaptive rebinding (issue 6 item 6, DESIGN.md section 4 step states).

The study (tests/sim/homes/study.json) has a desk lamp that never answers
(it drops every command), a dimmable ceiling light and an on/off-only shelf
strip. The test recipe light.desk (tests/integration/recipes) asks for the
room's desk lamp at 60 %, with a 300 ms timeout.

1. The desk lamp gets the command and its two re-sends, never confirms: the
   step becomes "rebound", the ceiling light (same room, same capability and
   brightness; the shelf strip has no brightness) gets the command, confirms,
   and the plan completes. The events, the episode's rationale and the step
   note say "desk-1 did not answer; ceiling-1 was used instead.", and the
   desk lamp's reliability statistics in semantic memory count the failure.
2. The same with a desk lamp that goes offline while its step waits: rebound
   at once.
"""

import json
import os
import subprocess
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
HERE = os.path.dirname(os.path.abspath(__file__))
STUDY = os.path.join(harness.SOURCE_DIR, "tests", "sim", "homes", "study.json")
NOTE = "desk-1 did not answer; ceiling-1 was used instead."


def semantic_record(data_dir, key):
    """The semantic memory record under key, read from the store (mdb_dump)."""
    r = subprocess.run(["mdb_dump", "-p", "-s", "semantic", data_dir], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [l[1:] for l in r.stdout.splitlines() if l.startswith(" ")]
    for k, v in zip(lines[0::2], lines[1::2]):
        if k == key:
            return json.loads(v.replace("\\\\", "\\"))
    return None


class RebindTest(harness.TestCase):

    def start(self, home_file):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        hub = self.hub(broker, args=["--recipes", os.path.join(HERE, "recipes")])
        hub.wait_online(phone)
        sim = self.sim(broker, home_file)
        phone.wait_for(topic=f"{P}/device/shelf-1/state")
        return phone, hub, sim

    def run_intent(self, phone, hub, intent_id):
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": intent_id, "intent": "light.desk",
                                      "slots": {"room": "study"}})
        reply = phone.wait_for(topic=f"{P}/intent/{intent_id}/result", since=mark)
        self.assertEqual(reply.json["state"], "running", reply.json)
        self.assertEqual([s["device"] for s in reply.json["steps"]], ["desk-1"])
        plan = f"{P}/plan/{reply.json['plan_id']}"
        end = phone.wait_for(lambda m: m.json["state"] not in ("running", "compensating"),
                             topic=plan, since=mark, timeout=15, check=hub.check_alive)
        return reply.json["plan_id"], end.json, mark

    def test_never_answering_lamp_rebound_to_the_other_light(self):
        phone, hub, sim = self.start(STUDY)
        plan_id, end, mark = self.run_intent(phone, hub, "r-1")
        self.assertEqual(end["state"], "completed", end)
        steps = [(s["device"], s["state"]) for s in end["steps"]]
        self.assertEqual(steps, [("desk-1", "rebound"), ("ceiling-1", "confirmed")])
        self.assertEqual(end["steps"][0]["note"], NOTE)
        self.assertEqual(end["steps"][0]["rebound_to"], "ceiling-1")
        # A plan event said so while it ran (before the end).
        rebound = [m for m in phone.messages(f"{P}/plan/{plan_id}", since=mark)
                   if m.json["state"] == "running"
                   and m.json["steps"][0]["state"] == "rebound"]
        self.assertTrue(rebound, "no running event shows the rebound step")

        cmds = {}
        for c in sim.commands():
            cmds.setdefault(c["device"], []).append(c["payload"])
        self.assertEqual(len(cmds["desk-1"]), 3, cmds)  # first send and two re-sends
        self.assertEqual([(c["on"], c["brightness"], c["step"]) for c in cmds["ceiling-1"]],
                         [(True, 60, "desk")])
        self.assertNotIn("shelf-1", cmds)  # no brightness: not equivalent
        last = phone.messages(f"{P}/device/ceiling-1/state", since=mark)[-1].json
        self.assertEqual((last["on"], last["brightness"]), (True, 60))

        r = harness.run_ctl(hub.data_dir, "episodes", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        ep = [e for e in json.loads(r.stdout) if e["id"] == plan_id][0]
        self.assertEqual(ep["outcome"], "completed")
        self.assertIn(NOTE, ep["rationale"])
        tl = ep["steps"][0]["timeline"]
        self.assertGreaterEqual(tl["rebound"], 900)  # 3 x 300 ms timeouts + backoff
        self.assertGreaterEqual(ep["steps"][1]["timeline"]["confirmed"], tl["rebound"])

        self.assertEqual(hub.stop(), 0)
        desk = semantic_record(hub.data_dir, "device/desk-1")
        self.assertIsNotNone(desk, "no reliability record for desk-1")
        self.assertEqual((desk["attempts"], desk["successes"]), (1, 0), desk)
        ceiling = semantic_record(hub.data_dir, "device/ceiling-1")
        self.assertEqual((ceiling["attempts"], ceiling["successes"]), (1, 1), ceiling)
        # The plan completed (on another device): a success of its recipe, and
        # one run in the hour it came.
        recipe = semantic_record(hub.data_dir, f"recipe/{ep['recipe']}")
        self.assertEqual((recipe["a"], recipe["b"]), (2, 1), recipe)
        habit = semantic_record(hub.data_dir, f"habit/{ep['recipe']}")
        hour = time.localtime(ep["ts"] / 1000).tm_hour
        self.assertEqual(habit["hours"][hour], 1, habit)
        self.assertEqual(sum(habit["hours"]), 1, habit)

    def test_lamp_going_offline_rebound_at_once(self):
        with open(STUDY) as f:
            home = json.load(f)
        home["devices"][0].update({"failure_rate": 0.0, "latency_ms": 3000})
        home_file = os.path.join(harness.workdir("home"), "study-slow.json")
        with open(home_file, "w") as f:
            json.dump(home, f)
        phone, hub, sim = self.start(home_file)
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "r-2", "intent": "light.desk",
                                      "slots": {"room": "study"}})
        reply = phone.wait_for(topic=f"{P}/intent/r-2/result", since=mark)
        plan = f"{P}/plan/{reply.json['plan_id']}"
        sim.wait_event(lambda ev: ev["event"] == "command" and ev["device"] == "desk-1")
        phone.publish("hearth-sim/home/desk-1/availability", "offline")
        end = phone.wait_for(lambda m: m.json["state"] not in ("running", "compensating"),
                             topic=plan, since=mark, timeout=10, check=hub.check_alive)
        self.assertEqual(end.json["state"], "completed", end.json)
        self.assertEqual(end.json["steps"][0]["state"], "rebound")
        self.assertEqual(end.json["steps"][0]["note"],
                         "desk-1 went offline; ceiling-1 was used instead.")
        self.assertEqual(len([c for c in sim.commands() if c["device"] == "desk-1"]), 1)


if __name__ == "__main__":
    harness.main()
