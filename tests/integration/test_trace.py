"""Traces: the last runs of a recipe with every step's timeline (issue 6 item 9).

Runs of scene.movie_night (living room three times, bedroom once) and one of
lights.on go through a simulated home (tests/sim/homes/movie.json) with a
real broker. `hearthctl trace scene.movie_night` then shows, newest first,
only that recipe's runs, each step with its timeline (ms since the intent
arrived: dispatched, sent, confirmed); `--limit` bounds the runs and the
configuration's trace.runs (2 here) is the daemon's default. The same trace
comes from the store with hearthd stopped (hearthctl says it reads the
store), and after a restart. A recipe without runs and a missing recipe
argument get clear answers.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
SIM = "hearth-sim/home"
MOVIE = os.path.join(harness.SOURCE_DIR, "tests", "sim", "homes", "movie.json")
UNDO = {"lamp-1": {"on": True, "brightness": 80}, "blind-1": {"position": 100},
        "tv-1": {"on": False}}


class TraceTest(harness.TestCase):

    def run_intent(self, phone, hub, intent_id, intent, room):
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": intent_id, "intent": intent, "slots": {"room": room}})
        reply = phone.wait_for(topic=f"{P}/intent/{intent_id}/result", since=mark)
        self.assertIn(reply.json.get("state"), ("running", "completed"), reply.json)
        plan = reply.json["plan_id"]
        if reply.json["state"] != "completed":
            end = phone.wait_for(lambda m: m.json["state"] == "completed",
                                 topic=f"{P}/plan/{plan}", since=mark, timeout=10,
                                 check=hub.check_alive)
            self.assertEqual(end.json["state"], "completed")
        return plan

    def trace(self, hub, *args):
        r = harness.run_ctl(hub.data_dir, "trace", *args)
        return r

    def test_trace_of_a_recipe(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        conf = os.path.join(harness.workdir("conf"), "hearth.json")
        with open(conf, "w") as f:
            json.dump({"trace": {"runs": 2}}, f)
        hub = self.hub(broker, config=conf)
        hub.wait_online(phone)
        self.sim(broker, MOVIE)
        phone.wait_for(topic=f"{P}/device/bedlamp-1/state")

        plans = []
        for k in range(3):
            m0 = phone.mark()
            for dev, state in UNDO.items():  # someone undoes the scene by hand
                phone.publish(f"{SIM}/{dev}/state", state)
            phone.wait_for(lambda m: m.json.get("on") is False,
                           topic=f"{P}/device/tv-1/state", since=m0)
            plans.append(self.run_intent(phone, hub, f"t-{k}", "scene.movie_night", "living"))
        plans.append(self.run_intent(phone, hub, "t-bed", "scene.movie_night", "bedroom"))
        self.run_intent(phone, hub, "t-on", "lights.on", "living")

        # With the daemon: its trace.runs (2) is the default.
        r = self.trace(hub, "scene.movie_night", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        runs = json.loads(r.stdout)
        self.assertEqual([x["plan_id"] for x in runs], [plans[3], plans[2]])
        r = self.trace(hub, "scene.movie_night", "--json", "--limit", "10")
        self.assertEqual(r.returncode, 0, r.stderr)
        runs = json.loads(r.stdout)
        self.assertEqual([x["plan_id"] for x in runs], list(reversed(plans)))
        living = runs[1]
        self.assertEqual(living["outcome"], "completed")
        self.assertEqual(living["slots"], {"room": "living"})
        steps = {s["device"]: s for s in living["steps"]}
        self.assertEqual(set(steps), {"lamp-1", "blind-1", "tv-1"})
        for dev, s in steps.items():
            tl = s["timeline"]
            self.assertEqual(s["state"], "confirmed", s)
            self.assertGreaterEqual(tl["dispatched"], 0)
            self.assertGreaterEqual(tl["confirmed"], tl["sent"], s)
            self.assertLessEqual(tl["confirmed"], living["latency_ms"]["total"] + 1, s)
        text = self.trace(hub, "scene.movie_night", "--limit", "2")
        sys.stderr.write(text.stdout)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(plans[3], text.stdout)
        self.assertIn("TIMELINE", text.stdout)
        self.assertIn("bedlamp-1", text.stdout)
        self.assertRegex(text.stdout, r"dispatched \d+, sent \d+, confirmed \d+")
        none = self.trace(hub, "scene.bedtime")
        self.assertEqual(none.returncode, 0, none.stderr)
        self.assertEqual(none.stdout.strip(), "no runs of scene.bedtime in the episodes")

        # Without the daemon: from the store, the same runs.
        self.assertEqual(hub.stop(), 0)
        r = self.trace(hub, "scene.movie_night", "--json", "--limit", "10")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reading the store", r.stderr)
        self.assertEqual([x["plan_id"] for x in json.loads(r.stdout)], list(reversed(plans)))
        self.assertEqual(json.loads(r.stdout)[1]["steps"], living["steps"])

        # Kept across restarts.
        hub.start()
        hub.wait_online(phone)
        r = self.trace(hub, "lights.on", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)), 1)

        bad = harness.run_ctl(hub.data_dir, "trace")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("trace needs a recipe id", bad.stderr)


if __name__ == "__main__":
    harness.main()
